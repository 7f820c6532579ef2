"""Initial segmentation with the shipped models: exact geometry, real Dice, CAM -> mask, cancel."""
from pathlib import Path

import numpy as np
import pytest
import torch

from app.core import errors
from app.core.jobs import CancelToken
from app.core.segmentation import (cam_to_prior, largest_component, load_model, mask_from_cam,
                                   segment_volume, segment_volume_job)
from app.core.volume_io import read_label, read_volume
from models import zoo

DATA = Path(__file__).resolve().parents[2] / "data_source"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def dice(a, b):
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)


@pytest.fixture(scope="module")
def sts_mr():
    volume = read_volume(DATA / "sts002_mr.nii.gz")
    return volume, read_label(DATA / "sts002_mr_label.nii.gz", volume).array


# Dice measured on sts002_mr with the shipped weights: unet 0.80, fpsnet-cam 0.30, fpsnet-mixed
# 0.46 (short CPU training, see models/weights/MODEL_CARD.md). A mask of the whole volume scores
# 0.09 and an empty one 0, so these floors catch a broken pipeline (flipped axes, wrong grid,
# wrong normalisation), not small changes in quality.
DICE_FLOOR = {"unet": 0.6, "fpsnet-cam": 0.2, "fpsnet-mixed": 0.3}


@pytest.mark.parametrize("name", zoo.APP_MODELS)
def test_shipped_model_labels_a_bundled_case_on_its_exact_grid(name, sts_mr):
    volume, truth = sts_mr
    result = segment_volume(volume, name, device="cpu")
    label = result.label
    assert label.array.dtype == np.uint8 and label.same_grid(volume)
    assert label.spacing == volume.spacing and label.origin == volume.origin
    assert label.direction == volume.direction
    assert set(np.unique(label.array)) <= {0, 1}
    assert result.prob.shape == volume.shape and result.prob.dtype == np.float32
    assert (result.cam is None) == (name == "unet")
    # The refine engines' prior is the map the mask was cut from.
    model = load_model(name, "cpu")
    expected = cam_to_prior(result.cam, model.cam_threshold) if model.mask_source == "cam" else result.prob
    assert result.prior.dtype == np.float32
    np.testing.assert_array_equal(result.prior, expected)
    # a real proposal on an unseen patient, not an empty or full mask
    assert dice(label.array, truth) > DICE_FLOOR[name], f"{name}: Dice {dice(label.array, truth):.3f}"


def test_cam_becomes_a_clean_mask_by_graph_cut():
    n = 48
    zz, yy, xx = np.mgrid[:6, :n, :n]
    disk = (yy - 24) ** 2 + (xx - 24) ** 2 < 12 ** 2
    rng = np.random.default_rng(0)
    image = (200 + 600 * disk + rng.normal(0, 60, disk.shape)).astype(np.float32)
    # a CAM that peaks inside the disk, spills over its edge, and has a far speck
    cam = np.exp(-((yy - 26) ** 2 + (xx - 22) ** 2) / (2 * 11.0 ** 2))
    cam[:, 2:5, 40:44] = 0.9
    out = mask_from_cam(image, cam.astype(np.float32), threshold=0.4)
    assert out.dtype == np.uint8
    assert out[:, 2:5, 40:44].sum() == 0                     # the speck is not the largest part
    assert dice(out, disk) > 0.9
    assert dice(cam >= 0.4, disk) < dice(out, disk)          # the cut follows the image edge


def test_cam_prior_puts_the_threshold_at_one_half():
    prior = cam_to_prior(np.array([0.0, 0.3, 1.0]), 0.3)
    np.testing.assert_allclose(prior, [0.0, 0.5, 1.0])


def test_largest_component():
    mask = np.zeros((3, 10, 10), bool)
    mask[0, :2, :2] = True
    mask[1:, 5:, 5:] = True
    out = largest_component(mask)
    assert out.sum() == 2 * 25 and not out[0].any()


def test_cancel_stops_the_job(sts_mr):
    volume, _ = sts_mr
    token = CancelToken()
    job = segment_volume_job(volume, "unet", device="cpu", cancel=token)
    first = next(job)
    assert 0 < first.done < first.total
    token.cancel()
    with pytest.raises(errors.JobCancelled):
        next(job)


def test_unknown_model_is_an_app_error(sts_mr):
    with pytest.raises(errors.ModelFileError, match="unknown model"):
        segment_volume(sts_mr[0], "no-such-model")


def test_a_proposal_cache_is_used_only_for_the_weights_that_made_it(sts_mr, tmp_path):
    from app.core.segmentation import cached_proposal, weights_digest

    volume, _ = sts_mr
    cache = tmp_path / "unet" / "sts002_mr.npz"
    mask, prob = cached_proposal(volume, "unet", cache)
    assert cache.exists() and mask.shape == volume.shape and prob.shape == volume.shape
    # A cache written by these weights is read back (not recomputed): a marker array proves it.
    marker = np.zeros(volume.shape, np.uint8)
    marker[0, 0, 0] = 1
    np.savez_compressed(cache, mask=marker, prob=marker.astype(np.float16),
                        weights_sha256=np.array(weights_digest("unet")))
    again, _ = cached_proposal(volume, "unet", cache)
    assert again.sum() == 1 and again[0, 0, 0]
    # The same file claiming other weights (a retrained model) is recomputed and rewritten.
    np.savez_compressed(cache, mask=marker, prob=marker.astype(np.float16),
                        weights_sha256=np.array("0" * 64))
    fresh, _ = cached_proposal(volume, "unet", cache)
    np.testing.assert_array_equal(fresh, mask)
    assert str(np.load(cache)["weights_sha256"]) == weights_digest("unet") != ""
