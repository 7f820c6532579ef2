"""The one refinement worker: a QThread that computes click plans, one at a time (rule 5).

The GUI thread hands a RefineJob over with `submit` (a queued signal) and gets it back through
`finished(job, result, error)`, also queued, so the job's result is applied on the GUI thread.
`plan.compute()` touches only the plan's own copies, so the session may change meanwhile; the
controller decides on the GUI thread whether the result still applies.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from PyQt5.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot

from app.gui.latency_probe import ClickTiming


@dataclass
class RefineJob:
    """One interaction on its way through the worker."""
    kind: str                       # "click" or "scribble"
    axis: int
    index: int
    points: list                    # plane (row, column) points
    foreground: bool
    timing: ClickTiming = field(default_factory=ClickTiming)
    plan: object = None             # ClickPlan, made on the GUI thread just before submitting
    session: object = None          # the session the plan was made on
    dropped: bool = False           # undone or its case closed before the result came back


class _Worker(QObject):
    finished = pyqtSignal(object, object, object)   # job, RefineResult or None, exception or None

    @pyqtSlot(object)
    def run(self, job: RefineJob) -> None:
        job.timing.compute_start = time.perf_counter()
        result, error = None, None
        try:
            result = job.plan.compute()
        except BaseException as exc:  # noqa: BLE001 - handed to the GUI thread, shown as a message
            error = exc
        job.timing.compute_end = time.perf_counter()
        self.finished.emit(job, result, error)


class RefineWorker(QObject):
    """Computes one job at a time on its own thread; `busy` is the job in flight (or None)."""

    finished = pyqtSignal(object, object, object)
    _run = pyqtSignal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.busy: RefineJob | None = None
        self._thread = QThread(self)
        self._thread.setObjectName("segloop-refine")
        self._worker = _Worker()
        self._worker.moveToThread(self._thread)
        self._run.connect(self._worker.run, Qt.QueuedConnection)
        self._worker.finished.connect(self._on_finished, Qt.QueuedConnection)
        self._thread.start()

    def submit(self, job: RefineJob) -> None:
        if self.busy is not None:
            raise RuntimeError("the refinement worker computes one job at a time")
        self.busy = job
        job.timing.submitted = time.perf_counter()
        self._run.emit(job)

    @pyqtSlot(object, object, object)
    def _on_finished(self, job, result, error) -> None:
        self.busy = None
        self.finished.emit(job, result, error)

    def warm_up(self, plan) -> None:
        """Compute a throw-away plan so the first real click does not pay for imports and the
        graph-cut worker process start (~1 s on this machine)."""
        if self.busy is None:
            self.submit(RefineJob("warm-up", 0, 0, [], True, plan=plan, dropped=True))

    def shutdown(self) -> None:
        self._thread.quit()
        self._thread.wait(60000)  # the job in flight finishes first (a click takes well under a second)
