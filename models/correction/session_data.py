"""Training patches and validation recorded along robot sessions run with the app's own engine.

The first-click patches of data.py show the net a synthetic error and one fresh click. In the app
the net meets click 2, 3, ... of a session: a mask an engine has already edited, and the earlier
clicks at the places the robot chose. Iterative training (as in RITM) closes that gap: run the
robot with the engine (and the current weights) on training slices, and at every click record the
patch the net was given, with the ground truth as the target.

The engine is passed in as `step(image, mask, fg, bg, newest, newest_is_fg, spacing) -> mask`,
so this module does not depend on the app; app/cli/train_correction.py wires in `combined`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from models.correction.data import robot_click
from models.correction.inputs import PATCH, crop, normalise_slice, patch_box, stack_inputs


@dataclass
class SessionSlice:
    """One slice to run sessions on, with the start masks to try."""
    case: str
    image: np.ndarray                  # raw intensities (y, x)
    gt: np.ndarray                     # bool (y, x)
    starts: dict                       # name -> bool (y, x)
    spacing: tuple[float, float]       # (y, x) mm


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


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


def record_session(step, item: SessionSlice, start: np.ndarray, rng: np.random.Generator,
                   max_clicks: int = 10, noisy: bool = False, stop_dice: float = 0.97,
                   patch: int = PATCH):
    """[(image (1,P,P), mask+clicks (3,P,P), target (1,P,P))], one per click of the session."""
    gt = item.gt
    norm = normalise_slice(item.image)
    mask = start.astype(bool)
    clicked = np.zeros(gt.shape, bool)
    fg, bg, out = [], [], []
    for _ in range(max_clicks):
        click = robot_click(gt, mask, clicked, rng if noisy else None)
        if click is None:
            break
        (cy, cx), is_fg = click
        clicked[cy, cx] = True
        (fg if is_fg else bg).append((cy, cx))
        box = patch_box(gt.shape, (cy, cx), patch)
        img, rest = stack_inputs(norm, mask, fg, bg, box)
        out.append((img, rest, crop(gt.astype(np.float32), box, 0.0)[None]))
        mask = np.asarray(step(item.image, mask, fg, bg, (cy, cx), is_fg, item.spacing)) > 0
        if dice(mask, gt) >= stop_dice:
            break
    return out


def session_patches(step, items, rng: np.random.Generator, starts_per_slice: int = 2,
                    max_clicks: int = 10, log=None, patch: int = PATCH):
    """Patches from sessions on every slice: `starts_per_slice` of its starts drawn at random,
    each with the exact or the noisy clicker (even odds). Returns three float16 arrays."""
    samples = []
    for i, item in enumerate(items):
        names = sorted(item.starts)
        for name in rng.permutation(names)[:starts_per_slice]:
            samples.extend(record_session(step, item, item.starts[name], rng, max_clicks,
                                          noisy=bool(rng.random() < 0.5), patch=patch))
        if log is not None and (i + 1) % 50 == 0:
            log(f"sessions: {i + 1}/{len(items)} slices, {len(samples)} patches")
    if not samples:
        return None
    return [np.stack([s[k] for s in samples]).astype(np.float16) for k in range(3)]


def session_score(step, items, clicks: int = 5) -> dict:
    """Robot sessions (exact clicker) from every start of every slice: the mean Dice after 1..clicks
    clicks (the area under the Dice curve divided by `clicks`) and NoC@90 capped at `clicks` + 1.
    The selection criterion of iterative training: what the benchmark measures, on held-out slices."""
    aucs, nocs = [], []
    for item in items:
        for start in item.starts.values():
            mask, clicked = start.astype(bool), np.zeros(item.gt.shape, bool)
            fg, bg, dices = [], [], []
            for _ in range(clicks):
                click = robot_click(item.gt, mask, clicked)
                if click is not None:
                    (cy, cx), is_fg = click
                    clicked[cy, cx] = True
                    (fg if is_fg else bg).append((cy, cx))
                    mask = np.asarray(step(item.image, mask, fg, bg, (cy, cx), is_fg,
                                           item.spacing)) > 0
                dices.append(dice(mask, item.gt))
            aucs.append(float(np.mean(dices)))
            start_ok = dice(start.astype(bool), item.gt) >= 0.9
            hit = [k + 1 for k, d in enumerate(dices) if d >= 0.9]
            nocs.append(0 if start_ok else (hit[0] if hit else clicks + 1))
    return {"dice_auc": float(np.mean(aucs)) if aucs else 0.0,
            "noc90": float(np.mean(nocs)) if nocs else 0.0, "sessions": len(aucs)}
