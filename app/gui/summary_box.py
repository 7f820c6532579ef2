"""A non-modal message box for the end of a long job: what was done, failed and skipped.

Non-modal so it never blocks the event loop (or a test); the caller keeps the returned box to read
what it says.
"""
from __future__ import annotations

import weakref

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QMessageBox, QWidget

# Non-modal windows opened by the loop features: closed with the main window (a box left open
# after its window closed would take the keyboard focus, and with it the window's shortcuts).
_TRACKED: "weakref.WeakSet[QWidget]" = weakref.WeakSet()


def track(widget: QWidget) -> QWidget:
    _TRACKED.add(widget)
    return widget


def close_tracked(parent: QWidget) -> None:
    for widget in list(_TRACKED):
        try:
            if widget.parent() is parent and widget.isVisible():
                widget.close()
        except RuntimeError:
            pass  # its Qt object is already gone


def show_summary(parent: QWidget, title: str, text: str, warning: bool = False) -> QMessageBox:
    lines = text.splitlines() or [""]
    box = QMessageBox(QMessageBox.Warning if warning else QMessageBox.Information, title, lines[0],
                      QMessageBox.Ok, parent)
    if len(lines) > 1:
        box.setInformativeText("\n".join(lines[1:]))
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.setModal(False)
    box.setTextInteractionFlags(Qt.TextSelectableByMouse)
    track(box).show()
    return box


def ask_yes_no(parent: QWidget, title: str, text: str, on_yes) -> QMessageBox:
    """A non-modal question; `on_yes()` runs only when the user answers Yes (never by default)."""
    box = QMessageBox(QMessageBox.Question, title, text, QMessageBox.Yes | QMessageBox.No, parent)
    box.setDefaultButton(QMessageBox.No)
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.setModal(False)
    box.finished.connect(lambda result: on_yes() if result == QMessageBox.Yes else None)
    track(box).show()
    return box
