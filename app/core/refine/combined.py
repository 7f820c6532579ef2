"""`combined`: the correction network's probability as the prior of geodesic-crf's graph cut.

The network sees the click and the local shape; the graph cut adds hard seed constraints, image
edges and geodesic locality (geodesic_crf's window, free zone and tidy-up). Inside the network's
box (its patch, widened around a large object: correction_net.network_probability) its
probability replaces the network prior of the request;
outside, the request's prior (if any) is kept, discounted by how much it disagreed with the click
where it landed (prior_trust; chosen on the development cases, benchmarks/clicks_dev.py), and with
none the prior is neutral (0.5). A first foreground click on an empty neighbourhood also takes the
geodesic cut's region when that region's edge is clear (refine/clear_object.py).
"""
from __future__ import annotations

import time

import numpy as np

from app.core.refine.base import CheckedRequest, Refiner, RefineRequest, widest_side
from app.core.refine.clear_object import clear_region, is_first_click_on_empty
from app.core.refine.correction_net import network_probability
from app.core.refine.geodesic_crf import GeodesicCRFRefiner, GeodesicParams


def discounted_prior(prior: np.ndarray, point, is_fg: bool) -> np.ndarray:
    """The volume prior shrunk towards 0.5 by how much it agreed with the click at its pixel.

    A click that contradicts the prior where it lands says the prior is wrong around it (a blob
    the U-Net is sure of, but the user is not); a prior that agreed (>= 0.5 on the click's side)
    is kept as it is."""
    v = float(prior[tuple(point)])
    trust = min(1.0, 2.0 * (v if is_fg else 1.0 - v))
    if trust >= 1.0:
        return prior
    return (0.5 + (prior - 0.5) * trust).astype(np.float32)


class CombinedRefiner(Refiner):
    name = "combined"

    def __init__(self, params: GeodesicParams | None = None, weights=None,
                 patch: int | None = None, prior_trust: bool = True, max_zoom: float | None = None,
                 clear_contrast: float | None = 3.0):
        # The net's probability is sharper and click-aware: weigh it more than a volume prior.
        self.params = params or GeodesicParams(prior_weight=1.5)
        self.weights = weights
        self.patch = patch            # None: the size the net was trained on
        self.prior_trust = prior_trust
        self.max_zoom = max_zoom      # None: the zoom the net was trained with
        self.clear_contrast = clear_contrast   # None: never take the geodesic region on a first click
        self._cut = GeodesicCRFRefiner(self.params)

    def _refine(self, request: RefineRequest, checked: CheckedRequest):
        t0 = time.perf_counter()
        box, prob = self._network_probability(request, checked)
        if request.prior is not None:
            prior = np.array(request.prior, np.float32, copy=True)
            if self.prior_trust:
                prior = discounted_prior(prior, checked.newest, checked.newest_is_fg)
        else:
            prior = np.full(checked.mask.shape, 0.5, np.float32)
        y0, y1, x0, x1 = box
        prior[y0:y1, x0:x1] = prob
        t1 = time.perf_counter()
        self._cut.params = self.params
        setup = self._cut.prepare(request, checked)
        mask, region, timings = self._cut.cut(setup, request, checked, prior)
        timings = dict(timings, network=t1 - t0)
        if self.clear_contrast is not None and is_first_click_on_empty(
                checked.mask, checked.newest, checked.newest_is_fg):
            # the same window cut again without the network: the image's own idea of the object
            geodesic, _, _ = self._cut.cut(setup, request, checked, None)
            clear = clear_region(geodesic, checked.image, checked.newest, self.clear_contrast)
            if clear is not None:
                mask = mask.copy()
                mask[clear] = 1
        return mask, region, timings

    def _network_probability(self, request: RefineRequest, checked: CheckedRequest):
        """(box, probability in the box); a seam for the variants of benchmarks/clicks_dev.py."""
        box, prob, _ = network_probability(checked, self.weights, self.patch, self.max_zoom,
                                           widest_side(checked, request.options))
        return box, prob
