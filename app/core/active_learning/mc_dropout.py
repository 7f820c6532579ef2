"""Monte-Carlo dropout statistics of a segmentation network over one volume (seed 001, extended).

N stochastic passes with dropout on (BatchNorm keeps its running statistics) give, per voxel of the
network-resolution volume: the mean foreground probability, its variance, the largest probability
any pass gave, and the mean over passes of each pass's binary entropy. From these come the three
acquisition measures: variance (seed 001), predictive entropy H(mean p) and the mutual information
(BALD) H(mean p) - mean H(p_t), the part of the entropy that comes from the model's own doubt
rather than from an ambiguous boundary.

Aggregating per-voxel values over a whole volume (the seed's choice) lets empty background - air,
padding, the large field of view of a limb MR - dilute the score, so a case is ranked by its field
of view as much as by the model's doubt. So each measure is averaged over a region:
  volume      every voxel (the seed)
  body        voxels inside the imaged body (normalised intensity above a low level)
  foreground  voxels where at least one pass predicts tumour (p >= 0.5): where the model's doubt
              changes the segmentation; a case where no pass predicts anything scores its
              (tiny) volume mean, i.e. last.
benchmarks/active_learning.py measures how each ranks cases by their true error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from app.core.jobs import Job, Progress
from app.core.active_learning.base import PoolCase
from models import preprocess

REGIONS = ("volume", "body", "foreground")
MEASURES = ("variance", "entropy", "bald")
BODY_LEVEL = 0.05        # normalised intensity (air/background maps to ~0 for CT and MR alike)
_EPS = 1e-6


@dataclass
class MCStats:
    """Per-voxel statistics at network resolution over the scored slices (z', S, S)."""

    mean: np.ndarray
    variance: np.ndarray
    max_prob: np.ndarray
    expected_entropy: np.ndarray
    passes: int
    slices: np.ndarray          # the z indices these rows belong to

    @property
    def predictive_entropy(self) -> np.ndarray:
        return binary_entropy(self.mean)

    @property
    def mutual_information(self) -> np.ndarray:
        return np.maximum(self.predictive_entropy - self.expected_entropy, 0.0)

    def measure(self, name: str) -> np.ndarray:
        if name == "variance":
            return self.variance
        if name == "entropy":
            return self.predictive_entropy
        if name == "bald":
            return self.mutual_information
        raise ValueError(f"unknown uncertainty measure {name!r}; use one of {', '.join(MEASURES)}")


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of a Bernoulli(p), elementwise (0 at p = 0 or 1, 1 at p = 0.5)."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def _set_mc_mode(network: torch.nn.Module) -> None:
    network.eval()
    for module in network.modules():
        if isinstance(module, (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d,
                               torch.nn.Dropout3d)):
            module.train()


def has_dropout(network: torch.nn.Module) -> bool:
    return any(isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d, torch.nn.Dropout3d))
               and m.p > 0 for m in network.modules())


def mc_dropout_steps(network: torch.nn.Module, small: np.ndarray, context: int, passes: int,
                     seed: int = 0, slice_stride: int = 1, batch_size: int = 32, device=None
                     ) -> Job[MCStats]:
    """MC statistics of `network` on a prepared volume small (z, S, S); yields Progress per pass."""
    if passes < 1:
        raise ValueError("MC dropout needs at least one pass")
    if not has_dropout(network):
        raise ValueError("the model has no dropout layers, so MC-dropout uncertainty is undefined")
    device = torch.device(device) if device is not None else next(network.parameters()).device
    nz = small.shape[0]
    rows = np.arange(0, nz, max(1, int(slice_stride)))
    shape = (len(rows),) + small.shape[1:]
    p_sum = np.zeros(shape, np.float64)
    p_sq = np.zeros(shape, np.float64)
    p_max = np.zeros(shape, np.float32)
    h_sum = np.zeros(shape, np.float64)
    was_training = network.training
    torch.manual_seed(seed)       # the same seed gives the same dropout masks: reproducible scores
    _set_mc_mode(network)
    try:
        with torch.no_grad():
            for p in range(passes):
                for start in range(0, len(rows), batch_size):
                    sel = slice(start, start + batch_size)
                    x = torch.from_numpy(preprocess.stack_neighbours(small, context, rows[sel]))
                    logits = network(x.to(device, dtype=torch.float32))["seg"][:, 0]
                    prob = torch.sigmoid(logits).double().cpu().numpy()
                    p_sum[sel] += prob
                    p_sq[sel] += prob * prob
                    np.maximum(p_max[sel], prob, out=p_max[sel])
                    h_sum[sel] += binary_entropy(prob)
                yield Progress(p + 1, passes, f"MC pass {p + 1}/{passes}")
    finally:
        network.train(was_training)
    mean = p_sum / passes
    return MCStats(mean=mean.astype(np.float32),
                   variance=np.maximum(p_sq / passes - mean * mean, 0.0).astype(np.float32),
                   max_prob=p_max, expected_entropy=(h_sum / passes).astype(np.float32),
                   passes=passes, slices=rows)


def case_mc_steps(model, case: PoolCase, passes: int, seed: int = 0, slice_stride: int = 1,
                  device=None) -> Job[MCStats]:
    """MC statistics of a loaded model (models.checkpoint.LoadedModel) on one pool case."""
    small = case.small(model.input_size, model.normalisation)
    return (yield from mc_dropout_steps(model.network, small, model.context, passes, seed,
                                        slice_stride, device=device))


def region_mask(stats: MCStats, small: np.ndarray, region: str) -> np.ndarray | None:
    """Boolean mask (z', S, S) of the voxels to average over; None = all of them."""
    if region == "volume":
        return None
    if region == "body":
        return small[stats.slices] > BODY_LEVEL
    if region == "foreground":
        return stats.max_prob >= 0.5
    raise ValueError(f"unknown region {region!r}; use one of {', '.join(REGIONS)}")


def aggregate(values: np.ndarray, mask: np.ndarray | None) -> float:
    """Mean of values over mask; an empty mask falls back to the whole-volume mean."""
    if mask is None or not mask.any():
        return float(np.mean(values, dtype=np.float64))
    return float(np.mean(values[mask], dtype=np.float64))


def score_from_stats(stats: MCStats, small: np.ndarray, measure: str, region: str) -> float:
    return aggregate(stats.measure(measure), region_mask(stats, small, region))
