"""The annotation queue: cases not done yet, most worth annotating first, read from stored scores.

Samplers write scores; the queue only reads them (so the GUI can show the queue instantly and a
stale version simply yields no entries until the scoring job has run for the current one).
"""
from __future__ import annotations

from app.core.active_learning.base import PoolCase, Sampler

OPEN_STATUSES = ("new", "pre-labelled", "in progress")


def _name(sampler: Sampler | str) -> str:
    return sampler if isinstance(sampler, str) else sampler.name


def queue(store, sampler: Sampler | str, model_version: str) -> list[tuple[object, float]]:
    """[(CaseRecord, score)] for scored cases whose status is not 'done', highest score first
    (ties by name, then id, so the order is the same every time)."""
    scores = store.scores(_name(sampler), model_version)
    rows = [(r, scores[r.id]) for r in store.list_cases() if r.status != "done" and r.id in scores]
    return sorted(rows, key=lambda rs: (-rs[1], rs[0].name, rs[0].id))


def next_case(store, sampler: Sampler | str, model_version: str, after_id: int | None = None):
    """The top of the queue, skipping `after_id` (the case just finished or skipped); None if empty."""
    for record, _ in queue(store, sampler, model_version):
        if record.id != after_id:
            return record
    return None


def unscored(store, sampler: Sampler | str, model_version: str) -> list:
    """Open cases without a score under this version: what the scoring job still has to do."""
    scores = store.scores(_name(sampler), model_version)
    return [r for r in store.list_cases() if r.status != "done" and r.id not in scores]


def pool_case(record) -> PoolCase:
    """A store record as a lazily loaded PoolCase (the image is read when first scored)."""
    def load(path=record.image_path):
        from app.core.volume_io import read_volume

        return read_volume(path).array

    modality = record.modality if record.modality in ("CT", "MR") else None
    return PoolCase(case_id=record.id, load=load, modality=modality, name=record.name)


def open_pool(store) -> list[PoolCase]:
    """Cases still to annotate, as lazily loaded PoolCases keyed by their store id."""
    return [pool_case(r) for r in store.list_cases() if r.status in OPEN_STATUSES]


def labelled_pool(store) -> list[PoolCase]:
    """Cases marked done (what VAAL compares the open ones against)."""
    return [pool_case(r) for r in store.list_cases(status="done")]
