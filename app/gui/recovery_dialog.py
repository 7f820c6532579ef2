"""Unsaved work found at start-up (a crash, a kill): a list of cases to restore or discard.

Non-modal, so it never blocks the event loop (or a test): the buttons emit the chosen
Recoverable and the window does the work; a handled row leaves the list, and the dialog closes
when none is left. "Later" keeps the work on disk; a case with unsettled work is not edited
until it is restored or discarded (the annotation controller refuses), so nothing overwrites it.
"""
from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem,
                             QPushButton, QVBoxLayout)

from app.core.autosave import Recoverable
from app.core.volume import case_name


def recoverable_text(item: Recoverable) -> str:
    name = case_name(item.image_path) if item.image_path else "untitled"
    when = item.saved_at.astimezone().strftime("%Y-%m-%d %H:%M")
    actions = "action" if item.unsaved_actions == 1 else "actions"
    return f"{name} — {item.unsaved_actions} unsaved {actions}, last at {when}"


class RecoveryDialog(QDialog):
    restoreRequested = pyqtSignal(object)   # Recoverable
    discardRequested = pyqtSignal(object)   # Recoverable

    def __init__(self, items: list[Recoverable], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Recover unsaved work")
        self.setModal(False)
        self.list = QListWidget()
        for item in items:
            row = QListWidgetItem(recoverable_text(item))
            row.setData(Qt.UserRole, item)
            row.setToolTip(str(item.image_path))
            self.list.addItem(row)
        self.list.setCurrentRow(0)
        self.restore_button = QPushButton("Restore")
        self.restore_button.setToolTip("Reopen the case with its label, seeds and undo history as they were")
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Forget this unsaved work for good")
        buttons = QDialogButtonBox()
        buttons.addButton(self.restore_button, QDialogButtonBox.AcceptRole)
        buttons.addButton(self.discard_button, QDialogButtonBox.DestructiveRole)
        later = buttons.addButton("Later", QDialogButtonBox.RejectRole)
        later.setToolTip("Keep the work on disk and decide later (File > Recover unsaved work…)")
        self.restore_button.clicked.connect(lambda: self._emit(self.restoreRequested))
        self.discard_button.clicked.connect(lambda: self._emit(self.discardRequested))
        later.clicked.connect(self.reject)
        self.list.itemDoubleClicked.connect(lambda _item: self._emit(self.restoreRequested))
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("SegLoop stopped before this work was saved. Restore it?"))
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.resize(560, 260)

    def items(self) -> list[Recoverable]:
        return [self.list.item(i).data(Qt.UserRole) for i in range(self.list.count())]

    def select(self, index: int) -> None:
        self.list.setCurrentRow(index)

    def _emit(self, signal) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        signal.emit(self.list.item(row).data(Qt.UserRole))

    def remove(self, item: Recoverable) -> None:
        """The window dealt with `item`: drop its row; close when nothing is left."""
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.UserRole) is item:
                self.list.takeItem(i)
                break
        if self.list.count() == 0:
            self.accept()
        else:
            self.list.setCurrentRow(0)
