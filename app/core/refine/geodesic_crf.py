"""`geodesic-crf`: the WIA refinement (geodesic seed similarity + network prior + graph cut), fixed.

What differs from the published pipeline, and why:
- The geodesic distance has a spatial term (refine/geodesic.py), so a click's reach is bounded:
  one background click can no longer claim a whole tumour of similar grey level.
- Evidence is added once, in log-odds, with no softmax (the original's double softmax squeezed
  the unary to ~[0.38, 0.62], leaving the smoothing term to decide the cut):
      L = m(p) * (2 * mask - 1) + w_prior * logit(prior) + alpha * (S_fg - S_bg),
  where S = exp(-(D / tau)^2). The current mask is evidence too: far from every seed the label
  keeps its state unless the image says otherwise.
- Work is local: a window and a reach sized from the click's geometry (base.choose_window: the
  distance from the click to the nearest pixel already of its class), and inside the window only
  the "free zone" (pixels the newest click's class reaches, geodesically) may change; everything
  else in the window, and the window's frame, is a hard constraint equal to the current mask.
  The current label's own weight grows with distance from the click (mask_logit), so a click
  rewrites the label under it readily and the object far from it only on image evidence.
- The pairwise term acts: graph cut on the standardised window with sigma set from its own
  contrast (app/core/graphcut.py), seeds as hard constraints.
- Post-processing never undoes a seed: it removes only new islands that hold no foreground seed
  and fills only holes that hold no background seed, both inside the free zone.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from app.core import graphcut
from app.core.refine.base import (CheckedRequest, Refiner, RefineRequest, choose_window,
                                  frame_ring)
from app.core.refine.geodesic import (DEFAULT_METHOD, geodesic_distance, similarity,
                                      standardise_window)


@dataclass(frozen=True)
class GeodesicParams:
    method: str = DEFAULT_METHOD
    tau: float = 1.0              # similarity scale (distance units: see refine/geodesic.py)
    edge_scale: float = 5.0       # an intensity step of edge_scale noise SDs costs 1 tau
    alpha: float = 5.0            # weight of seed similarity in the log-odds
    m0: float = 1.0               # weight of the current mask in the log-odds at the click...
    m_far: float = 1.5            # ...rising to m0 + m_far one reach away for labelled pixels (an
                                  # object far from a click needs more evidence to shrink than
                                  # the label under it);
    m_far_bg: float = 0.0         # ...and to m0 + m_far_bg for unlabelled ones (an empty slice is
                                  # "not done yet", not confident background)
    prior_weight: float = 0.5     # weight of logit(prior)
    zone: float = 2.0             # free zone: same-class distance below zone * tau
    smooth_px: float = 1.0


def seed_evidence(checked: CheckedRequest, box, params: GeodesicParams, reach_mm: float):
    """Standardised window, seed masks and both geodesic distances (shared with geodesic-nearest)."""
    y0, y1, x0, x1 = box
    img = standardise_window(checked.image[y0:y1, x0:x1], params.smooth_px)
    fg, bg = checked.seed_masks(box)
    w = params.tau / max(reach_mm, 1e-3)
    d_fg = geodesic_distance(img, fg, checked.spacing, w, params.method, params.edge_scale)
    d_bg = geodesic_distance(img, bg, checked.spacing, w, params.method, params.edge_scale)
    return img, fg, bg, d_fg, d_bg


def mask_logit(checked: CheckedRequest, box, current, reach_mm: float, params: GeodesicParams):
    """Log-odds from the current label: +-m0 under the newest click, stronger farther away."""
    y0, y1, x0, x1 = box
    newest = np.ones((y1 - y0, x1 - x0), bool)
    pts = checked.newest_points - np.array([y0, x0])
    newest[pts[:, 0], pts[:, 1]] = False
    dist = ndimage.distance_transform_edt(newest, sampling=checked.spacing)
    ramp = 1.0 - np.exp(-np.square(dist / max(reach_mm, 1e-3)))
    labelled = current > 0
    weight = params.m0 + np.where(labelled, params.m_far, params.m_far_bg) * ramp
    return np.where(labelled, weight, -weight).astype(np.float32)


def free_zone(checked: CheckedRequest, box, d_same: np.ndarray, limit: float) -> np.ndarray:
    """Pixels the newest interaction may change: its class's geodesic reach, connected to it."""
    y0, y1, x0, x1 = box
    reach = d_same < limit
    pts = checked.newest_points - np.array([y0, x0])
    reach[pts[:, 0], pts[:, 1]] = True
    labels, _ = ndimage.label(reach)
    keep = np.unique(labels[pts[:, 0], pts[:, 1]])
    zone = np.isin(labels, keep[keep > 0])
    return ndimage.binary_dilation(zone, iterations=2)


@dataclass
class CutSetup:
    """Everything of one interaction's cut but the prior: what `combined` reuses to cut the same
    window twice (with the network's probability, and without it for the clear-object rule)."""
    box: tuple[int, int, int, int]
    img: np.ndarray           # standardised window
    fg: np.ndarray            # seed masks in the window
    bg: np.ndarray
    current: np.ndarray       # the label in the window
    label_logit: np.ndarray   # log-odds from the current label (mask_logit)...
    seed_logit: np.ndarray    # ...and from the seeds' geodesic similarity; the prior goes between
    zone: np.ndarray          # the newest interaction's free zone
    hard_fg: np.ndarray       # hard constraints: seeds, and the frozen label
    hard_bg: np.ndarray
    seconds: float            # time taken to build it


class GeodesicCRFRefiner(Refiner):
    name = "geodesic-crf"

    def __init__(self, params: GeodesicParams | None = None):
        self.params = params or GeodesicParams()

    def _refine(self, request: RefineRequest, checked: CheckedRequest):
        return self.cut(self.prepare(request, checked), request, checked, request.prior)

    def prepare(self, request: RefineRequest, checked: CheckedRequest) -> CutSetup:
        p = self.params
        t0 = time.perf_counter()
        box, reach_mm = choose_window(checked, request.options)
        y0, y1, x0, x1 = box
        img, fg, bg, d_fg, d_bg = seed_evidence(checked, box, p, reach_mm)
        current = checked.mask[y0:y1, x0:x1]
        label_logit = mask_logit(checked, box, current, reach_mm, p)
        seed_logit = p.alpha * (similarity(d_fg, p.tau) - similarity(d_bg, p.tau))
        zone = free_zone(checked, box, d_fg if checked.newest_is_fg else d_bg, p.zone * p.tau)
        frozen = ~zone | frame_ring(box, checked.mask.shape)
        hard_fg = fg | (frozen & (current > 0))
        hard_bg = (bg | (frozen & (current == 0))) & ~hard_fg
        return CutSetup(box, img, fg, bg, current, label_logit, seed_logit, zone & ~frozen,
                        hard_fg, hard_bg, time.perf_counter() - t0)

    def cut(self, setup: CutSetup, request: RefineRequest, checked: CheckedRequest, prior):
        """(whole-slice mask, box, timings) of the cut on `setup` with `prior` (slice-sized or None)."""
        t1 = time.perf_counter()
        y0, y1, x0, x1 = setup.box
        logit = setup.label_logit.copy()
        if prior is not None:
            window = np.clip(np.asarray(prior, np.float32)[y0:y1, x0:x1], 0.02, 0.98)
            logit += self.params.prior_weight * np.log(window / (1.0 - window))
        logit += setup.seed_logit
        prob = 1.0 / (1.0 + np.exp(-logit))
        cut = graphcut.graph_cut_2d(setup.img, prob, lam=request.options.lam,
                                    fg_seeds=setup.hard_fg, bg_seeds=setup.hard_bg)
        t2 = time.perf_counter()
        if request.options.dense_crf:
            cut = _dense_crf(setup.img, prob, cut, setup.hard_fg, setup.hard_bg)
        cut = tidy(cut, setup.current, setup.zone, setup.fg, setup.bg)

        out = checked.mask.copy()
        out[y0:y1, x0:x1] = cut
        timings = {"geodesic": setup.seconds, "cut": t2 - t1, "post": time.perf_counter() - t2}
        return out, setup.box, timings


def tidy(cut: np.ndarray, current: np.ndarray, free: np.ndarray, fg_seeds: np.ndarray,
         bg_seeds: np.ndarray) -> np.ndarray:
    """Undo islands (and holes) this cut created from nothing: a component that lies wholly in the
    free zone, was wholly the other class before, and holds no seed of its own class."""
    cut = cut.copy()
    for value, seeds in ((1, fg_seeds), (0, bg_seeds)):
        labels, n = ndimage.label(cut == value)
        if n <= 1:
            continue
        ids = np.arange(1, n + 1)
        inside = ndimage.minimum(free, labels, ids).astype(bool)          # every pixel free
        was_other = ~ndimage.maximum(current == value, labels, ids).astype(bool)
        seeded = ndimage.maximum(seeds, labels, ids).astype(bool)
        drop = ids[inside & was_other & ~seeded]
        if len(drop):
            cut[np.isin(labels, drop)] = 1 - value
    return cut


def _dense_crf(img, prob, cut, hard_fg, hard_bg):
    """Optional fully connected CRF on the window, seeds clamped (off by default: see report)."""
    import denseCRF

    lo, hi = np.percentile(img, [1, 99])
    grey = np.clip((img - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    rgb = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1))
    p = np.clip(np.where(cut > 0, 0.5 + 0.5 * prob, 0.5 * prob), 1e-3, 1 - 1e-3)
    p[hard_fg], p[hard_bg] = 1 - 1e-3, 1e-3
    probs = np.ascontiguousarray(np.stack([1 - p, p], axis=-1).astype(np.float32))
    # (w1, alpha, beta, w2, gamma, iterations): bilateral on grey + a small smoothness kernel
    out = denseCRF.densecrf(rgb, probs, (5.0, 10.0, 20.0, 3.0, 3.0, 5))
    out = (np.asarray(out) > 0).astype(np.uint8)
    out[hard_fg], out[hard_bg] = 1, 0
    return out
