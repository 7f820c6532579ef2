"""Overlap scores and the generalised energy distance between two sets of masks."""
from __future__ import annotations

import numpy as np


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two binary masks; 1.0 when both are empty (nothing to find, nothing found)."""
    p, t = pred.astype(bool), truth.astype(bool)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(p, t).sum()) / total


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union; 1.0 when both are empty."""
    p, t = pred.astype(bool), truth.astype(bool)
    union = int(np.logical_or(p, t).sum())
    return 1.0 if union == 0 else int(np.logical_and(p, t).sum()) / union


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of d = 1 - IoU over all pairs (a_i, b_j), i = j included; masks (n, ...) binary."""
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    # two empty masks agree perfectly: distance 0
    dist = np.where(union > 0, 1.0 - inter / np.maximum(union, 1.0), 0.0)
    return float(dist.mean())


def generalised_energy_distance(samples: np.ndarray, references: np.ndarray) -> float:
    """GED^2 = 2 E d(S, Y) - E d(S, S') - E d(Y, Y') with d = 1 - IoU (Kohl et al. 2018).

    `samples` (n, H, W) are masks drawn from a model for one image, `references` (m, H, W) the real
    annotators of that image. Every expectation runs over all pairs of the two empirical sets (i = j
    included), so identical sets score exactly 0 and a single deterministic prediction (n = 1) has
    no diversity term; the value is never negative.
    """
    cross = _mean_distance(samples, references)
    within_s = _mean_distance(samples, samples)
    within_y = _mean_distance(references, references)
    return 2.0 * cross - within_s - within_y
