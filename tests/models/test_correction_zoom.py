"""Zoomed patches: a click on a large object shows the network all of it, in training and in the app
the same way (models/correction/inputs.py), within the refine options' widest window."""
import json

import numpy as np
import pytest
import torch

from models.correction import CorrectionNet, load_correction, save_correction
from models.correction.data import box_sample, slice_samples
from models.correction.inputs import (patch_box, shrink, stack_inputs, zoom_side, zoomed_inputs)


def disk(radius, size=256, centre=(128, 128)):
    yy, xx = np.mgrid[:size, :size]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def test_the_patch_widens_only_for_an_object_that_does_not_fit():
    small, large = disk(15), disk(70)
    assert zoom_side(small, (128, 128), 64, 3.0) == 64
    assert zoom_side(small, (128, 128 + 15), 64, 3.0) == 2 * (30 + 8)   # far edge + 8 px each way
    assert zoom_side(large, (128, 128 + 70), 64, 1.0) == 64          # no zoom asked for
    side = zoom_side(large, (128, 128 + 70), 64, 3.0)
    # the click is on the right edge: the far (left) edge is 140 px away, beyond 3 x 64 / 2
    assert side == 192
    side = zoom_side(large, (128, 128 + 70), 64, 5.0)
    assert side == 2 * (140 + 8)                                     # the whole disk + 8 px
    assert zoom_side(np.zeros((256, 256), bool), (128, 128), 64, 3.0) == 64
    # a piece that does not reach into the plain patch is not the object being edited
    far = disk(10, centre=(20, 20)) | disk(12)
    assert zoom_side(far, (128, 128), 64, 3.0) == 64


def test_unzoomed_inputs_are_exactly_the_plain_ones():
    rng = np.random.default_rng(0)
    image, mask = rng.random((64, 64)).astype(np.float32), disk(20, 64, (32, 32))
    fg, bg = [(32, 40)], [(5, 60)]
    plain = stack_inputs(image, mask, fg, bg, (0, 64, 0, 64))
    zoomed = zoomed_inputs(image, mask, fg, bg, (0, 64, 0, 64), 64)
    for a, b in zip(plain, zoomed):
        np.testing.assert_array_equal(a, b)


def test_a_zoomed_box_is_shrunk_with_its_clicks_where_they_were():
    image = np.zeros((128, 128), np.float32)
    mask = disk(50, 128, (64, 64))
    img, rest = zoomed_inputs(image, mask, [(64, 100)], [(10, 10)], (0, 128, 0, 128), 64)
    assert img.shape == (1, 64, 64) and rest.shape == (3, 64, 64)
    assert abs(rest[0].mean() - mask.mean()) < 0.02                 # same object, half the size
    fy, fx = np.unravel_index(np.argmax(rest[1]), (64, 64))
    by, bx = np.unravel_index(np.argmax(rest[2]), (64, 64))
    assert (abs(fy - 31.75) <= 1, abs(fx - 49.75) <= 1) == (True, True)
    assert (abs(by - 4.75) <= 1, abs(bx - 4.75) <= 1) == (True, True)
    assert shrink(mask, 64, binary=True).dtype == bool


def test_training_samples_of_a_large_object_are_zoomed_and_the_target_follows():
    gt = disk(70)
    image = np.where(gt, 1.0, 0.0).astype(np.float32)
    plain = slice_samples(image, gt, np.random.default_rng(0), image_norm=image, max_zoom=1.0)
    zoomed = slice_samples(image, gt, np.random.default_rng(0), image_norm=image, max_zoom=3.0)
    for img, rest, target in zoomed:
        assert img.shape == target.shape == (1, 64, 64) and rest.shape == (3, 64, 64)
        # image and target are the same disk, seen at the same scale
        assert np.mean((img[0] > 0.5) == (target[0] > 0.5)) > 0.97
    # the first sample (GT eroded: the click lies in a thin ring of a large disk) sees more of it
    assert not np.array_equal(plain[0][2], zoomed[0][2])
    box = patch_box(gt.shape, (128, 198), 128)
    img, rest, target = box_sample(image, gt & disk(60), gt, [(128, 198)], [], box)
    assert rest[1].max() > 0.9 and target.sum() > 0


def _net_with_zoom(tmp_path, zoom, name=None):
    """A tiny saved correction net (32-px input); zoom None: a sidecar from before zooming."""
    net = CorrectionNet(widths=(4, 8), bottleneck=8)
    meta = {"arch_kwargs": {"widths": [4, 8], "bottleneck": 8}, "input_size": 32}
    if zoom is not None:
        meta["max_zoom"] = zoom
    return save_correction(net, tmp_path / (name or f"z{zoom}.pt"), meta)


def test_the_zoom_a_file_was_trained_with_is_the_zoom_the_engine_uses(tmp_path):
    from app.core.refine import CombinedRefiner, CorrectionNetRefiner, RefineOptions, RefineRequest

    old, zoomed = _net_with_zoom(tmp_path, None), _net_with_zoom(tmp_path, 3.0)
    assert load_correction(old)[0].max_zoom == 1.0                  # files from before zooming
    assert load_correction(zoomed)[0].max_zoom == 3.0
    gt = disk(70)
    image = np.where(gt, 200.0, 50.0).astype(np.float32)
    request = RefineRequest(image=image, mask=(gt & ~disk(8, centre=(128, 198))).astype(np.uint8),
                            fg_clicks=[(128, 196)], newest=(128, 196), newest_is_fg=True)
    side = lambda r: r.refine(request).region[1] - r.refine(request).region[0]
    assert side(CorrectionNetRefiner(weights=str(old))) == 32
    assert side(CorrectionNetRefiner(weights=str(zoomed))) == 96
    assert side(CorrectionNetRefiner(weights=str(old), max_zoom=2.0)) == 64
    # never wider than the widest window the options allow (2 x 40 mm at 1 mm: 80 px)
    narrow = RefineRequest(**{**request.__dict__, "options": RefineOptions(window_max_mm=40.0)})
    region = CorrectionNetRefiner(weights=str(zoomed)).refine(narrow).region
    assert region[1] - region[0] == 80
    out = CombinedRefiner(weights=str(zoomed)).refine(request)
    assert out.mask[128, 196] == 1


def test_a_patch_cache_built_for_another_zoom_is_refused(tmp_path):
    from models.correction.training import train

    cache = tmp_path / "patches.npz"
    arrays = {f"train{i}": np.zeros((2, c, 32, 32), np.float16) for i, c in enumerate((1, 3, 1))}
    np.savez(cache, train_names=np.array(["a"]), val_names=np.array(["b"]),
             max_zoom=np.array(1.0), **arrays)
    with pytest.raises(ValueError, match="max-zoom"):
        train(tmp_path, tmp_path / "out.pt", minutes=0.01, patch_cache=cache, patch=32,
              max_zoom=2.0, log=lambda m: None)


def _two_nets_and_their_ensemble(tmp_path, note=""):
    from models.correction.checkpoint import combine_correction

    torch.manual_seed(0)
    a, b = _net_with_zoom(tmp_path, 3.0), _net_with_zoom(tmp_path, 3.0, "other.pt")
    return a, b, combine_correction([a, b], tmp_path / "ens.pt", note)


def test_an_ensemble_file_averages_its_members_and_keeps_their_record(tmp_path):
    from models.correction.checkpoint import combine_correction
    from models.errors import ModelFileError

    a, b, out = _two_nets_and_their_ensemble(tmp_path, "why")
    ensemble, meta = load_correction(out)
    assert meta["members"] == 2 and [m["file"] for m in meta["ensemble_of"]] == [a.name, b.name]
    assert ensemble.input_size == 32 and ensemble.max_zoom == 3.0
    x, m = torch.rand(2, 1, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = (load_correction(a)[0](x, m) + load_correction(b)[0](x, m)) / 2
        assert torch.allclose(ensemble(x, m), expected, atol=1e-5)
    # members that would not see the same inputs, a lone file, an ensemble of ensembles: refused
    with pytest.raises(ModelFileError, match="max_zoom"):
        combine_correction([a, _net_with_zoom(tmp_path, None)], tmp_path / "bad.pt")
    with pytest.raises(ModelFileError):
        combine_correction([a], tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match="ens.pt is an ensemble of 2 networks"):
        combine_correction([out, a], tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()


def test_an_ensemble_cannot_be_continued_by_training(tmp_path):
    from models.correction.training import train
    from models.errors import ModelFileError

    _, _, out = _two_nets_and_their_ensemble(tmp_path)
    # No patches and no data: only a refusal before any preparation gives this error.
    with pytest.raises(ModelFileError, match="ensemble"):
        train(tmp_path / "no-data", tmp_path / "out.pt", minutes=0.01, patch=32, max_zoom=3.0,
              init=out, log=lambda m: None)
    assert not (tmp_path / "out.pt").exists()
