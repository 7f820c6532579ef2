"""Consensus by majority vote and STAPLE: planted annotator noise, the tie rule, multi-class labels."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from app.core.consensus import fuse, majority_vote, staple


def _dice(a, b):
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _truth(shape=(64, 64)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (((yy - 30) / 14.0) ** 2 + ((xx - 34) / 10.0) ** 2 <= 1).astype(np.uint8)


def _noisy_annotators(truth, n, seed):
    """Each annotator dilates or erodes the truth by 0-2 pixels and flips 3% of the pixels."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        step = int(rng.integers(-2, 3))
        if step > 0:
            mask = ndimage.binary_dilation(truth, iterations=step)
        elif step < 0:
            mask = ndimage.binary_erosion(truth, iterations=-step)
        else:
            mask = truth.astype(bool)
        flips = rng.random(truth.shape) < 0.03
        out.append(np.logical_xor(mask, flips).astype(np.uint8))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_majority_and_staple_beat_every_single_annotator_on_planted_noise(seed):
    truth = _truth()
    annotators = _noisy_annotators(truth, 5, seed)
    best_single = max(_dice(a, truth) for a in annotators)
    voted = majority_vote(annotators)
    result = staple(annotators)
    assert voted.dtype == np.uint8 and result.mask.dtype == np.uint8
    assert _dice(voted, truth) > best_single
    assert _dice(result.mask, truth) > best_single
    assert result.probability.shape == truth.shape
    assert 0.0 <= result.probability.min() and result.probability.max() <= 1.0


def test_staple_rates_a_careless_annotator_below_careful_ones():
    truth = _truth()
    careful = [truth.copy(), truth.copy(), ndimage.binary_dilation(truth).astype(np.uint8)]
    eroded = ndimage.binary_erosion(truth, iterations=4).astype(np.uint8)
    result = staple(careful + [eroded])
    assert result.sensitivity.shape == (4,) and result.specificity.shape == (4,)
    assert result.sensitivity[3] < 0.8 < min(result.sensitivity[:2])
    # the dilating annotator pays in specificity, not in sensitivity
    assert result.specificity[2] < result.specificity[0]
    assert _dice(result.mask, truth) > 0.97


def test_binary_ties_go_to_foreground():
    a = np.array([[1, 1, 0, 0]], np.uint8)
    b = np.array([[1, 0, 1, 0]], np.uint8)
    np.testing.assert_array_equal(majority_vote([a, b]), [[1, 1, 1, 0]])
    four = [np.array([[1, 1]]), np.array([[1, 0]]), np.array([[0, 0]]), np.array([[0, 1]])]
    np.testing.assert_array_equal(majority_vote(four), [[1, 1]])
    three = [np.array([[1, 0]]), np.array([[1, 0]]), np.array([[0, 1]])]
    np.testing.assert_array_equal(majority_vote(three), [[1, 0]])


def test_multiclass_majority_matches_simpleitk_label_voting_and_breaks_ties_upward():
    rng = np.random.default_rng(3)
    masks = [rng.integers(0, 3, size=(20, 24)).astype(np.uint8) for _ in range(5)]
    voted = majority_vote(masks)
    voting = sitk.LabelVotingImageFilter()
    voting.SetLabelForUndecidedPixels(255)
    reference = sitk.GetArrayFromImage(voting.Execute([sitk.GetImageFromArray(m) for m in masks]))
    decided = reference != 255
    assert decided.sum() > 100 and (~decided).sum() > 10
    np.testing.assert_array_equal(voted[decided], reference[decided])
    # on tied pixels the highest tied label wins
    stack = np.stack(masks)
    for y, x in zip(*np.nonzero(~decided)):
        counts = np.bincount(stack[:, y, x], minlength=3)
        assert voted[y, x] == np.flatnonzero(counts == counts.max()).max()


def test_multiclass_staple_recovers_two_structures_in_a_volume():
    truth = np.zeros((6, 32, 32), np.uint8)
    truth[:, 4:28, 4:28] = 1
    truth[:, 12:20, 12:20] = 2
    rng = np.random.default_rng(5)
    annotators = []
    for _ in range(5):
        noisy = truth.copy()
        flips = rng.random(truth.shape) < 0.04
        noisy[flips] = rng.integers(0, 3, size=int(flips.sum()))
        annotators.append(noisy)
    result = staple(annotators)
    assert result.mask.shape == truth.shape
    assert result.probability.shape == (2,) + truth.shape
    assert result.sensitivity.shape == (5, 2)
    for label in (1, 2):
        assert _dice(result.mask == label, truth == label) > 0.98
        assert _dice(majority_vote(annotators) == label, truth == label) > 0.98


def test_fuse_registry_and_input_checks():
    truth = _truth((16, 16))
    np.testing.assert_array_equal(fuse([truth, truth, truth], "staple"), truth)
    np.testing.assert_array_equal(fuse([truth, truth], "majority"), truth)
    empty = np.zeros((8, 8), np.uint8)
    np.testing.assert_array_equal(staple([empty, empty]).mask, empty)
    with pytest.raises(ValueError, match="unknown consensus method"):
        fuse([truth], "mean")
    with pytest.raises(ValueError, match="same shape"):
        majority_vote([truth, truth[:8]])
    with pytest.raises(ValueError, match="at least one"):
        majority_vote([])
