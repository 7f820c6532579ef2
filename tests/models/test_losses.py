"""Segmentation losses: the per-slice Dice weighs a small object as much as a large one."""
import pytest
import torch

from models.training.trainer import per_slice_dice_loss, seg_loss, soft_dice_loss


def _logits(mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask > 0, 20.0, -20.0)        # a confident prediction of `mask`


def test_missed_small_object_costs_half_per_slice_but_little_per_batch():
    target = torch.zeros(2, 64, 64)
    target[0, 8:56, 8:56] = 1                         # large object, found exactly
    target[1, 30:34, 30:34] = 1                       # 16-pixel object, missed entirely
    found = target.clone()
    found[1] = 0
    logits = _logits(found)
    assert float(soft_dice_loss(logits, target)) < 0.01
    missed = 1.0 / (16 + 1)                          # the +1 smoothing of an empty prediction
    assert float(per_slice_dice_loss(logits, target)) == pytest.approx(1 - (1 + missed) / 2, abs=1e-3)


def test_empty_slices_are_left_to_bce():
    target = torch.zeros(3, 16, 16)
    logits = torch.full((3, 16, 16), 3.0, requires_grad=True)   # false positives everywhere
    loss = per_slice_dice_loss(logits, target)
    assert float(loss.detach()) == 0.0
    loss.backward()                                   # still part of the graph
    assert float(seg_loss(logits, target, "slice").detach()) > 1.0       # BCE sees the false positives


def test_perfect_prediction_has_no_dice_loss():
    target = torch.zeros(2, 16, 16)
    target[:, 4:9, 4:9] = 1
    assert float(per_slice_dice_loss(_logits(target), target)) < 0.01
