"""Validation Dice on held-out training patients, on each case's original grid."""
from __future__ import annotations

import numpy as np
import torch

from models import preprocess
from models.networks import cam_from_class_map
from models.training.dataset import Case

CAM_THRESHOLDS = tuple(np.round(np.arange(0.1, 0.95, 0.05), 2))


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two masks; 1.0 when both are empty (nothing to find, nothing found)."""
    pred, truth = np.asarray(pred) > 0, np.asarray(truth) > 0
    denom = int(pred.sum()) + int(truth.sum())
    return 1.0 if denom == 0 else 2.0 * int((pred & truth).sum()) / denom


@torch.no_grad()
def predict_small(network, case: Case, context: int, device, batch: int = 32):
    """(prob, cam or None) at network resolution (z, S, S); cam normalised by the volume max."""
    network.eval()
    probs, cams = [], []
    nz = case.image.shape[0]
    for start in range(0, nz, batch):
        idx = np.arange(start, min(nz, start + batch))
        x = torch.from_numpy(preprocess.stack_neighbours(case.image, context, idx)).to(device)
        out = network(x.float())
        probs.append(torch.sigmoid(out["seg"][:, 0]).cpu().numpy())
        if "class_map" in out:
            cams.append(cam_from_class_map(out["class_map"]).cpu().numpy())
    prob = np.concatenate(probs)
    cam = None
    if cams:
        cam = np.concatenate(cams)
        peak = float(cam.max())
        cam = cam / peak if peak > 0 else cam
    return prob, cam


def validate(network, cases: list[Case], context: int, device, use_cam: bool) -> dict:
    """Mean Dice on the original grids. use_cam: score thresholded CAMs and pick the best threshold
    (the tags-only model has no trained seg head); else the seg head at 0.5."""
    if not cases:
        return {"val_dice": float("nan")}
    per_thr = {t: [] for t in CAM_THRESHOLDS}
    seg_dice = []
    for case in cases:
        ny, nx = case.original_label.shape[1:]
        prob, cam = predict_small(network, case, context, device)
        if use_cam:
            cam_full = preprocess.resize_slices(cam, (ny, nx))
            for t in CAM_THRESHOLDS:
                per_thr[t].append(dice(cam_full >= t, case.original_label))
        else:
            prob_full = preprocess.resize_slices(prob, (ny, nx))
            seg_dice.append(dice(prob_full >= 0.5, case.original_label))
    network.train()
    if use_cam:
        means = {t: float(np.mean(v)) for t, v in per_thr.items()}
        best = max(means, key=means.get)
        return {"val_dice": means[best], "cam_threshold": float(best)}
    return {"val_dice": float(np.mean(seg_dice))}
