"""Reliability fixtures. Qt is imported only inside the GUI fixture, so the core tests here run
without a display."""
from __future__ import annotations

import pytest

from tests.reliability.corpus import DATA


@pytest.fixture
def window(qtbot, tmp_path):
    """The real main window on data_source/ with a private results folder (offscreen)."""
    from app.gui.application import build_main_window

    win = build_main_window(DATA, tmp_path / "results")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    win.store.close()
