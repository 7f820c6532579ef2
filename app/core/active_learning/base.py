"""The sampler interface: `score(cases, context) -> {case_id: score}`, higher = more worth annotating.

A sampler fills in `score_case` (one case, as a job: a generator yielding Progress and returning
the score) and, when it must look at the whole pool first (VAAL trains a VAE on it), `prepare`.
`score` runs both to the end; the scoring job (scoring.py) drives the same steps one case at a
time so it can report progress, cancel, store each score as soon as it exists, and resume.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import numpy as np

from app.core.jobs import Job, Progress, run_job
from models import preprocess

CaseId = int | str


@dataclass(eq=False)
class PoolCase:
    """One case as samplers see it: an id plus a way to get its image.

    image: the raw (z, y, x) array, or None with `load` returning it on first use (so a pool of
    cases does not sit in memory until each is scored). aux: a second modality on the same grid
    (M-VAAL's auxiliary input), if the case has one. Network-ready copies (normalised, resized to
    S x S) are cached per size; a caller that already holds them (training, benchmarks) can pass
    them in `prepared` so nothing is read twice.
    """

    case_id: CaseId
    image: np.ndarray | None = None
    load: Callable[[], np.ndarray] | None = None
    modality: str | None = None
    aux: np.ndarray | None = None
    name: str | None = None
    prepared: dict[int, np.ndarray] = field(default_factory=dict)

    def raw(self) -> np.ndarray:
        if self.image is None:
            if self.load is None:
                raise ValueError(f"case {self.case_id} has neither an image nor a loader")
            self.image = np.asarray(self.load())
        return self.image

    def resolved_modality(self) -> str:
        if self.modality not in ("CT", "MR"):
            self.modality = preprocess.guess_modality(self.raw())
        return self.modality

    def small(self, size: int, spec: dict | None = None) -> np.ndarray:
        """(z, size, size) float32 in [0, 1], as the networks see the case."""
        if size not in self.prepared:
            if self.prepared:
                # resizing a larger prepared copy gives the same picture without re-reading the file
                source = self.prepared[max(self.prepared)]
                self.prepared[size] = preprocess.resize_slices(source, (size, size), order=1)
            else:
                self.prepared[size] = preprocess.prepare_volume(
                    self.raw(), self.resolved_modality(), size, spec)
        return self.prepared[size]

    def release(self) -> None:
        """Forget the loaded image (keep cached small copies); call after scoring a lazy case."""
        if self.load is not None:
            self.image = None

    @property
    def label(self) -> str:
        return self.name or str(self.case_id)


@dataclass
class ScoringContext:
    """Everything a sampler may use besides the cases: the current model (None for samplers that
    need none), the already labelled cases (VAAL), MC settings and a seed."""

    model: object | None = None          # models.checkpoint.LoadedModel
    labelled: Sequence[PoolCase] = ()
    mc_samples: int = 8
    seed: int = 0
    slice_stride: int = 1                # score every k-th slice only (cheaper, same ranking)
    device: str | None = None


class Sampler(ABC):
    """Scores unlabelled cases; higher = more worth annotating next."""

    name: ClassVar[str] = ""
    needs_model: ClassVar[bool] = False
    needs_labelled: ClassVar[bool] = False

    def score(self, cases: Sequence[PoolCase], context: ScoringContext) -> dict[CaseId, float]:
        return run_job(self.score_steps(cases, context))

    def score_steps(self, cases: Sequence[PoolCase], context: ScoringContext
                    ) -> Job[dict[CaseId, float]]:
        self.check(context)
        yield from self.prepare(cases, context)
        scores = {}
        for case in cases:
            scores[case.case_id] = float((yield from self.score_case(case, context)))
        return scores

    def check(self, context: ScoringContext) -> None:
        if self.needs_model and context.model is None:
            raise ValueError(f"the '{self.name}' sampler needs a segmentation model")
        if self.needs_labelled and not context.labelled:
            raise ValueError(f"the '{self.name}' sampler needs some labelled cases to compare with")

    def prepare(self, cases: Sequence[PoolCase], context: ScoringContext) -> Job[None]:
        """Pool-wide work before any case is scored (default: none)."""
        return None
        yield  # pragma: no cover  (makes this a generator)

    @abstractmethod
    def score_case(self, case: PoolCase, context: ScoringContext) -> Job[float]:
        """Score one case, yielding Progress(done, total) in units of `units_per_case`."""

    def units_per_case(self, context: ScoringContext) -> int:
        return 1

    def depends_on_model(self, context: ScoringContext) -> bool:
        """Whether a new model makes the stored scores stale."""
        return self.needs_model

    def settings(self, context: ScoringContext) -> str:
        """What, besides the model and the labelled set, changes the scores (part of the version)."""
        return f"seed={context.seed}"


def digest(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def done_progress(units: int, message: str = "") -> Progress:
    return Progress(units, units, message)
