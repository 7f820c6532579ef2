"""GUI fixtures: a real MainWindow (offscreen) on a private results folder and the bundled cases."""
from __future__ import annotations

import pytest

from app.core.volume_io import read_label, read_volume
from tests.gui.helpers import CASES, DATA


@pytest.fixture(scope="session", autouse=True)
def _pyqtgraph_options():
    from app.gui.application import configure_pyqtgraph

    configure_pyqtgraph()


@pytest.fixture(scope="session")
def volumes():
    """{case: (image Volume, label Volume)} read once, independently of the GUI code under test."""
    out = {}
    for name in CASES:
        image = read_volume(DATA / f"{name}.nii.gz")
        out[name] = (image, read_label(DATA / f"{name}_label.nii.gz", image))
    return out


@pytest.fixture(autouse=True)
def _close_message_boxes():
    """Error boxes are non-modal and outlive their test's window: close them so the next test's
    checks of the visible boxes see only its own."""
    yield
    from PyQt5.QtWidgets import QApplication, QMessageBox

    for box in [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]:
        box.close()


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window on data_source/ with its database in a temporary results folder."""
    from app.gui.application import build_main_window

    win = build_main_window(DATA, tmp_path / "results")
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()  # stops the refinement worker (and saves any edit) while the store is still open
    win.store.close()
