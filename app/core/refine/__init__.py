"""Click refinement engines behind one verb: `get_refiner(name).refine(RefineRequest)`.

Adding an engine is a new Refiner subclass and one line in REFINERS.
"""
from __future__ import annotations

from app.core.refine.base import (ClickOutsideImageError, Refiner, RefineOptions, RefineRequest,
                                  RefineResult)
from app.core.refine.combined import CombinedRefiner
from app.core.refine.correction_net import CorrectionNetRefiner
from app.core.refine.geodesic_crf import GeodesicCRFRefiner, GeodesicParams
from app.core.refine.geodesic_nearest import GeodesicNearestRefiner
from app.core.refine.grabcut import GrabCutRefiner
from app.core.refine.none import NoRefiner
from app.core.refine.runner import RefineRunner

REFINERS: dict[str, type[Refiner]] = {
    "geodesic-crf": GeodesicCRFRefiner,
    "geodesic-nearest": GeodesicNearestRefiner,
    "grabcut": GrabCutRefiner,
    "none": NoRefiner,
    "correction-net": CorrectionNetRefiner,
    "combined": CombinedRefiner,
}
# The app's engine: the best in the robot-user benchmark (BENCHMARKS.md section 3, 2026-11-24:
# combined NoC@90 5.06 vs geodesic-crf 6.61 from the U-Net proposal, p95 28 ms per click).
DEFAULT_REFINER = "combined"


def get_refiner(name: str = DEFAULT_REFINER) -> Refiner:
    try:
        return REFINERS[name]()
    except KeyError:
        raise ValueError(f"unknown refinement engine {name!r}; "
                         f"available: {', '.join(sorted(REFINERS))}") from None


__all__ = ["ClickOutsideImageError", "CombinedRefiner", "CorrectionNetRefiner", "DEFAULT_REFINER",
           "GeodesicCRFRefiner", "GeodesicParams",
           "GeodesicNearestRefiner", "GrabCutRefiner", "NoRefiner", "REFINERS", "Refiner",
           "RefineOptions", "RefineRequest", "RefineResult", "RefineRunner", "get_refiner"]
