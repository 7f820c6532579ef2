"""Helpers shared by the GUI tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data_source"
CASES = ("btp10_pre_t1c", "lits117_ct", "sts002_ct", "sts002_mr")


def open_case(window, name: str) -> None:
    """Select `name` in the case list, as a user would, and check it opened."""
    rows = dict(zip([t.split()[0] for t in window.case_list.row_texts()], window.case_list.case_ids()))
    window.case_list.select_case(rows[name])
    assert window.case is not None and window.case.name == name, window.last_error


def sample_copy(tmp_path: Path, name: str = "sts002_mr") -> Path:
    """A bundled case copied into tmp_path (image and label) so tests may damage or extend it."""
    for suffix in ("", "_label"):
        shutil.copy(DATA / f"{name}{suffix}.nii.gz", tmp_path / f"{name}{suffix}.nii.gz")
    return tmp_path / f"{name}.nii.gz"


def assert_same(a, b):
    assert a is not None and b is not None
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b)


# --- real Qt input events sent to the slice view's viewport ---------------------------------------
def _qt():
    from PyQt5.QtCore import QEvent, QPoint, QPointF, Qt
    from PyQt5.QtGui import QMouseEvent, QWheelEvent
    from PyQt5.QtWidgets import QApplication

    return QEvent, QPoint, QPointF, Qt, QMouseEvent, QWheelEvent, QApplication


def viewport_pos(view, z: int, y: int, x: int):
    """Viewport pixel position of the centre of voxel (z, y, x) in the current orientation."""
    return view.mapFromScene(view.voxel_to_scene(z, y, x))


def send_wheel(view, pos, notches: int, modifiers=None) -> None:
    QEvent, QPoint, QPointF, Qt, QMouseEvent, QWheelEvent, QApplication = _qt()
    viewport = view.viewport()
    event = QWheelEvent(QPointF(pos), QPointF(viewport.mapToGlobal(pos)), QPoint(0, 0),
                        QPoint(0, 120 * notches), Qt.NoButton, modifiers or Qt.NoModifier,
                        Qt.NoScrollPhase, False)
    QApplication.sendEvent(viewport, event)


def send_mouse(view, kind: str, pos, button=None, buttons=None, modifiers=None) -> None:
    QEvent, QPoint, QPointF, Qt, QMouseEvent, QWheelEvent, QApplication = _qt()
    types = {"press": QEvent.MouseButtonPress, "release": QEvent.MouseButtonRelease, "move": QEvent.MouseMove}
    viewport = view.viewport()
    event = QMouseEvent(types[kind], QPointF(pos), QPointF(viewport.mapToGlobal(pos)),
                        button if button is not None else Qt.NoButton,
                        buttons if buttons is not None else Qt.NoButton,
                        modifiers if modifiers is not None else Qt.NoModifier)
    QApplication.sendEvent(viewport, event)


def drag(view, start, end, button, modifiers=None, steps: int = 5) -> None:
    """Press at `start`, move in steps to `end`, release: a drag as pyqtgraph's scene sees it.

    pyqtgraph drops mouse moves closer together than 1/mouseRateLimit s, so the moves are paced."""
    from PyQt5.QtCore import QPoint, Qt
    from PyQt5.QtTest import QTest

    mods = modifiers if modifiers is not None else Qt.NoModifier
    send_mouse(view, "press", start, button, button, mods)
    for i in range(1, steps + 1):
        p = QPoint(start.x() + (end.x() - start.x()) * i // steps, start.y() + (end.y() - start.y()) * i // steps)
        QTest.qWait(12)
        send_mouse(view, "move", p, Qt.NoButton, button, mods)
    send_mouse(view, "release", end, button, Qt.NoButton, mods)


def click(view, pos, button) -> None:
    from PyQt5.QtCore import Qt

    send_mouse(view, "press", pos, button, button)
    send_mouse(view, "release", pos, button, Qt.NoButton)


# --- annotation (issues 3 and 4) ------------------------------------------------------------------
def write_case(folder: Path, name: str, image, label=None) -> Path:
    """Write an image Volume (and optionally a label array on its grid) as <name>.nii.gz (+ _label)."""
    import SimpleITK as sitk

    from app.core.volume_io import write_label

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.nii.gz"
    sitk.WriteImage(image.to_sitk(), str(path))
    if label is not None:
        write_label(label, image, folder / f"{name}_label.nii.gz")
    return path


def cropped_case(tmp_path: Path, volumes, name: str = "sts002_mr", z0: int = 12, z1: int = 23) -> Path:
    """A few slices of a bundled case (image + label) written to tmp_path: fast to segment."""
    image, label = volumes[name]
    from app.core.volume import Volume

    crop = Volume(np.ascontiguousarray(image.array[z0:z1]), image.spacing, image.origin, image.direction,
                  modality=image.modality)
    return write_case(tmp_path / "crop", f"{name}_crop", crop, np.ascontiguousarray(label.array[z0:z1]))


def wait_for_clicks(qtbot, window, count: int, timeout: int = 20000) -> None:
    """Until `count` clicks/scribbles have been applied and painted (or an error was shown)."""
    probe = window.annotation.controller.probe
    qtbot.waitUntil(lambda: len(probe.samples) >= count or window.last_error is not None, timeout=timeout)
    assert window.last_error is None, window.last_error
    assert len(probe.samples) >= count


def wait_for_volume_job(qtbot, window, timeout: int = 120000) -> None:
    jobs = window.annotation.jobs
    from PyQt5.QtWidgets import QApplication

    qtbot.waitUntil(lambda: not jobs.running, timeout=timeout)
    # as a user would: keys go on once the window is active again (the progress dialog has gone)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)


def wait_for_models(qtbot, window) -> None:
    combo = window.annotation.model_combo
    qtbot.waitUntil(lambda: combo.isEnabled() and bool(combo.currentData()), timeout=60000)


def choose_model(window, name: str) -> None:
    combo = window.annotation.model_combo
    index = combo.findData(name)
    assert index >= 0, f"model {name} is not offered"
    combo.setCurrentIndex(index)


def activate(qtbot, window) -> None:
    """Make `window` the active window, as the window manager would after a dialog closes: its
    single-key shortcuts only fire then (offscreen, nothing re-activates it by itself)."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
