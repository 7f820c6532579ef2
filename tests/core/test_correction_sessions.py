"""Iterative training wiring: session slices read from an MSD folder, the combined engine as the
step, and a training run that adds session patches and keeps the epoch its validator prefers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from app.core.correction_sessions import combined_step, session_slices
from app.core.refine.correction_net import load_network
from models.correction.session_data import session_patches
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


def test_the_combined_step_with_weights_in_memory_answers_a_click(dataset):
    item = session_slices(dataset, CASES[:1], np.random.default_rng(0), per_case=1, models=(),
                          log=lambda m: None)[0]
    network, _ = load_network()
    network.eval()
    step = combined_step(network)
    empty = np.zeros_like(item.gt)
    ys, xs = np.nonzero(item.gt)
    click = (int(ys.mean()), int(xs.mean()))
    out = np.asarray(step(item.image, empty, [click], [], click, True, item.spacing)) > 0
    assert out[click] and (out & item.gt).sum() > 0.5 * item.gt.sum()


def test_training_adds_session_patches_and_keeps_the_validators_best_epoch(dataset, tmp_path):
    items = session_slices(dataset, CASES, np.random.default_rng(0), per_case=2, models=(),
                           log=lambda m: None)
    network, _ = load_network()
    network.eval()
    extra = session_patches(combined_step(network), items, np.random.default_rng(0), max_clicks=2)
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
