"""The real crash test: the app (main window, offscreen) runs in a child process, the user's clicks
go through the GUI's annotation controller, the child is SIGKILLed right after the edits, and a new
main window on the same results/ offers the work back and restores exactly the label (and seeds,
and undo history) that the same clicks give."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from app.core.autosave import find_recoverable
from app.core.session import AnnotationSession
from app.core.volume_io import read_label, read_volume
from tests.reliability.corpus import DATA, REPO

CASE = "sts002_mr"
# (z, y, x, foreground): clicks in the axial view, as AnnotationController.on_click receives them
# (each one changes the label; _expected checks that).
CLICKS = [(17, 45, 57, False), (16, 40, 52, False), (17, 62, 52, True), (15, 45, 57, False),
          (18, 45, 57, False)]

DRIVER = r"""
import os, sys, time
sys.path.insert(0, {repo!r})
os.environ["QT_QPA_PLATFORM"] = "offscreen"


def main():
    from PyQt5.QtCore import Qt
    from PyQt5.QtWidgets import QApplication
    from app.gui.application import build_main_window

    app = QApplication(sys.argv[:1])
    window = build_main_window({data!r}, {results!r})
    window.show()
    assert window.open_file({image!r}), window.last_error
    controller = window.annotation.controller
    clicks = {clicks!r}
    for number, (z, y, x, fg) in enumerate(clicks, 1):
        window.slice_view.set_slice(z)    # a click lands on the displayed slice
        controller.on_click(z, y, x, int(Qt.LeftButton if fg else Qt.RightButton))
        deadline = time.monotonic() + 60
        while (controller.session is None or controller.session.step < number) and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.005)
        assert controller.session.step == number, (number, window.last_error)
    controller.undo()                         # an undo is an edit too
    controller.session.autosave.flush()       # the snapshot is on disk (the log already was)
    print("READY", controller.session.checksum, controller.session.step, flush=True)
    while True:
        app.processEvents()
        time.sleep(0.05)


if __name__ == "__main__":   # the graph-cut worker process re-imports this file
    main()
"""


def _expected(image_path):
    volume = read_volume(image_path)
    label = read_label(image_path.with_name(f"{CASE}_label.nii.gz"), volume).array
    from app.core.refine import DEFAULT_REFINER

    session = AnnotationSession(volume, label=label, engine=DEFAULT_REFINER)   # the app's engine
    for z, y, x, fg in CLICKS:
        assert session.click(0, z, (y, x), fg).box is not None, "a click that edits nothing proves nothing"
    session.undo()
    return session


def _seed_set(session):
    import json

    return sorted(json.dumps(seed, sort_keys=True) for seed in session.seeds.to_json())


def _run_and_kill(tmp_path, data, results):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(repo=str(REPO), data=str(data), results=str(results),
                                    image=str(data / f"{CASE}.nii.gz"), clicks=CLICKS), encoding="utf-8")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", start_new_session=True)
    try:
        line = proc.stdout.readline()
        while line and not line.startswith("READY"):
            line = proc.stdout.readline()
        assert line.startswith("READY"), proc.stderr.read()[-3000:] if proc.poll() is not None else "no READY"
    finally:
        os.kill(proc.pid, signal.SIGKILL)           # the app itself, as a crash would
        proc.wait(timeout=30)
        try:   # its graph-cut worker (same session, started by this test) holds the pipes open
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    _, checksum, step = line.split()
    return checksum, int(step)


@pytest.fixture
def case_copy(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for suffix in ("", "_label"):
        shutil.copy(DATA / f"{CASE}{suffix}.nii.gz", data / f"{CASE}{suffix}.nii.gz")
    return data


def test_sigkilled_app_is_restored_exactly_by_the_next_start(tmp_path, case_copy, qtbot):
    results = tmp_path / "results"
    checksum, step = _run_and_kill(tmp_path, case_copy, results)
    expected = _expected(case_copy / f"{CASE}.nii.gz")
    assert (checksum, step) == (expected.checksum, expected.step)     # the child did what we think

    (found,) = find_recoverable(results / "autosave")
    assert found.unsaved_actions == step

    from app.gui.application import build_main_window

    window = build_main_window(case_copy, results)                   # the next start
    qtbot.addWidget(window)
    try:
        dialog = window.annotation.recovery_dialog
        assert dialog is not None and dialog.isVisible()             # offered without being asked
        assert window.annotation.restore(found), window.last_error
        session = window.annotation.controller.session
        assert session is not None and session.step == expected.step
        assert np.array_equal(session.label, expected.label)        # edits lost: 0
        assert _seed_set(session) == _seed_set(expected)             # order may differ, not content
        assert np.array_equal(window.slice_view.label, expected.label)   # and it is what is shown
        window.annotation.controller.redo()                          # the undone click comes back
        expected.redo()
        assert np.array_equal(session.label, expected.label)
    finally:
        window.close()
        window.store.close()
    expected.close()
