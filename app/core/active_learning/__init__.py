"""Active learning: which case to annotate next.

Samplers score open cases (`Sampler.score(cases, context) -> {case_id: score}`, higher = more
worth annotating); the scoring job stores the scores per model version in the case store; the
queue reads them back in order. See base.py for the interface, registry.py for the names.
"""
from app.core.active_learning.base import PoolCase, Sampler, ScoringContext
from app.core.active_learning.ordering import (labelled_pool, next_case, open_pool, queue,
                                               unscored)
from app.core.active_learning.registry import (SAMPLERS, UnknownSamplerError, get_sampler,
                                               sampler_names)
from app.core.active_learning.scoring import model_version, scoring_job, scoring_version
from app.core.active_learning.uncertainty_maps import (UncertaintyResult, slice_uncertainty,
                                                       uncertainty_map, uncertainty_steps)

__all__ = [
    "PoolCase", "SAMPLERS", "Sampler", "ScoringContext", "UncertaintyResult", "UnknownSamplerError",
    "get_sampler", "labelled_pool", "model_version", "next_case", "open_pool", "queue",
    "sampler_names", "scoring_job", "scoring_version", "slice_uncertainty", "uncertainty_map",
    "uncertainty_steps", "unscored",
]
