"""`geodesic-nearest`: each pixel near the click takes the class of its geodesically nearest seed.

The baseline that beat the published WIA pipeline on our data. The current mask acts as a third
"seed" at a fixed distance: a pixel farther than that from every click keeps its label, so the
label changes only where some click is geodesically closer than the mask's say-so.
"""
from __future__ import annotations

import time

import numpy as np

from app.core.refine.base import CheckedRequest, Refiner, RefineRequest, choose_window
from app.core.refine.geodesic_crf import GeodesicParams, free_zone, seed_evidence


class GeodesicNearestRefiner(Refiner):
    name = "geodesic-nearest"

    def __init__(self, params: GeodesicParams | None = None, keep_distance: float = 1.0):
        self.params = params or GeodesicParams()
        self.keep_distance = keep_distance     # in units of tau: where the current mask wins

    def _refine(self, request: RefineRequest, checked: CheckedRequest):
        p = self.params
        t0 = time.perf_counter()
        box, reach_mm = choose_window(checked, request.options)
        y0, y1, x0, x1 = box
        _img, fg, bg, d_fg, d_bg = seed_evidence(checked, box, p, reach_mm)
        current = checked.mask[y0:y1, x0:x1]
        keep = self.keep_distance * p.tau
        label = np.where(d_fg < d_bg, 1, 0).astype(np.uint8)
        label = np.where(np.minimum(d_fg, d_bg) < keep, label, current)
        zone = free_zone(checked, box, d_fg if checked.newest_is_fg else d_bg, p.zone * p.tau)
        label = np.where(zone, label, current)
        out = checked.mask.copy()
        out[y0:y1, x0:x1] = label
        return out, box, {"geodesic": time.perf_counter() - t0}
