"""The simulated user of PROTOCOLS.md section 1 (robot clicker) and its metrics.

Next click: the false-negative (GT and not pred) and false-positive (pred and not GT) regions get
a Euclidean distance transform each, computed on the slice padded by one background pixel (so
the image border counts as an edge) and ignoring pixels already clicked; the click goes to the
argmax of the larger maximum, foreground if it lies in FN, background if in FP.
- exact clicker: that argmax;
- noisy clicker: a uniformly random pixel of the same error component whose distance is at least
  half the maximum (its "inner half"), from a seeded generator.
A session runs up to 20 clicks; metrics: NoC@85/90 (first click count reaching the Dice target,
0 if the start already does, 20 if never), NoF@90, Dice after 0/1/3/5/10 clicks, and the seconds
each refinement call took.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from app.core.propagation import propagate as propagate_slice
from app.core.refine import RefineOptions, RefineRequest, Refiner

MAX_CLICKS = 20
DICE_AT = (0, 1, 3, 5, 10)


@dataclass(frozen=True)
class Click:
    y: int
    x: int
    foreground: bool


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def _edt(region: np.ndarray, clicked: np.ndarray) -> np.ndarray:
    padded = np.pad(region, 1, constant_values=False)
    dist = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    dist[clicked] = 0.0
    return dist


def next_click(gt: np.ndarray, pred: np.ndarray, clicked: np.ndarray, mode: str = "exact",
               rng: np.random.Generator | None = None) -> Click | None:
    """The robot's next click on a slice, or None when nothing is left to fix."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    fn_dist = _edt(gt & ~pred, clicked)
    fp_dist = _edt(~gt & pred, clicked)
    fn_max, fp_max = float(fn_dist.max(initial=0)), float(fp_dist.max(initial=0))
    if max(fn_max, fp_max) <= 0:
        return None
    foreground = fn_max >= fp_max
    dist = fn_dist if foreground else fp_dist
    peak = np.unravel_index(int(np.argmax(dist)), dist.shape)
    if mode == "exact":
        return Click(int(peak[0]), int(peak[1]), foreground)
    if mode != "noisy":
        raise ValueError(f"unknown clicker {mode!r}; use 'exact' or 'noisy'")
    if rng is None:
        raise ValueError("the noisy clicker needs a seeded numpy Generator")
    labels, _ = ndimage.label(dist > 0)
    inner = (labels == labels[peak]) & (dist >= 0.5 * dist[peak])
    candidates = np.argwhere(inner)
    y, x = candidates[int(rng.integers(len(candidates)))]
    return Click(int(y), int(x), foreground)


@dataclass
class SessionResult:
    dices: list[float]                 # Dice after 0, 1, 2, ... clicks (len <= MAX_CLICKS + 1)
    seconds: list[float]               # one per refinement call
    clicks: list[Click] = field(default_factory=list)

    def dice_after(self, k: int) -> float:
        # A session that stopped early (target held, or nothing left to click) keeps its last Dice.
        return self.dices[min(k, len(self.dices) - 1)]

    def noc(self, target: float) -> int:
        for k, d in enumerate(self.dices):
            if d >= target:
                return k
        return MAX_CLICKS


def run_session(refiner: Refiner, image: np.ndarray, gt: np.ndarray, start_mask: np.ndarray,
                prior: np.ndarray | None = None, spacing=(1.0, 1.0), mode: str = "exact",
                seed: int = 0, max_clicks: int = MAX_CLICKS, stop_at: float | None = 0.90,
                min_clicks: int = max(DICE_AT), options: RefineOptions | None = None,
                on_click=None) -> SessionResult:
    """One robot session on one slice.

    stop_at: stop once Dice >= stop_at and at least min_clicks clicks were made (every reported
    metric is then known; later clicks only cost time). None runs all max_clicks.
    on_click(mask, fg_clicks, bg_clicks, click): called with the state the engine is about to be
    given (iterative training records it).
    """
    rng = np.random.default_rng(seed)
    gt = np.asarray(gt, bool)
    mask = (np.asarray(start_mask) > 0).astype(np.uint8)
    clicked = np.zeros(gt.shape, bool)
    fg_clicks: list[tuple[int, int]] = []
    bg_clicks: list[tuple[int, int]] = []
    result = SessionResult(dices=[dice(mask, gt)], seconds=[])
    options = options or RefineOptions()
    reached = result.dices[0] >= (stop_at or 2.0)
    for k in range(1, max_clicks + 1):
        if stop_at is not None and reached and k > min_clicks:
            break
        click = next_click(gt, mask, clicked, mode, rng)
        if click is None:
            break
        clicked[click.y, click.x] = True
        (fg_clicks if click.foreground else bg_clicks).append((click.y, click.x))
        if on_click is not None:
            on_click(mask, fg_clicks, bg_clicks, click)
        request = RefineRequest(image=image, mask=mask, fg_clicks=list(fg_clicks),
                                bg_clicks=list(bg_clicks), newest=(click.y, click.x),
                                newest_is_fg=click.foreground, prior=prior, spacing=spacing,
                                options=options)
        t = time.perf_counter()
        mask = refiner.refine(request).mask
        result.seconds.append(time.perf_counter() - t)
        result.clicks.append(click)
        result.dices.append(dice(mask, gt))
        reached = reached or (stop_at is not None and result.dices[-1] >= stop_at)
    return result


def evaluation_slices(label_volume: np.ndarray, every_k: int) -> list[int]:
    """2D mode: the slice with the largest foreground area plus every k-th foreground slice.

    The k-th slices are taken at phase k // 2 (the middle of each run of k), so the sample does
    not systematically include the object's first slice, its smallest tip.
    """
    areas = np.asarray(label_volume > 0).reshape(label_volume.shape[0], -1).sum(axis=1)
    fg = np.flatnonzero(areas)
    if len(fg) == 0:
        return []
    k = max(1, every_k)
    chosen = set(fg[k // 2:: k].tolist())
    chosen.add(int(np.argmax(areas)))
    return sorted(int(z) for z in chosen)


# --- 3D mode: the robot picks the slice too -------------------------------------------------

@dataclass(frozen=True)
class Click3D:
    z: int
    y: int
    x: int
    foreground: bool


def next_click_3d(gt: np.ndarray, pred: np.ndarray, clicked: np.ndarray,
                  spacing_zyx=(1.0, 1.0, 1.0)) -> Click3D | None:
    """Click at the EDT maximum (in mm) of the largest 26-connected error component."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    error = gt ^ pred
    labels, n = ndimage.label(error, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    component = labels == (int(np.argmax(sizes)) + 1)
    dist = ndimage.distance_transform_edt(np.pad(component, 1), sampling=spacing_zyx)[1:-1, 1:-1, 1:-1]
    dist[clicked] = 0.0
    if dist.max() <= 0:
        return None
    z, y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click3D(int(z), int(y), int(x), bool(gt[z, y, x]))


def run_session_3d(refiner: Refiner, volume: np.ndarray, gt: np.ndarray, start_mask: np.ndarray,
                   prior: np.ndarray | None = None, spacing_zyx=(1.0, 1.0, 1.0),
                   max_clicks: int = 5, options: RefineOptions | None = None,
                   propagate: bool = False) -> SessionResult:
    """3D robot with a 2D engine: each click refines the slice it lands on; Dice is volumetric.

    propagate: after each click, carry the corrected slice to its neighbours as the app's
    Propagate action does (app/core/propagation.py: until the object ends or a slice that already
    holds it; slices the robot clicked on are locked). One click + one propagation per step; the
    step's seconds include both.
    SessionResult.dices[k] is the volume Dice after k clicks; area_under_dice() sums them.
    """
    gt = np.asarray(gt, bool)
    mask = (np.asarray(start_mask) > 0).astype(np.uint8).copy()
    clicked = np.zeros(gt.shape, bool)
    per_slice: dict[int, tuple[list, list]] = {}
    result = SessionResult(dices=[dice(mask, gt)], seconds=[])
    options = options or RefineOptions()
    spacing_yx = (float(spacing_zyx[1]), float(spacing_zyx[2]))
    for _ in range(max_clicks):
        click = next_click_3d(gt, mask, clicked, spacing_zyx)
        if click is None:
            break
        clicked[click.z, click.y, click.x] = True
        fg, bg = per_slice.setdefault(click.z, ([], []))
        (fg if click.foreground else bg).append((click.y, click.x))
        request = RefineRequest(image=volume[click.z], mask=mask[click.z], fg_clicks=list(fg),
                                bg_clicks=list(bg), newest=(click.y, click.x),
                                newest_is_fg=click.foreground,
                                prior=None if prior is None else prior[click.z],
                                spacing=spacing_yx, options=options)
        t = time.perf_counter()
        mask[click.z] = refiner.refine(request).mask
        if propagate and mask[click.z].any():
            locked = frozenset(z for z in per_slice if z != click.z)
            mask = (propagate_slice(volume, mask, click.z, spacing_zyx, locked, prior=prior).label > 0
                    ).astype(np.uint8)
        result.seconds.append(time.perf_counter() - t)
        result.clicks.append(Click(click.y, click.x, click.foreground))
        result.dices.append(dice(mask, gt))
    return result


def area_under_dice(result: SessionResult, clicks: int = 5, include_start: bool = True) -> float:
    """Sum of Dice over clicks 0..clicks (max clicks + 1), or 1..clicks (max clicks) without the
    start, as in the interactive 3D challenge."""
    ks = range(0 if include_start else 1, clicks + 1)
    return float(sum(result.dice_after(k) for k in ks))
