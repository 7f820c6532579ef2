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


class GeodesicCRFRefiner(Refiner):
    name = "geodesic-crf"

    def __init__(self, params: GeodesicParams | None = None):
        self.params = params or GeodesicParams()

    def _refine(self, request: RefineRequest, checked: CheckedRequest):
        p = self.params
        t0 = time.perf_counter()
        box, reach_mm = choose_window(checked, request.options)
        y0, y1, x0, x1 = box
        img, fg, bg, d_fg, d_bg = seed_evidence(checked, box, p, reach_mm)
        t1 = time.perf_counter()

        current = checked.mask[y0:y1, x0:x1]
        logit = mask_logit(checked, box, current, reach_mm, p)
        if request.prior is not None:
            prior = np.clip(np.asarray(request.prior, np.float32)[y0:y1, x0:x1], 0.02, 0.98)
            logit += p.prior_weight * np.log(prior / (1.0 - prior))
        logit += p.alpha * (similarity(d_fg, p.tau) - similarity(d_bg, p.tau))
        prob = 1.0 / (1.0 + np.exp(-logit))

        zone = free_zone(checked, box, d_fg if checked.newest_is_fg else d_bg, p.zone * p.tau)
        frozen = ~zone | frame_ring(box, checked.mask.shape)
        hard_fg = fg | (frozen & (current > 0))
        hard_bg = (bg | (frozen & (current == 0))) & ~hard_fg
        cut = graphcut.graph_cut_2d(img, prob, lam=request.options.lam,
                                    fg_seeds=hard_fg, bg_seeds=hard_bg)
        t2 = time.perf_counter()
        if request.options.dense_crf:
            cut = _dense_crf(img, prob, cut, hard_fg, hard_bg)
        cut = tidy(cut, current, zone & ~frozen, fg, bg)

        out = checked.mask.copy()
        out[y0:y1, x0:x1] = cut
        timings = {"geodesic": t1 - t0, "cut": t2 - t1, "post": time.perf_counter() - t2}
        return out, box, timings


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
