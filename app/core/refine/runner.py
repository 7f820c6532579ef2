"""Refinement off the caller's thread, where a newer click supersedes a stale one.

One worker thread, one pending slot: `submit` replaces whatever is waiting, and a result whose
request is no longer the newest is dropped instead of delivered. The callback runs on the worker
thread; a GUI forwards it to its own thread (a queued signal) before touching widgets.
"""
from __future__ import annotations

import threading
from typing import Callable

from app.core.refine.base import Refiner, RefineRequest, RefineResult

Callback = Callable[[int, RefineResult | None, BaseException | None], None]


class RefineRunner:
    def __init__(self):
        self._cond = threading.Condition()
        self._pending: tuple[int, Refiner, RefineRequest, Callback] | None = None
        self._latest = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="refine-worker", daemon=True)
        self._thread.start()

    def submit(self, refiner: Refiner, request: RefineRequest, callback: Callback) -> int:
        """Queue a refinement; returns its ticket. callback(ticket, result, error) fires only if
        no newer request was submitted before it finished."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the refinement runner is shut down")
            self._latest += 1
            self._pending = (self._latest, refiner, request, callback)
            self._cond.notify()
            return self._latest

    def is_current(self, ticket: int) -> bool:
        with self._cond:
            return ticket == self._latest

    def shutdown(self, timeout: float | None = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                ticket, refiner, request, callback = self._pending
                self._pending = None
            result, error = None, None
            try:
                result = refiner.refine(request)
            except BaseException as exc:          # delivered to the caller, never lost in a thread
                error = exc
            if self.is_current(ticket):
                callback(ticket, result, error)
