"""Samplers by name. Adding one is a class and one line here."""
from __future__ import annotations

from typing import Callable

from app.core.active_learning.base import Sampler
from app.core.errors import SegLoopError
from app.core.active_learning.samplers import (MCBaldSampler, MCEntropySampler, MCVarianceSampler,
                                               RandomSampler)
from app.core.active_learning.vaal_samplers import MVAALSampler, VAALSampler

SAMPLERS: dict[str, Callable[..., Sampler]] = {
    RandomSampler.name: RandomSampler,
    MCVarianceSampler.name: MCVarianceSampler,
    MCEntropySampler.name: MCEntropySampler,
    MCBaldSampler.name: MCBaldSampler,
    VAALSampler.name: VAALSampler,
    MVAALSampler.name: MVAALSampler,
}


class UnknownSamplerError(SegLoopError, ValueError):
    pass


def sampler_names() -> list[str]:
    return list(SAMPLERS)


def get_sampler(name: str, **kwargs) -> Sampler:
    """A new sampler instance; kwargs go to its constructor (e.g. region=, config=)."""
    try:
        factory = SAMPLERS[name]
    except KeyError:
        raise UnknownSamplerError(f"unknown sampler '{name}'; choose one of "
                                  f"{', '.join(SAMPLERS)}.") from None
    return factory(**kwargs)
