"""`none`: leave the label exactly as it is (the benchmark's floor; it ignores every click)."""
from __future__ import annotations

from app.core.refine.base import CheckedRequest, Refiner, RefineRequest


class NoRefiner(Refiner):
    name = "none"
    honours_seeds = False

    def _refine(self, request: RefineRequest, checked: CheckedRequest):
        y, x = checked.newest
        return checked.mask.copy(), (y, y, x, x), {}
