"""Iterative training of the correction net: robot sessions with the app's engine in the loop.

The first-click patches of models/correction/data.py show the net a synthetic error and one fresh
click. In the app the net meets click 2, 3, ... of a session: a mask the engine has already edited,
and earlier clicks where the user put them. Iterative training (as in RITM) closes that gap: run
the benchmark's own robot (app/core/robot_user.run_session) with `combined` and the weights being
trained on training slices, and record at every click the patch the net was given, with the
ground truth as the target. The same robot on held-out slices scores each epoch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.robot_user import dice, run_session
from models.correction.data import box_sample, stack_samples
from models.correction.inputs import PATCH, normalise_slice, patch_box, zoom_side

START_MODELS = ("unet", "fpsnet-cam")     # proposals the sessions start from (plus zero, GT+-)


@dataclass
class SessionSlice:
    """One slice to run sessions on, with the start masks to try."""
    case: str
    image: np.ndarray                  # raw intensities (y, x)
    gt: np.ndarray                     # bool (y, x)
    starts: dict                       # name -> bool (y, x)
    spacing: tuple[float, float]       # (y, x) mm


def combined_engine(network, max_zoom: float | None = None):
    """`combined` (its default settings) with a network in memory, run at the patch size the
    network carries and at max_zoom (None: the zoom it carries; correction_net.network_probability)."""
    from app.core.refine import CombinedRefiner

    return CombinedRefiner(weights=network, max_zoom=max_zoom)


def session_slices(data_dir, cases: list[str], rng: np.random.Generator, per_case: int = 12,
                   split: str = "Tr", models=START_MODELS, cache_dir=None, log=print):
    """SessionSlice items: up to per_case foreground slices per case (evenly spread), each with
    the starts zero, GT eroded or dilated (2-5 px), and every model's proposal on that slice."""
    from scipy import ndimage

    from app.core.segmentation import cached_proposal
    from app.core.volume_io import read_label, read_volume

    data_dir = Path(data_dir)
    items = []
    for case in cases:
        volume = read_volume(data_dir / f"images{split}" / f"{case}_0000.nii.gz")
        label = read_label(data_dir / f"labels{split}" / f"{case}.nii.gz", volume).array > 0
        zs = np.nonzero(label.reshape(label.shape[0], -1).any(axis=1))[0]
        if len(zs) == 0:
            continue
        chosen = zs[np.unique(np.linspace(0, len(zs) - 1, min(per_case, len(zs))).round().astype(int))]
        proposals = {m: cached_proposal(volume, m, None if cache_dir is None
                                        else Path(cache_dir) / m / f"{case}.npz")[0]
                     for m in models}
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


def synthetic_slices(rng: np.random.Generator, count: int = 12, size: int = 96):
    """Clear disks (bright or dark, radius 6-24 px, contrast 4-11 noise SDs) on noise, started from
    an empty mask: the obvious objects a first click must take. In the validation score they keep
    an iteration from trading them for the benchmark's low-contrast tumours (as one did)."""
    yy, xx = np.mgrid[:size, :size]
    items = []
    for k in range(count):
        radius = float(rng.uniform(6, 24))
        cy, cx = rng.uniform(size / 2 - 8, size / 2 + 8, 2)
        gt = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
        noise = float(rng.uniform(5, 12))
        contrast = float(rng.uniform(4, 11)) * noise * (1 if k % 2 == 0 else -1)
        image = (rng.normal(100, noise, gt.shape) + contrast * gt).astype(np.float32)
        items.append(SessionSlice(f"synthetic{k}", image, gt, {"zero": np.zeros_like(gt)},
                                  (1.0, 1.0)))
    return items


def record_session(refiner, item: SessionSlice, start: np.ndarray, seed: int,
                   max_clicks: int = 10, noisy: bool = False, stop_dice: float = 0.97,
                   patch: int = PATCH, max_zoom: float = 1.0):
    """[(image (1,P,P), mask+clicks (3,P,P), target (1,P,P))], one per click of the session."""
    norm = normalise_slice(item.image)
    out = []

    def keep(mask, fg, bg, click):
        centre = (click.y, click.x)
        box = patch_box(item.gt.shape, centre, zoom_side(mask, centre, patch, max_zoom))
        out.append(box_sample(norm, mask, item.gt, fg, bg, box, patch))

    run_session(refiner, item.image, item.gt, start, spacing=item.spacing,
                mode="noisy" if noisy else "exact", seed=seed, max_clicks=max_clicks,
                stop_at=stop_dice, min_clicks=0, on_click=keep)
    return out


def session_patches(refiner, items, rng: np.random.Generator, starts_per_slice: int = 2,
                    max_clicks: int = 10, log=None, patch: int = PATCH, max_zoom: float = 1.0):
    """Patches from sessions on every slice: `starts_per_slice` of its starts drawn at random,
    each with the exact or the noisy clicker (even odds). Returns three float16 arrays."""
    samples = []
    for i, item in enumerate(items):
        for name in rng.permutation(sorted(item.starts))[:starts_per_slice]:
            samples.extend(record_session(refiner, item, item.starts[name],
                                          int(rng.integers(2 ** 31)), max_clicks,
                                          noisy=bool(rng.random() < 0.5), patch=patch,
                                          max_zoom=max_zoom))
        if log is not None and (i + 1) % 50 == 0:
            log(f"sessions: {i + 1}/{len(items)} slices, {len(samples)} patches")
    return stack_samples(samples)


def session_score(refiner, items, clicks: int = 5) -> dict:
    """Robot sessions (exact clicker) from every start of every slice: the mean Dice after 1..clicks
    clicks and NoC@90 capped at `clicks` + 1. The selection criterion of iterative training: what
    the benchmark measures, on held-out slices."""
    aucs, nocs = [], []
    for item in items:
        for start in item.starts.values():
            result = run_session(refiner, item.image, item.gt, start, spacing=item.spacing,
                                 max_clicks=clicks, stop_at=None)
            dices = [result.dice_after(k) for k in range(1, clicks + 1)]
            aucs.append(float(np.mean(dices)))
            hit = [k for k, d in enumerate([dice(start, item.gt)] + dices) if d >= 0.9]
            nocs.append(hit[0] if hit else clicks + 1)
    return {"dice_auc": float(np.mean(aucs)) if aucs else 0.0,
            "noc90": float(np.mean(nocs)) if nocs else 0.0, "sessions": len(aucs)}
