"""Long work as generators: one job, two front ends (CLI/tests run it inline, the GUI on a thread).

A job is a generator that yields Progress between units of work (a case, a slice, an MC sample),
calls `cancel.raise_if_cancelled()` at those points, and returns its result. Cancellation is a token
passed in, so the job never needs to know who asked.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Generator, TypeVar

from app.core.errors import JobCancelled

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class CancelToken:
    def __init__(self):
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled()


Job = Generator[Progress, None, T]


def run_job(job: Job, on_progress: Callable[[Progress], None] | None = None) -> T:
    """Drive a job to completion in the calling thread and return what it returns."""
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(progress)
