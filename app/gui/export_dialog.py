"""File > Export dataset…: an output folder, which cases (by status), the label format and the
consensus of several annotators; app.core.export.export_job runs in the background.

An existing export is never replaced silently: the job refuses (ExportExistsError) and the user is
asked; only a Yes runs it again with overwrite=True.
"""
from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                             QLineEdit, QPushButton, QWidget)

from app.core.case_store import STATUSES
from app.core.export import CONSENSUS_METHODS, LABEL_FORMATS, export_job
from app.core.export_folder import ExportExistsError
from app.core.jobs import CancelToken
from app.gui.error_dialog import user_message
from app.gui.summary_box import ask_yes_no, show_summary, track
from app.gui.workers import run_in_background


class ExportDialog(QDialog):
    def __init__(self, parent, default_folder: Path):
        super().__init__(parent)
        self.setWindowTitle("Export dataset")
        form = QFormLayout(self)
        self.folder_edit = QLineEdit(str(default_folder))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        holder = QWidget()
        holder.setLayout(row)
        form.addRow("Output folder", holder)
        self.status_combo = QComboBox()
        for status in ("done", *[s for s in STATUSES if s != "done"], "all"):
            self.status_combo.addItem(status, status)
        form.addRow("Cases with status", self.status_combo)
        self.format_combo = QComboBox()
        for name in LABEL_FORMATS:
            self.format_combo.addItem(f"{name} ({LABEL_FORMATS[name]})", name)
        form.addRow("Label format", self.format_combo)
        self.consensus_combo = QComboBox()
        self.consensus_combo.addItem("none (the case's own label)", None)
        for method in CONSENSUS_METHODS:
            self.consensus_combo.addItem(method, method)
        self.consensus_combo.setToolTip("Cases with several annotators' labels: export their consensus")
        form.addRow("Consensus", self.consensus_combo)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def options(self) -> dict:
        return {"out_dir": Path(self.folder_edit.text()), "status": self.status_combo.currentData(),
                "label_format": self.format_combo.currentData(),
                "consensus": self.consensus_combo.currentData()}


class ExportAction:
    """Tests read `summary`, `summary_box` and `overwrite_prompt`."""

    def __init__(self, window):
        self.window = window
        self.runner = None
        self.summary = None
        self.summary_box = None
        self.overwrite_prompt = None
        self.dialog: ExportDialog | None = None

    def ask(self) -> ExportDialog:
        default = Path(self.window.store.path).parent / "exports" / "dataset"
        self.dialog = ExportDialog(self.window, default)
        self.dialog.setAttribute(Qt.WA_DeleteOnClose)
        self.dialog.accepted.connect(lambda d=self.dialog: self.start(**d.options()))
        track(self.dialog).show()
        return self.dialog

    def start(self, out_dir, status: str = "done", label_format: str = "nifti",
              consensus: str | None = None, overwrite: bool = False):
        w = self.window
        if self.runner is not None and self.runner.running:
            w.show_error("An export is already running; wait for it or cancel it first.")
            return None
        options = dict(out_dir=Path(out_dir), status=status, label_format=label_format, consensus=consensus)
        token = CancelToken()
        job = export_job(w.store, cancel=token, overwrite=overwrite, **options)
        self.summary = None
        self.runner = run_in_background(
            job, token, w, title=f"Exporting to {Path(out_dir).name}",
            on_result=self._finished, on_error=lambda e: self._failed(e, options, overwrite),
            on_cancelled=lambda: w.notify("Export cancelled; nothing was written."))
        return self.runner

    def _finished(self, summary) -> None:
        self.summary = summary
        self.summary_box = show_summary(self.window, "Export finished", summary.text())

    def _failed(self, error, options: dict, overwrite: bool) -> None:
        if isinstance(error, ExportExistsError) and not overwrite and Path(options["out_dir"]).is_dir():
            self.overwrite_prompt = ask_yes_no(
                self.window, "Replace the export?",
                f"{options['out_dir']} already holds an export. Replace it with a new one?",
                lambda: self.start(overwrite=True, **options))
            return
        self.window.show_error(user_message(error, self.window.log_path))
