"""Start-up and the last line of defence: run_gui, the exception hook, the shortcut table."""
from __future__ import annotations

import sys

import pytest
from PyQt5.QtWidgets import QApplication, QMessageBox

from app.core.errors import GridMismatchError
from app.gui import application, error_dialog
from app.gui.shortcuts import SHORTCUTS, action_shortcuts, keyboard_shortcuts, shortcuts_markdown


@pytest.fixture(autouse=True)
def _restore_logging():
    """run_gui and setup_logging attach a file handler to the app logger: detach it afterwards."""
    before = list(error_dialog.log.handlers)
    yield
    for handler in [h for h in error_dialog.log.handlers if h not in before]:
        error_dialog.log.removeHandler(handler)
        handler.close()


def test_run_gui_opens_the_first_case_and_creates_the_database(qtbot, tmp_path, monkeypatch):
    shown = []

    def fake_exec(app):
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, application.MainWindow)
                      and w.isVisible())
        shown.append((window.case.name, window.case_list.row_texts()))
        window.close()
        window.store.close()
        return 0

    monkeypatch.setattr(QApplication, "exec_", fake_exec)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # run_gui installs its own
    assert application.run_gui(results_dir=tmp_path / "res") == 0
    assert shown[0][0] == "btp10_pre_t1c" and len(shown[0][1]) == 4
    assert (tmp_path / "res" / "segloop.db").is_file()


def test_run_gui_reports_an_unusable_results_folder_and_exits(qtbot, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "results"
    not_a_folder.write_text("a file where the results folder should be", encoding="utf-8")
    messages = []
    monkeypatch.setattr(QMessageBox, "exec_", lambda box: messages.append(box.text()) or 0)
    monkeypatch.setattr(QApplication, "exec_", lambda app: pytest.fail("no window should open"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    assert application.run_gui(results_dir=not_a_folder) == 2
    assert any("results folder" in m and str(not_a_folder) in m for m in messages), messages


def test_unexpected_exception_shows_a_generic_message_and_logs_the_traceback(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    log_path = tmp_path / "segloop.log"
    error_dialog.setup_logging(log_path)
    error_dialog.install_excepthook(log_path)
    try:
        raise ZeroDivisionError("division by zero in a slot")
    except ZeroDivisionError:
        sys.excepthook(*sys.exc_info())
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    text = boxes[-1].text()
    assert "unexpected problem (ZeroDivisionError)" in text and str(log_path) in text
    assert "Traceback" not in text
    for handler in error_dialog.log.handlers:
        handler.flush()
    assert "Traceback" in log_path.read_text(encoding="utf-8")
    for box in boxes:
        box.close()


def test_user_errors_keep_their_own_sentence():
    error = GridMismatchError("the label x.nii.gz does not lie on the grid of its image.")
    assert error_dialog.user_message(error) == str(error)


def test_every_action_id_is_bound_in_the_main_window(window):
    assert set(action_shortcuts()) <= set(window.actions)
    for action_id, keys in action_shortcuts().items():
        assert [k.toString() for k in window.actions[action_id].shortcuts()] == list(keys)


def test_shortcut_table_for_the_readme():
    table = shortcuts_markdown().splitlines()
    assert table[:2] == ["| keys | action |", "|---|---|"]
    assert len(table) == 2 + len(SHORTCUTS) == 2 + len(keyboard_shortcuts())
    assert "| 1 | Axial view |" in table
