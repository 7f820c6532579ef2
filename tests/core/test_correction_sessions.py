"""Iterative training: session slices read from an MSD folder, sessions recorded with the
benchmark's robot and an engine, their score, and a training run that adds session patches and
keeps the epoch its validator prefers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from app.core.correction_sessions import (SessionSlice, combined_engine, record_session,
                                          session_patches, session_score, session_slices,
                                          synthetic_slices)
from app.core.refine import NoRefiner, Refiner
from app.core.refine.correction_net import load_network
from models.correction.inputs import PATCH, crop, patch_box
from models.correction.training import train
from tests.msd_folder import write_msd_case

CASES = ["sts001_mr", "sts002_mr", "sts003_ct", "btp01_pre"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("msd")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:72, :80]
    for i, case in enumerate(CASES):
        label = np.zeros((5, 72, 80), np.uint8)
        for z in (1, 2, 3):
            label[z] = (yy - 36) ** 2 + (xx - 40 - i) ** 2 <= (12 + z) ** 2
        image = rng.normal(100, 8, label.shape).astype(np.float32) + 90 * label
        write_msd_case(root, "Tr", case, image, label, spacing=(0.8, 0.6, 3.0))   # x, y, z
    return root


def test_session_slices_carry_the_label_the_starts_and_the_in_plane_spacing(dataset):
    items = session_slices(dataset, CASES[:2], np.random.default_rng(0), per_case=2, models=(),
                           log=lambda m: None)
    assert len(items) == 4 and {i.case for i in items} == set(CASES[:2])
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(dataset / "labelsTr" / "sts001_mr.nii.gz")))
    first = items[0]
    assert first.spacing == pytest.approx((0.6, 0.8))        # (y, x) for the engines
    assert any(np.array_equal(first.gt, truth[z] > 0) for z in (1, 2, 3))
    assert set(first.starts) == {"zero", "gt-changed"}
    assert not first.starts["zero"].any()
    assert first.starts["gt-changed"].any() and not np.array_equal(first.starts["gt-changed"], first.gt)


def test_the_combined_engine_with_weights_in_memory_answers_a_click(dataset):
    item = session_slices(dataset, CASES[:1], np.random.default_rng(0), per_case=1, models=(),
                          log=lambda m: None)[0]
    network, _ = load_network()
    network.eval()
    from app.core.refine import RefineRequest

    empty = np.zeros(item.gt.shape, np.uint8)
    ys, xs = np.nonzero(item.gt)
    click = (int(ys.mean()), int(xs.mean()))
    request = RefineRequest(image=item.image, mask=empty, fg_clicks=[click], newest=click,
                            newest_is_fg=True, spacing=item.spacing)
    out = combined_engine(network).refine(request).mask > 0
    assert out[click] and (out & item.gt).sum() > 0.5 * item.gt.sum()


def test_training_adds_session_patches_and_keeps_the_validators_best_epoch(dataset, tmp_path):
    items = session_slices(dataset, CASES, np.random.default_rng(0), per_case=2, models=(),
                           log=lambda m: None)
    network, _ = load_network()
    network.eval()
    extra = session_patches(combined_engine(network), items, np.random.default_rng(0), max_clicks=2)
    scores = iter([0.30, 0.10, 0.20, 0.05, 0.05, 0.05, 0.05, 0.05])
    calls = []

    def validate(candidate):
        assert not candidate.training                     # scored in eval mode
        calls.append(1)
        return {"dice_auc": next(scores), "noc90": 3.0, "sessions": 1}

    out = tmp_path / "corr.pt"
    best, history = train(dataset, out, minutes=0.01, per_case=8, use_unet=False,
                          widths=(8, 16, 16), bottleneck=16, log=lambda m: None,
                          extra_train=extra, validate=validate, extra_meta={"session_patches": 7})
    meta = json.loads(out.with_suffix(".json").read_text())
    assert calls and best == 0.30
    assert meta["metrics"]["val_session_dice_auc"] == 0.30 and meta["epochs"] == 1
    assert meta["training"]["session_patches"] == 7
    assert meta["training"]["patches"] > len(extra[0])       # base patches + session patches


def test_a_net_trained_on_other_patches_is_run_at_its_own_size(dataset, tmp_path):
    from app.core.refine import CorrectionNetRefiner, RefineRequest

    out = tmp_path / "corr32.pt"
    train(dataset, out, minutes=0.01, per_case=8, use_unet=False, widths=(8, 16, 16),
          bottleneck=16, log=lambda m: None, patch=32)
    assert json.loads(out.with_suffix(".json").read_text())["input_size"] == 32
    image = np.random.default_rng(0).normal(100, 5, (96, 96)).astype(np.float32)
    request = RefineRequest(image=image, mask=np.zeros((96, 96), np.uint8), fg_clicks=[(48, 48)],
                            newest=(48, 48), newest_is_fg=True)
    y0, y1, x0, x1 = CorrectionNetRefiner(weights=str(out)).refine(request).region
    assert (y1 - y0, x1 - x0) == (32, 32)
    y0, y1, x0, x1 = CorrectionNetRefiner(weights=str(out), patch=48).refine(request).region
    assert (y1 - y0, x1 - x0) == (48, 48)


class Oracle(Refiner):
    """Answers every click with the ground truth of the slice it is shown (by image identity)."""
    name = "oracle"

    def __init__(self, items):
        self.truth = {id(i.image): i.gt for i in items}

    def _refine(self, request, checked):
        gt = self.truth[id(request.image)]
        return gt.astype(np.uint8), (0, gt.shape[0], 0, gt.shape[1]), {}


class SeedsOnly(Refiner):
    """Takes the clicked pixels and nothing else: the most timid engine that honours seeds."""
    name = "seeds-only"

    def _refine(self, request, checked):
        y, x = checked.newest
        return checked.mask.copy(), (y, y + 1, x, x + 1), {}


def _disk_item(start_radius=12):
    yy, xx = np.mgrid[:96, :96]
    gt = (yy - 48) ** 2 + (xx - 48) ** 2 <= 20 ** 2
    image = np.where(gt, 200.0, 50.0).astype(np.float32)
    start = (yy - 48) ** 2 + (xx - 48) ** 2 <= start_radius ** 2
    return SessionSlice("case", image, gt, {"small": start}, (1.0, 1.0))


def test_a_session_records_what_the_net_was_given_before_each_click():
    item = _disk_item()
    out = record_session(NoRefiner(), item, item.starts["small"], seed=0, max_clicks=4)
    assert len(out) == 4                       # nothing fixed, so every click is recorded
    from app.core.robot_user import next_click

    first = next_click(item.gt, item.starts["small"], np.zeros(item.gt.shape, bool))
    box = patch_box(item.gt.shape, (first.y, first.x), PATCH)
    for img, rest, target in out:
        assert img.shape == (1, PATCH, PATCH) and rest.shape == (3, PATCH, PATCH)
        assert rest[1, PATCH // 2, PATCH // 2] == pytest.approx(1.0)    # newest: a fg click
        assert not rest[2].any()                                        # no bg click
        assert target.max() == 1.0 and target.min() == 0.0
    # the first patch holds the start mask and the ground truth around the robot's first click
    np.testing.assert_array_equal(out[0][1][0], crop(item.starts["small"].astype(np.float32), box))
    np.testing.assert_array_equal(out[0][2][0], crop(item.gt.astype(np.float32), box))
    # every click is a new pixel, so the click maps grow
    sums = [float(rest[1].sum()) for _, rest, _ in out]
    assert sums == sorted(sums) and sums[-1] > sums[0]


def test_a_session_stops_once_the_engine_has_fixed_the_slice():
    item = _disk_item()
    assert len(record_session(Oracle([item]), item, item.starts["small"], seed=0)) == 1


def test_session_score_measures_dice_over_clicks():
    item = _disk_item()
    start = item.starts["small"]
    start_dice = 2 * (start & item.gt).sum() / (start.sum() + item.gt.sum())
    assert session_score(Oracle([item]), [item]) == {"dice_auc": 1.0, "noc90": 1.0, "sessions": 1}
    idle = session_score(NoRefiner(), [item])
    assert idle["noc90"] == 6.0 and idle["dice_auc"] == pytest.approx(start_dice)


def test_session_patches_stack_as_float16_arrays():
    item = _disk_item()
    arrays = session_patches(NoRefiner(), [item, item], np.random.default_rng(0), max_clicks=3)
    assert [a.dtype for a in arrays] == [np.float16] * 3
    assert len(arrays[0]) == 6 and arrays[1].shape[1:] == (3, PATCH, PATCH)


def test_synthetic_validation_slices_tell_a_grabbing_engine_from_a_timid_one():
    items = synthetic_slices(np.random.default_rng(0), count=6)
    assert len(items) == 6 and all(set(i.starts) == {"zero"} for i in items)
    assert {bool(i.image[i.gt].mean() > i.image[~i.gt].mean()) for i in items} == {True, False}
    assert session_score(Oracle(items), items)["dice_auc"] == 1.0
    assert session_score(SeedsOnly(), items)["dice_auc"] < 0.2
