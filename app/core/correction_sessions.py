"""Iterative training of the correction net with the app's engine in the loop (the wiring).

models/correction/session_data.py records robot sessions given any `step`; this module supplies
the slices (MSD layout, the app's own readers and proposals) and the `combined` engine as the
step, with the weights being trained, so the net learns from the masks the app really shows at
click 2, 3, ... of a session.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.correction.session_data import SessionSlice

START_MODELS = ("unet", "fpsnet-cam")     # proposals the sessions start from (plus zero, GT+-)


def combined_step(network, patch: int | None = None):
    """step(image, mask, fg, bg, newest, is_fg, spacing) -> mask, by the `combined` engine (its
    default settings), the net given `patch`-pixel patches (None: its training size)."""
    from app.core.refine import CombinedRefiner, RefineRequest

    refiner = CombinedRefiner(weights=network, patch=patch)

    def step(image, mask, fg, bg, newest, is_fg, spacing):
        request = RefineRequest(image=image, mask=mask.astype(np.uint8), fg_clicks=list(fg),
                                bg_clicks=list(bg), newest=newest, newest_is_fg=is_fg,
                                spacing=spacing)
        return refiner.refine(request).mask

    return step


def _proposal(volume, model: str, cache_dir: Path | None, case: str) -> np.ndarray:
    """The app's proposal (thresholded, largest component) for a whole volume, cached per case."""
    cache = cache_dir / model / f"{case}.npz" if cache_dir is not None else None
    if cache is not None and cache.exists():
        stored = np.load(cache)
        if stored["mask"].shape == volume.shape:
            return stored["mask"] > 0
    from app.core.segmentation import segment_volume

    mask = segment_volume(volume, model).label.array > 0
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, mask=mask.astype(np.uint8))
    return mask


def session_slices(data_dir, cases: list[str], rng: np.random.Generator, per_case: int = 12,
                   split: str = "Tr", models=START_MODELS, cache_dir=None, log=print):
    """SessionSlice items: up to per_case foreground slices per case (evenly spread), each with
    the starts zero, GT eroded or dilated (2-5 px), and every model's proposal on that slice."""
    from scipy import ndimage

    from app.core.volume_io import read_label, read_volume

    data_dir = Path(data_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else None
    items = []
    for case in cases:
        volume = read_volume(data_dir / f"images{split}" / f"{case}_0000.nii.gz")
        label = read_label(data_dir / f"labels{split}" / f"{case}.nii.gz", volume).array > 0
        zs = np.nonzero(label.reshape(label.shape[0], -1).any(axis=1))[0]
        if len(zs) == 0:
            continue
        chosen = zs[np.unique(np.linspace(0, len(zs) - 1, min(per_case, len(zs))).round().astype(int))]
        proposals = {m: _proposal(volume, m, cache_dir, case) for m in models}
        spacing = (float(volume.spacing[1]), float(volume.spacing[0]))
        for z in chosen:
            gt = label[z]
            r = int(rng.integers(2, 6))
            changed = (ndimage.binary_erosion(gt, iterations=r) if rng.random() < 0.5
                       else ndimage.binary_dilation(gt, iterations=r))
            starts = {"zero": np.zeros_like(gt), "gt-changed": changed}
            starts.update({m: p[z] for m, p in proposals.items()})
            items.append(SessionSlice(case, np.asarray(volume.array[z], np.float32), gt, starts,
                                      spacing))
        log(f"{case}: {len(chosen)} slices")
    return items
