"""Batch > Pre-label cases…: choose the cases and a model, run app.core.batch.prelabel_job in the
background (case k of n, time left, Cancel), then say what was done, failed and skipped.

The job itself skips cases the user has worked on ("in progress", "done") and keeps every finished
case when cancelled, so the dialog only chooses and reports.
"""
from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (QButtonGroup, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                             QRadioButton, QVBoxLayout)

from app.core.batch import default_out_dir, prelabel_job, select_cases
from app.core.jobs import CancelToken
from app.gui.error_dialog import user_message
from app.gui.summary_box import show_summary, track
from app.gui.workers import run_in_background

CHOICES = (("not done", "Cases not done yet"), ("all", "All cases"),
           ("selection", "The case selected in the case list"))


def offered_models(window) -> list[tuple[str, str]]:
    """(title, model name or path) of the models the annotation toolbar offers."""
    combo = window.annotation.model_combo
    return [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count()) if combo.itemData(i)]


def selected_case_ids(window) -> list[int]:
    ids = [item.data(Qt.UserRole) for item in window.case_list.selectedItems()]
    current = window.case_list.current_case_id()
    return ids or ([current] if current is not None else [])


class BatchDialog(QDialog):
    def __init__(self, parent, models: list[tuple[str, str]], current_model: str | None, n_selected: int):
        super().__init__(parent)
        self.setWindowTitle("Pre-label cases")
        self.group = QButtonGroup(self)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Which cases (cases in progress or done are never overwritten):"))
        for i, (key, text) in enumerate(CHOICES):
            button = QRadioButton(text + (f" ({n_selected})" if key == "selection" else ""))
            button.setProperty("which", key)
            button.setEnabled(key != "selection" or n_selected > 0)
            self.group.addButton(button, i)
            layout.addWidget(button)
        self.group.button(0).setChecked(True)
        form = QFormLayout()
        self.model_combo = QComboBox()
        for title, name in models:
            self.model_combo.addItem(title, name)
        if current_model:
            self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(current_model)))
        form.addRow("Model", self.model_combo)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Pre-label")
        buttons.button(QDialogButtonBox.Ok).setEnabled(bool(models))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def which(self) -> str:
        return self.group.checkedButton().property("which")

    def model(self) -> str:
        return self.model_combo.currentData()


class BatchAction:
    """Owns the dialog, the running job and the last summary (tests read `summary`, `summary_box`)."""

    def __init__(self, window):
        self.window = window
        self.runner = None
        self.summary = None
        self.summary_box = None
        self.dialog: BatchDialog | None = None

    @property
    def results_dir(self) -> Path:
        return Path(self.window.store.path).parent

    def ask(self) -> BatchDialog:
        w = self.window
        self.dialog = BatchDialog(w, offered_models(w), w.annotation.model_combo.currentData(),
                                  len(selected_case_ids(w)))
        self.dialog.setAttribute(Qt.WA_DeleteOnClose)
        self.dialog.accepted.connect(lambda d=self.dialog: self.start(d.which(), d.model()))
        track(self.dialog).show()
        return self.dialog

    def start(self, which: str, model_name: str, selection=None):
        w = self.window
        if self.runner is not None and self.runner.running:
            w.show_error("A batch is already running; wait for it or cancel it first.")
            return None
        if which == "selection" and selection is None:
            selection = selected_case_ids(w)
        records = select_cases(w.store, which, selection)
        if not records:
            w.show_error("There is no case to pre-label in that choice.")
            return None
        token = CancelToken()
        job = prelabel_job(records, model_name, default_out_dir(self.results_dir, model_name),
                           store=w.store, cancel=token)
        self.summary = None
        self.runner = run_in_background(job, token, w, title=f"Pre-labelling {len(records)} cases",
                                        on_result=self._finished, on_error=self._failed,
                                        on_cancelled=self._cancelled)
        return self.runner

    def _finished(self, summary) -> None:
        self.summary = summary
        self.window.refresh_case_list()
        title = "Pre-labelling cancelled" if summary.cancelled else "Pre-labelling finished"
        self.summary_box = show_summary(self.window, title, summary.text(), warning=not summary.ok)

    def _failed(self, error) -> None:
        self.window.refresh_case_list()
        self.window.show_error(user_message(error, self.window.log_path))

    def _cancelled(self) -> None:
        self.window.refresh_case_list()
        self.window.notify("Pre-labelling cancelled.")
