"""Run an app.core.jobs generator on a worker thread, with a progress dialog and a Cancel button.

The job runs on a QThread and only emits signals; the runner (a QObject living on the GUI thread)
receives them through queued connections and calls `on_result` / `on_error` there, so results are
applied to widgets on the GUI thread only. Cancel sets the job's CancelToken; the job stops at its
next `raise_if_cancelled()` and `on_cancelled` is called.
"""
from __future__ import annotations

from typing import Callable

from PyQt5.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot
from PyQt5.QtWidgets import QProgressDialog, QWidget

from app.core.errors import JobCancelled
from app.core.jobs import CancelToken, Job, Progress

# A job that finishes sooner than this never shows its dialog (no flashing windows).
DIALOG_DELAY_MS = 400


class _JobThreadWorker(QObject):
    progressed = pyqtSignal(object)  # Progress
    finished = pyqtSignal(object)    # the job's return value
    failed = pyqtSignal(object)      # the exception

    def __init__(self, job: Job):
        super().__init__()
        self._job = job

    @pyqtSlot()
    def run(self) -> None:
        try:
            while True:
                try:
                    progress = next(self._job)
                except StopIteration as stop:
                    self.finished.emit(stop.value)
                    return
                self.progressed.emit(progress)
        except BaseException as error:  # noqa: BLE001 - every failure must reach the GUI thread
            self.failed.emit(error)


class JobRunner(QObject):
    """One background job. Keep a reference (the parent does) until `done` fires."""

    done = pyqtSignal()

    def __init__(self, job: Job, token: CancelToken, parent: QWidget | None = None, title: str = "Working…",
                 on_result: Callable[[object], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 on_cancelled: Callable[[], None] | None = None, show_dialog: bool = True):
        super().__init__(parent)
        self.token = token
        self._on_result, self._on_error, self._on_cancelled = on_result, on_error, on_cancelled
        self.last_progress: Progress | None = None
        self.finished_ok = False
        self._thread = QThread(self)
        self._worker = _JobThreadWorker(job)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        # Receivers are slots of this GUI-thread object: Qt queues the calls onto the GUI thread.
        self._worker.progressed.connect(self._progressed, Qt.QueuedConnection)
        self._worker.finished.connect(self._finished, Qt.QueuedConnection)
        self._worker.failed.connect(self._failed, Qt.QueuedConnection)
        self.dialog: QProgressDialog | None = None
        if show_dialog:
            self.dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
            self.dialog.setWindowTitle(title)
            self.dialog.setWindowModality(Qt.WindowModal)
            self.dialog.setMinimumDuration(DIALOG_DELAY_MS)
            self.dialog.setAutoClose(False)
            self.dialog.setAutoReset(False)
            self.dialog.canceled.connect(self.cancel)

    def start(self) -> "JobRunner":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.token.cancel()
        if self.dialog is not None:
            self.dialog.setLabelText("Cancelling…")

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    @pyqtSlot(object)
    def _progressed(self, progress: Progress) -> None:
        self.last_progress = progress
        if self.dialog is not None and not self.token.cancelled:
            self.dialog.setMaximum(max(progress.total, 0))
            # A window-modal dialog's setValue processes events: the job may finish (and the dialog
            # go) inside this call.
            self.dialog.setValue(min(progress.done, progress.total))
            if progress.message and self.dialog is not None:
                self.dialog.setLabelText(progress.message)

    @pyqtSlot(object)
    def _finished(self, result: object) -> None:
        self.finished_ok = True
        self._stop()
        if self._on_result is not None:
            self._on_result(result)
        self.done.emit()

    @pyqtSlot(object)
    def _failed(self, error: BaseException) -> None:
        self._stop()
        if isinstance(error, JobCancelled):
            if self._on_cancelled is not None:
                self._on_cancelled()
        elif self._on_error is not None:
            self._on_error(error)
        else:
            raise error  # reaches sys.excepthook: logged, generic dialog
        self.done.emit()

    def _stop(self) -> None:
        self._thread.quit()
        self._thread.wait()
        if self.dialog is not None:
            self.dialog.reset()
            self.dialog.hide()
            self.dialog.deleteLater()
            self.dialog = None


def run_in_background(job: Job, token: CancelToken, parent: QWidget | None = None, **options) -> JobRunner:
    """Start `job` on a worker thread; `options` are JobRunner's (title, on_result, on_error, ...)."""
    runner = JobRunner(job, token, parent, **options)
    _ACTIVE.add(runner)  # a running job must not be garbage-collected with its thread
    runner.done.connect(lambda: _ACTIVE.discard(runner))
    return runner.start()


_ACTIVE: set[JobRunner] = set()
