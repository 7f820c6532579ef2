"""The model-based and model-free samplers: random, MC-dropout variance, entropy and BALD."""
from __future__ import annotations

import numpy as np

from app.core.active_learning.base import PoolCase, Sampler, ScoringContext, digest
from app.core.active_learning.mc_dropout import REGIONS, case_mc_steps, score_from_stats
from app.core.jobs import Job, Progress


class RandomSampler(Sampler):
    """A uniform random score per case, fixed by (seed, case id): the same case gets the same score
    whatever order or subset it is scored in, so an interrupted run resumes to the same queue."""

    name = "random"

    def score_case(self, case: PoolCase, context: ScoringContext) -> Job[float]:
        value = np.random.default_rng(int(digest(f"{context.seed}:{case.case_id}"), 16)).random()
        yield Progress(1, 1, "random draw")
        return float(value)


class MCDropoutSampler(Sampler):
    """N stochastic passes with dropout on; the chosen per-voxel measure averaged over a region
    (mc_dropout.py explains the regions)."""

    measure = "variance"
    needs_model = True
    default_region = "foreground"

    def __init__(self, region: str | None = None):
        region = region or self.default_region
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; use one of {', '.join(REGIONS)}")
        self.region = region

    def units_per_case(self, context: ScoringContext) -> int:
        return max(1, int(context.mc_samples))

    def score_case(self, case: PoolCase, context: ScoringContext) -> Job[float]:
        model = context.model
        stats = yield from case_mc_steps(model, case, self.units_per_case(context), context.seed,
                                         context.slice_stride, context.device)
        small = case.small(model.input_size, model.normalisation)
        return score_from_stats(stats, small, self.measure, self.region)

    def settings(self, context: ScoringContext) -> str:
        return (f"mc={self.units_per_case(context)},seed={context.seed},"
                f"stride={context.slice_stride},region={self.region}")


class MCVarianceSampler(MCDropoutSampler):
    """Seed 001's acquisition: variance of the foreground probability over the passes."""

    name = "mc-variance"
    measure = "variance"


class MCEntropySampler(MCDropoutSampler):
    """Predictive entropy H(mean p): high where the averaged prediction is undecided, whether that
    comes from the model's doubt or from an ambiguous boundary."""

    name = "mc-entropy"
    measure = "entropy"


class MCBaldSampler(MCDropoutSampler):
    """Mutual information (BALD) H(mean p) - mean H(p_t): only the disagreement between passes,
    i.e. the model's own doubt, which more labels can reduce."""

    name = "mc-bald"
    measure = "bald"
