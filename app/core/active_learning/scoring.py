"""The scoring job: score the pool's cases with a sampler and keep every score in the case store.

Each score is stored the moment it exists, under (case, sampler, version), where the version names
what the score depends on: the model's weights (their SHA-256), the labelled set for samplers that
compare against it, and the sampler's settings. So a job that was cancelled or crashed resumes
where it stopped (cases already scored under this version are skipped), and a new model or a
changed labelled set simply does not find its scores and recomputes them; older scores stay in the
table, never mixed in.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

from app.core.active_learning.base import CaseId, PoolCase, Sampler, ScoringContext, digest
from app.core.jobs import CancelToken, Job, Progress


def model_version(model) -> str:
    """A short id of a model's weights: the sidecar's SHA-256 when loaded from a file, else a
    hash of the in-memory parameters (a model trained in this session)."""
    meta = getattr(model, "meta", None) or {}
    sha = meta.get("weights_sha256")
    if sha:
        return str(sha)[:16]
    h = hashlib.sha256()
    for key, tensor in model.network.state_dict().items():
        h.update(key.encode("utf-8"))
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def scoring_version(sampler: Sampler, context: ScoringContext) -> str:
    parts = []
    if sampler.depends_on_model(context) and context.model is not None:
        parts.append(f"model={model_version(context.model)}")
    if sampler.needs_labelled:
        ids = ",".join(sorted(str(c.case_id) for c in context.labelled))
        parts.append(f"labelled={digest(ids, 12)}")
    parts.append(sampler.settings(context))
    return ";".join(parts)


def scoring_job(store, sampler: Sampler, cases: Sequence[PoolCase], context: ScoringContext,
                version: str | None = None, cancel: CancelToken | None = None
                ) -> Job[dict[CaseId, float]]:
    """Score `cases` (PoolCase with case_id = the store's case id) and store each score.

    Yields Progress per unit of work (an MC pass, a VAAL training step, a case); checks `cancel`
    at every one. Returns {case id: score} for all `cases`, stored ones included.
    """
    version = version or scoring_version(sampler, context)
    stored = store.scores(sampler.name, version)
    result = {c.case_id: stored[c.case_id] for c in cases if c.case_id in stored}
    pending = [c for c in cases if c.case_id not in stored]
    if not pending:
        yield Progress(len(cases), len(cases), f"{sampler.name}: every case already scored")
        return result
    sampler.check(context)

    def checked(inner):
        """Pass the inner job's progress on, checking the token at each step; close it on exit
        so its clean-up (e.g. dropout back off) runs even when cancelled."""
        try:
            while True:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                try:
                    progress = next(inner)
                except StopIteration as stop:
                    return stop.value
                yield progress
        finally:
            inner.close()

    # a pool-wide fit sees every case (already scored ones too): the same pool gives the same fit
    yield from checked(sampler.prepare(cases, context))
    units = sampler.units_per_case(context)
    total = units * len(pending)
    for i, case in enumerate(pending):
        if cancel is not None:
            cancel.raise_if_cancelled()
        inner = sampler.score_case(case, context)
        label = f"{sampler.name}: {case.label} ({i + 1}/{len(pending)})"
        score = None
        try:
            while True:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                try:
                    step = next(inner)
                except StopIteration as stop:
                    score = float(stop.value)
                    break
                done = i * units + min(units, int(round(step.fraction * units)))
                yield Progress(done, total, f"{label}: {step.message}" if step.message else label)
        finally:
            inner.close()
        store.set_score(case.case_id, sampler.name, version, score)
        result[case.case_id] = score
        case.release()
        yield Progress((i + 1) * units, total, f"{label}: score {score:.4g}")
    return result
