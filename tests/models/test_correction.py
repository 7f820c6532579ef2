"""The correction network: shipped weights load (weights_only), shapes, and the click-weighted loss."""
import numpy as np
import pytest
import torch

from models.correction import (PATCH, CorrectionNet, click_maps, click_weight,
                               click_weighted_dice, load_correction, save_correction)
from models.correction.checkpoint import DEFAULT_WEIGHTS
from models.correction.data import robot_click
from models.errors import ModelFileError


def test_shipped_weights_load_with_weights_only_and_give_a_patch(monkeypatch):
    assert DEFAULT_WEIGHTS.exists() and DEFAULT_WEIGHTS.stat().st_size < 3_000_000
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    network, meta = load_correction(DEFAULT_WEIGHTS)
    assert calls == [True]
    assert meta["architecture"] == "correction2d" and meta["input_size"] == PATCH
    with torch.no_grad():
        out = network(torch.zeros(2, 1, PATCH, PATCH), torch.zeros(2, 3, PATCH, PATCH))
    assert out.shape == (2, 1, PATCH, PATCH) and torch.isfinite(out).all()


def test_save_and_load_round_trip_and_refuse_other_models(tmp_path):
    net = CorrectionNet(widths=(4, 8), bottleneck=8)
    path = save_correction(net, tmp_path / "c.pt",
                           {"arch_kwargs": {"widths": [4, 8], "bottleneck": 8}, "input_size": 32})
    loaded, _ = load_correction(path)
    x, m = torch.rand(1, 1, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        net.eval()
        assert torch.allclose(loaded(x, m), net(x, m), atol=5e-2)   # stored as float16
    (tmp_path / "c.json").write_text((tmp_path / "c.json").read_text(encoding="utf-8").replace(
        "correction2d", "unet2d"), encoding="utf-8")
    with pytest.raises(ModelFileError):
        load_correction(path)


def test_loss_weight_is_highest_at_the_click():
    maps = torch.from_numpy(click_maps([(20, 30)], [(50, 10)], (0, 64, 0, 64)))[None]
    w = click_weight(maps)[0, 0]
    assert w[20, 30] == w.max() and w[50, 10] == w.max()
    assert float(w[20, 30]) > 4 * float(w[0, 63])
    # The same error costs more at the click than far from it (the published code had it reversed).
    target = torch.zeros(1, 1, 64, 64)
    target[..., 10:40, 15:45] = 1
    logits = torch.where(target > 0, 10.0, -10.0)
    near, far = logits.clone(), logits.clone()
    near[..., 18:23, 28:33] = -10.0          # a 5x5 hole at the fg click
    far[..., 34:39, 38:43] = -10.0           # the same hole far from every click
    wm = click_weight(maps[:, :, :, :])
    assert click_weighted_dice(near, target, wm) > click_weighted_dice(far, target, wm)


def test_robot_click_lands_at_the_middle_of_the_largest_error():
    gt = np.zeros((40, 40), bool)
    gt[5:35, 5:35] = True
    mask = gt.copy()
    mask[10:20, 10:30] = False               # a 10-row miss: fg click in its middle
    (y, x), is_fg = robot_click(gt, mask)
    assert is_fg and 14 <= y <= 15 and 10 <= x < 30
