"""`combined`: the correction network's probability as the prior of geodesic-crf's graph cut.

The network sees the click and the local shape; the graph cut adds hard seed constraints, image
edges and geodesic locality (geodesic_crf's window, free zone and tidy-up). Inside the network's
64x64 patch its probability replaces the network prior of the request; outside, the request's
prior (if any) is kept, and with none the prior is neutral (0.5).
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from app.core.refine.base import CheckedRequest, Refiner, RefineRequest
from app.core.refine.correction_net import network_probability
from app.core.refine.geodesic_crf import GeodesicCRFRefiner, GeodesicParams


class CombinedRefiner(Refiner):
    name = "combined"

    def __init__(self, params: GeodesicParams | None = None, weights=None,
                 patch: int | None = None):
        # The net's probability is sharper and click-aware: weigh it more than a volume prior.
        self.params = params or GeodesicParams(prior_weight=1.5)
        self.weights = weights
        self.patch = patch            # None: the size the net was trained on
        self._cut = GeodesicCRFRefiner(self.params)

    def _refine(self, request: RefineRequest, checked: CheckedRequest):
        t0 = time.perf_counter()
        box, prob, _ = network_probability(checked, self.weights, self.patch)
        if request.prior is not None:
            prior = np.array(request.prior, np.float32, copy=True)
        else:
            prior = np.full(checked.mask.shape, 0.5, np.float32)
        y0, y1, x0, x1 = box
        prior[y0:y1, x0:x1] = prob
        t1 = time.perf_counter()
        self._cut.params = self.params
        mask, region, timings = self._cut._refine(replace(request, prior=prior), checked)
        timings = dict(timings, network=t1 - t0)
        return mask, region, timings
