"""Generator jobs on a worker thread: progress shown, result applied on the GUI thread, Cancel works."""
from __future__ import annotations

import threading

import pytest
from PyQt5.QtCore import QThread
from PyQt5.QtWidgets import QApplication, QPushButton, QWidget

from app.core.errors import InputError
from app.core.jobs import CancelToken, Progress
from app.gui.workers import run_in_background


def counting_job(n, token, started=None, gate=None):
    """Sums 0..n-1; with `gate`, pauses after the first step until the test opens it."""
    total = 0
    for i in range(n):
        token.raise_if_cancelled()
        total += i
        yield Progress(i + 1, n, f"step {i + 1}")
        if started is not None:
            started.set()
            gate.wait(5)
    return total


def failing_job(token):
    yield Progress(0, 1, "reading")
    raise InputError("case.nii.gz is empty (0 bytes).")


@pytest.fixture
def parent(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


def test_result_arrives_on_the_gui_thread_with_progress(qtbot, parent):
    results, threads = [], []

    def on_result(value):
        results.append(value)
        threads.append(QThread.currentThread() is QApplication.instance().thread())

    token = CancelToken()
    runner = run_in_background(counting_job(10, token), token, parent, title="Counting", on_result=on_result)
    with qtbot.waitSignal(runner.done, timeout=5000):
        pass
    assert results == [45] and threads == [True]
    assert runner.last_progress == Progress(10, 10, "step 10")
    assert runner.finished_ok and not runner.running


def test_cancel_stops_the_job_and_reports_cancelled(qtbot, parent):
    token, started, gate = CancelToken(), threading.Event(), threading.Event()
    outcome = []
    runner = run_in_background(counting_job(1000, token, started, gate), token, parent,
                               on_result=lambda v: outcome.append(("result", v)),
                               on_cancelled=lambda: outcome.append(("cancelled",)))
    assert started.wait(5)
    runner.dialog.findChild(QPushButton).click()  # the dialog's Cancel button
    gate.set()
    with qtbot.waitSignal(runner.done, timeout=5000):
        pass
    assert outcome == [("cancelled",)] and token.cancelled


def test_errors_reach_the_gui_thread_as_the_core_raised_them(qtbot, parent):
    errors = []
    token = CancelToken()
    runner = run_in_background(failing_job(token), token, parent, on_error=errors.append)
    with qtbot.waitSignal(runner.done, timeout=5000):
        pass
    assert len(errors) == 1 and isinstance(errors[0], InputError)
    assert str(errors[0]) == "case.nii.gz is empty (0 bytes)."
