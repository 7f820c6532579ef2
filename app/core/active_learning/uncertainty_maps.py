"""What the GUI shows of the model's doubt about one open case: a per-voxel uncertainty map (for a
heat-map overlay) and a per-slice profile (for a strip beside the slice slider).

Both come from one MC-dropout run at network resolution; the map is resized back onto the
volume's grid, the profile is each slice's mean (every slice has the same pixel count at network
resolution, so it is proportional to the total doubt in that slice).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.active_learning.base import PoolCase
from app.core.active_learning.mc_dropout import MEASURES, case_mc_steps
from app.core.jobs import CancelToken, Job, Progress, run_job
from models import preprocess


@dataclass
class UncertaintyResult:
    voxel_map: np.ndarray       # (z, y, x) float32 on the volume's grid
    slice_profile: np.ndarray   # (z,) float64
    probability: np.ndarray     # (z, y, x) float32: mean foreground probability over the passes
    measure: str
    passes: int


def _array(volume) -> np.ndarray:
    return np.asarray(getattr(volume, "array", volume))


def uncertainty_steps(volume, model, mc_samples: int = 8, measure: str = "variance", seed: int = 0,
                      cancel: CancelToken | None = None) -> Job[UncertaintyResult]:
    """volume: an app.core.volume.Volume or a (z, y, x) array; model: a LoadedModel with dropout.
    Yields Progress per MC pass."""
    if measure not in MEASURES:
        raise ValueError(f"unknown uncertainty measure {measure!r}; use one of {', '.join(MEASURES)}")
    array = _array(volume)
    modality = getattr(volume, "modality", None)
    case = PoolCase(case_id="volume", image=array,
                    modality=modality if modality in ("CT", "MR") else None)
    inner = case_mc_steps(model, case, mc_samples, seed)
    try:
        while True:
            if cancel is not None:
                cancel.raise_if_cancelled()
            try:
                yield next(inner)
            except StopIteration as stop:
                stats = stop.value
                break
    finally:
        inner.close()
    small = stats.measure(measure).astype(np.float32)
    ny, nx = array.shape[1:]
    voxel_map = preprocess.resize_slices(small, (ny, nx), order=1)
    probability = preprocess.resize_slices(stats.mean, (ny, nx), order=1)
    profile = small.reshape(small.shape[0], -1).mean(axis=1).astype(np.float64)
    yield Progress(mc_samples, mc_samples, "uncertainty map ready")
    return UncertaintyResult(voxel_map, profile, probability, measure, mc_samples)


def uncertainty_map(volume, model, mc_samples: int = 8, measure: str = "variance",
                    seed: int = 0) -> np.ndarray:
    """Per-voxel uncertainty (z, y, x) on the volume's grid."""
    return run_job(uncertainty_steps(volume, model, mc_samples, measure, seed)).voxel_map


def slice_uncertainty(volume, model, mc_samples: int = 8, measure: str = "variance",
                      seed: int = 0) -> np.ndarray:
    """Per-slice uncertainty (z,): where in the volume the model doubts most."""
    return run_job(uncertainty_steps(volume, model, mc_samples, measure, seed)).slice_profile
