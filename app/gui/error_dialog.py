"""Errors in front of the user: a SegLoopError's own sentence, or a generic note for a bug.

A traceback is never shown: unexpected exceptions are written to the log file and the dialog says
where. Dialogs are non-modal so a message never blocks the event loop (or a test).
"""
from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QApplication, QMessageBox, QWidget

from app.core.errors import SegLoopError

log = logging.getLogger("segloop")


def show_error(parent: QWidget | None, message: str, title: str = "SegLoop") -> QMessageBox:
    box = QMessageBox(QMessageBox.Warning, title, message, QMessageBox.Ok, parent)
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.setModal(False)
    box.setTextInteractionFlags(Qt.TextSelectableByMouse)
    if parent is None:
        # Nothing else owns a parentless box: without this reference Python would delete it at once.
        _OPEN_BOXES.add(box)
        box.finished.connect(lambda _result: _OPEN_BOXES.discard(box))
    box.show()
    return box


_OPEN_BOXES: set[QMessageBox] = set()


def show_fatal(message: str, title: str = "SegLoop cannot start") -> None:
    """A modal message for when there is no window to keep open; returns when it is dismissed."""
    box = QMessageBox(QMessageBox.Critical, title, message, QMessageBox.Ok)
    box.exec_()


def unexpected_error_message(error: BaseException, log_path: Path | None) -> str:
    where = f" The details were written to {log_path}." if log_path else ""
    return (f"SegLoop hit an unexpected problem ({type(error).__name__}) and could not finish that "
            f"action; your open case and saved work are unaffected.{where}")


def user_message(error: BaseException, log_path: Path | None = None) -> str:
    """The text for the user: a SegLoopError speaks for itself; anything else is a bug."""
    if isinstance(error, SegLoopError):
        return str(error)
    return unexpected_error_message(error, log_path)


def setup_logging(log_path: Path | None) -> None:
    if log_path is None or any(getattr(h, "baseFilename", None) == str(log_path) for h in log.handlers):
        return
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_path, encoding="utf-8")
    except OSError:
        return  # no log file is better than no application
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def install_excepthook(log_path: Path | None) -> None:
    """Route exceptions escaping Qt slots to the log and a dialog (PyQt5 would otherwise abort)."""
    def hook(kind, error, tb):
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        if not isinstance(error, SegLoopError):
            log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, error, tb)))
        parent = QApplication.activeWindow()
        show_error(parent, user_message(error, log_path))

    sys.excepthook = hook
