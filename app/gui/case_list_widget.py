"""The case list: one row per case with its status; selecting a row asks to open that case."""
from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QBrush, QColor
from PyQt5.QtWidgets import QListWidget, QListWidgetItem

# Status colours only add to the text, which always names the status.
_STATUS_COLOURS = {"new": None, "pre-labelled": "#b58900", "in progress": "#268bd2", "done": "#2aa22a"}


def case_row_text(name: str, status: str) -> str:
    return f"{name}   [{status}]"


class CaseListWidget(QListWidget):
    caseSelected = pyqtSignal(int)  # case id

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setToolTip("Cases in the database; select one to open it")
        self.currentItemChanged.connect(self._on_current_changed)

    def set_cases(self, records) -> None:
        """Show `records` (CaseRecord-like: id, name, status, image_path); keeps the selection."""
        current = self.current_case_id()
        self.blockSignals(True)
        self.clear()
        for record in records:
            item = QListWidgetItem(case_row_text(record.name, record.status))
            item.setData(Qt.UserRole, record.id)
            item.setToolTip(str(record.image_path))
            colour = _STATUS_COLOURS.get(record.status)
            if colour:
                item.setForeground(QBrush(QColor(colour)))
            self.addItem(item)
        self.blockSignals(False)
        if current is not None:
            self.select_case(current, notify=False)

    def case_ids(self) -> list[int]:
        return [self.item(i).data(Qt.UserRole) for i in range(self.count())]

    def row_texts(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count())]

    def current_case_id(self) -> int | None:
        item = self.currentItem()
        return None if item is None else item.data(Qt.UserRole)

    def select_case(self, case_id: int | None, notify: bool = True) -> None:
        """Select the row of `case_id` (None clears); notify=False only moves the highlight."""
        self.blockSignals(not notify)
        try:
            if case_id is None:
                self.setCurrentItem(None)
                return
            for i in range(self.count()):
                if self.item(i).data(Qt.UserRole) == case_id:
                    self.setCurrentRow(i)
                    return
        finally:
            self.blockSignals(False)

    def _on_current_changed(self, current, _previous) -> None:
        if current is not None:
            self.caseSelected.emit(current.data(Qt.UserRole))
