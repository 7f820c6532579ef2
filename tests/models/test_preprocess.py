"""Normalisation, modality guess, resizing there and back, 2.5D stacks."""
import numpy as np

from models import preprocess


def test_guess_modality():
    rng = np.random.default_rng(0)
    ct = rng.normal(40, 30, (8, 32, 32)).astype(np.int16)
    ct[:, :4] = -1000                                   # air outside the body
    mr = rng.uniform(0, 1200, (8, 32, 32)).astype(np.int16)
    assert preprocess.guess_modality(ct) == "CT"
    assert preprocess.guess_modality(mr) == "MR"


def test_ct_uses_a_fixed_hu_window():
    values = np.array([[[-1000, -200, 50, 300, 2000]]], np.int16)
    out = preprocess.normalise(values, "CT")
    np.testing.assert_allclose(out[0, 0], [0, 0, 0.5, 1, 1], atol=1e-6)


def test_mr_is_scaled_by_its_own_percentiles():
    rng = np.random.default_rng(1)
    mr = rng.uniform(100, 200, (4, 50, 50)).astype(np.float32)
    mr[0, 0, 0] = 1e6                                   # one hot voxel must not squash the rest
    out = preprocess.normalise(mr, "MR")
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    assert 0.4 < float(np.median(out)) < 0.6
    # same tissue contrast whatever the scanner scale
    np.testing.assert_allclose(preprocess.normalise(mr * 7.5, "MR"), out, atol=1e-5)


def test_resize_there_and_back_keeps_shape_and_content():
    yy, xx = np.mgrid[:90, :115]
    smooth = np.sin(yy / 15.0) + np.cos(xx / 20.0)
    vol = np.stack([smooth, smooth * 2])
    small = preprocess.resize_slices(vol, (128, 128))
    assert small.shape == (2, 128, 128) and small.dtype == np.float32
    back = preprocess.resize_slices(small, (90, 115))
    assert back.shape == vol.shape
    assert np.abs(back - vol)[:, 2:-2, 2:-2].max() < 0.02


def test_label_resize_nearest_keeps_classes_and_area():
    label = np.zeros((1, 90, 115), np.uint8)
    label[0, 20:60, 30:90] = 1
    small = preprocess.resize_slices(label, (128, 128), order=0)
    assert small.dtype == np.uint8 and set(np.unique(small)) == {0, 1}
    smooth = preprocess.resize_label_slices(label, (128, 128))
    expected = 40 * 60 * (128 / 90) * (128 / 115)
    for m in (small, smooth):
        assert abs(int(m.sum()) - expected) / expected < 0.05


def test_stack_neighbours_repeats_the_ends():
    vol = np.arange(4)[:, None, None] * np.ones((4, 2, 2))
    stack = preprocess.stack_neighbours(vol, 1)
    assert stack.shape == (4, 3, 2, 2)
    assert stack[:, :, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]
    assert preprocess.stack_neighbours(vol, 0, [2]).shape == (1, 1, 2, 2)
