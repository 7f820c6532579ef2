"""Batch pre-labelling: a model's proposal for many cases, one job for the CLI and the GUI.

Each result is written (atomically) to OUT/<case>.nii.gz on its image's grid as soon as that case
finishes, so a cancelled or crashed batch keeps every finished case, and a rerun skips them (a file
already there that reads back on the image's grid). One bad case never stops the batch: it is
reported with its reason and the next case runs.

With a case store, a finished case moves to "pre-labelled" and points at its file. Cases the user
has started or finished ("in progress", "done") are skipped: a proposal must never replace work.

Cancel stops between cases and, through segment_volume_job, between slice batches of a case; the
job then returns its summary (cancelled=True) instead of raising, so the caller can still say what
was done.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.core.case_store import CaseRecord, CaseStore
from app.core.errors import InputError, JobCancelled, SegLoopError
from app.core.jobs import CancelToken, Job, Progress
from app.core.volume import Volume, case_name

log = logging.getLogger(__name__)

PRELABELLED = "pre-labelled"
PROTECTED_STATUSES = ("in progress", "done")
LABEL_ENDING = ".nii.gz"


@dataclass(frozen=True)
class BatchCase:
    name: str
    image_path: Path
    record: CaseRecord | None = None


@dataclass
class BatchSummary:
    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (case, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (case, reason)
    not_started: list[str] = field(default_factory=list)           # left when cancelled
    cancelled: bool = False
    seconds: dict[str, float] = field(default_factory=dict)        # read + segment + write, per done case
    model_name: str = ""
    out_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled

    def text(self) -> str:
        head = (f"{len(self.done)} pre-labelled, {len(self.failed)} failed, {len(self.skipped)} skipped"
                + (f", cancelled with {len(self.not_started)} not started" if self.cancelled else ""))
        lines = [head]
        lines += [f"failed {case}: {reason}" for case, reason in self.failed]
        lines += [f"skipped {case}: {reason}" for case, reason in self.skipped]
        return "\n".join(lines)


def as_batch_cases(cases) -> list[BatchCase]:
    """CaseRecords, DiscoveredCases, (name, image path) pairs or plain image paths -> BatchCases."""
    out = []
    for item in cases:
        if isinstance(item, BatchCase):
            out.append(item)
        elif isinstance(item, CaseRecord):
            out.append(BatchCase(item.name, Path(item.image_path), item))
        elif hasattr(item, "image_path") and hasattr(item, "name"):
            out.append(BatchCase(item.name, Path(item.image_path)))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            out.append(BatchCase(str(item[0]), Path(item[1])))
        elif isinstance(item, (str, os.PathLike)):
            out.append(BatchCase(case_name(item), Path(item)))
        else:
            raise TypeError(f"cannot pre-label {item!r}: give CaseRecords or (name, image path) pairs")
    return out


SELECTIONS = ("all", "not done", "selection")


def select_cases(store: CaseStore, which: str = "not done", selection=None) -> list[CaseRecord]:
    """The cases a GUI batch offers: every case, those not done, or the given records/ids."""
    if which == "all":
        return store.list_cases()
    if which == "not done":
        return [r for r in store.list_cases() if r.status != "done"]
    if which == "selection":
        return [store.get(r.id if isinstance(r, CaseRecord) else int(r)) for r in (selection or [])]
    raise ValueError(f"which must be one of {SELECTIONS}, got {which!r}")


def default_out_dir(results_dir, model_name: str) -> Path:
    """results/prelabels/<model>/: one folder per model, so a rerun with another model does not
    mistake the first model's files for finished work."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(model_name).stem)
    return Path(results_dir) / "prelabels" / safe


def output_path(out_dir, name: str) -> Path:
    return Path(out_dir) / f"{name}{LABEL_ENDING}"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class _Eta:
    """Time left from the mean time of the cases segmented so far (skipped ones cost ~nothing)."""

    def __init__(self):
        self.times: list[float] = []

    def text(self, cases_left: int, elapsed_in_case: float = 0.0) -> str:
        if not self.times:
            return ""
        mean = sum(self.times) / len(self.times)
        return f" — ETA {format_duration(max(0.0, cases_left * mean - elapsed_in_case))}"


def prelabel_job(cases, model_name: str, out_dir, store: CaseStore | None = None,
                 skip_existing: bool = True, device=None, cancel: CancelToken | None = None) -> Job:
    """Generator job: yields Progress(k, n, "case k+1 of n: name — ETA …") and returns a BatchSummary.

    cases: CaseRecords (with a store), DiscoveredCases or (name, image path) pairs; with a store,
    cases that are not records yet are registered. Raises (before any case runs) only when the
    model cannot be loaded or out_dir cannot be created."""
    from app.core.segmentation import load_model

    items = as_batch_cases(cases)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output folder {out_dir} ({error.strerror or error}).") from None
    load_model(model_name, device)  # an unknown or damaged model fails once, not once per case
    n = len(items)
    summary = BatchSummary(model_name=model_name, out_dir=out_dir)
    eta = _Eta()
    counts: dict[str, int] = {}
    for item in items:
        counts[item.name.lower()] = counts.get(item.name.lower(), 0) + 1
    yield Progress(0, n, f"pre-labelling {n} cases with {model_name}")
    for k, item in enumerate(items):
        if cancel is not None and cancel.cancelled:
            summary.cancelled, summary.not_started = True, [i.name for i in items[k:]]
            break
        prefix = f"case {k + 1} of {n}: {item.name}"
        yield Progress(k, n, prefix + eta.text(n - k))
        start = time.perf_counter()
        try:
            if counts[item.name.lower()] > 1:
                raise InputError(f"{counts[item.name.lower()]} cases in this batch are named "
                                 f"'{item.name}'; their results would overwrite each other.")
            outcome = yield from _prelabel_case(item, model_name, out_dir, store, skip_existing,
                                                device, cancel, k, n, prefix, eta, start)
        except JobCancelled:
            summary.cancelled, summary.not_started = True, [i.name for i in items[k:]]
            break
        except SegLoopError as error:
            summary.failed.append((item.name, _one_line(str(error))))
            continue
        except Exception as error:  # noqa: BLE001 - one bad case must not stop the batch
            log.exception("pre-labelling %s (%s) failed", item.name, item.image_path)
            summary.failed.append((item.name, f"unexpected error with {item.image_path.name}: "
                                              f"{type(error).__name__}: {_one_line(str(error))} "
                                              "(details in the log)"))
            continue
        if outcome is None:
            summary.done.append(item.name)
            summary.seconds[item.name] = time.perf_counter() - start
            eta.times.append(summary.seconds[item.name])
        else:
            summary.skipped.append((item.name, outcome))
    finished = n - len(summary.not_started)
    yield Progress(finished, n, ("cancelled: " if summary.cancelled else "finished: ")
                   + summary.text().splitlines()[0])
    return summary


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _prelabel_case(item: BatchCase, model_name, out_dir: Path, store, skip_existing, device,
                   cancel, k, n, prefix, eta: _Eta, start: float) -> Job:
    """Returns None when the case was pre-labelled, or the reason it was skipped."""
    from app.core.segmentation import segment_volume_job
    from app.core.volume_io import read_label, read_volume, write_label

    target = output_path(out_dir, item.name)
    if _same_file(target, item.image_path):
        raise InputError(f"the output {target} would overwrite the image itself; choose another "
                         "output folder.")
    record = _record_for(store, item)
    if record is not None and record.status in PROTECTED_STATUSES:
        return f"status '{record.status}': the annotator's work is kept"
    volume = read_volume(item.image_path)
    if skip_existing and target.exists() and _readable_on_grid(target, volume, read_label):
        _mark(store, record, target, None)
        return "already pre-labelled (its file is there and fits the image)"
    job = segment_volume_job(volume, model_name, device=device, cancel=cancel)
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            result = stop.value
            break
        elapsed = time.perf_counter() - start
        yield Progress(k, n, f"{prefix} — {step.message}{eta.text(n - k, elapsed)}")
    if cancel is not None:
        cancel.raise_if_cancelled()  # the user asked to stop: do not publish a late result
    write_label(result.label.array, volume, target)
    _mark(store, record, target, model_name)
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _readable_on_grid(path: Path, volume: Volume, read_label) -> bool:
    try:
        read_label(path, volume)
    except SegLoopError:
        return False  # damaged or on another grid: segment again and replace it
    return True


def _record_for(store: CaseStore | None, item: BatchCase) -> CaseRecord | None:
    if store is None:
        return None
    if item.record is not None:
        return store.get(item.record.id)  # the current status, not the one when the batch began
    return store.add_case(item.image_path, name=item.name)


def _mark(store: CaseStore | None, record: CaseRecord | None, target: Path, model_name: str | None) -> None:
    if store is None or record is None:
        return
    try:
        store.set_label(record.id, target, status=PRELABELLED)
        if model_name:
            store.record_work(record.id, model_used=model_name)
    except SegLoopError as error:
        raise SegLoopError(f"the label was written to {target} but the case database was not "
                           f"updated ({error}); run the batch again to update it.") from None
