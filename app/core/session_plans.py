"""Plans: the compute half of a session action, safe to run on a worker thread.

A plan is built on the GUI thread from copies of what the engine needs (the slice, the mask of the
active value, the prior's slice, every seed of that slice), so `compute()` / `job()` never read
the session and the session may change meanwhile; `session.apply(plan, result)` then decides
whether the result still fits (same `base_version`) and applies it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from app.core.errors import SegLoopError
from app.core.label_values import object_mask
from app.core.refine.base import Refiner, RefineOptions, RefineRequest, RefineResult
from app.core.seeds import Seed, plane_spacing, plane_view


class EngineError(SegLoopError):
    """An unknown or unusable refinement engine."""


def resolve_refiner(engine: str | Refiner) -> Refiner:
    if isinstance(engine, Refiner):
        return engine
    from app.core.refine import get_refiner

    try:
        return get_refiner(engine)
    except (KeyError, ValueError) as error:
        raise EngineError(str(error)) from None


@dataclass
class ClickPlan:
    seed: Seed
    value: int
    engine: str
    options: RefineOptions
    refiner: Refiner
    request: RefineRequest
    base_version: int
    overwrite: str = "lower"
    created: float = field(default_factory=time.perf_counter)

    def compute(self) -> RefineResult:
        """Run the engine (thread-safe: touches only this plan's copies)."""
        return self.refiner.refine(self.request)


def build_click_plan(session, seed: Seed) -> ClickPlan:
    axis, index = seed.axis, seed.index
    seeds = session.seeds.on_slice(axis, index) + (seed,)
    fg_clicks, bg_clicks, fg_scribbles, bg_scribbles = [], [], [], []
    for s in seeds:
        pts = s.plane_points()
        if s.kind == "click":
            (fg_clicks if s.foreground else bg_clicks).append(pts[0])
        else:
            (fg_scribbles if s.foreground else bg_scribbles).append(pts)
    value = session.active_value
    image = np.array(plane_view(session.volume.array, axis, index))
    mask = object_mask(plane_view(session.label, axis, index), value, session.overwrite)
    prior = None if session.prior is None else np.array(plane_view(session.prior, axis, index))
    request = RefineRequest(
        image=image, mask=mask, fg_clicks=fg_clicks, bg_clicks=bg_clicks,
        newest=seed.plane_points()[0], newest_is_fg=seed.foreground, prior=prior,
        fg_scribbles=fg_scribbles, bg_scribbles=bg_scribbles,
        spacing=plane_spacing(session.volume.spacing, axis), options=session.options)
    return ClickPlan(seed, value, session.engine, session.options, session._refiner, request,
                     session.version, session.overwrite)


@dataclass
class VolumeResult:
    """The 0/1 mask of the plan's label value inside `box` (z0, z1, y0, y1, x0, x1); applied with
    the multi-class rule (1 -> value; 0 clears only that value). An empty mask: no change."""
    box: tuple[int, int, int, int, int, int]
    mask: np.ndarray
    seconds: float = 0.0


@dataclass
class VolumePlan:
    """A long 3D action (propagation): `job(cancel)` is a generator job returning a VolumeResult."""
    kind: str
    details: dict
    base_version: int
    value: int
    make_job: Callable
    overwrite: str = "lower"
    created: float = field(default_factory=time.perf_counter)

    def job(self, cancel=None):
        return self.make_job(cancel)

    def compute(self, cancel=None) -> VolumeResult:
        from app.core.jobs import run_job

        return run_job(self.job(cancel))


def build_propagation_plan(session, axis: int, index: int, options: dict) -> VolumePlan:
    from app.core.session_propagation import propagation_job_factory

    make_job, details = propagation_job_factory(session, axis, index, options)
    return VolumePlan("propagate", details, session.version, session.active_value, make_job,
                      session.overwrite)
