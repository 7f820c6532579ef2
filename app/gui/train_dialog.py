"""Train > Retrain model…: fine-tune the active model on the cases marked done (plus an optional
base training set in MSD layout), in a child process running the real `python main.py train`.

Steps: export_job writes the done cases to a temporary MSD folder (in the background), the base
set's cases are linked in beside them, then QProcess runs the train command. Its "epoch N" lines
drive the progress dialog; Cancel kills the child and deletes its half-written weights, so the
previous model stays active. A finished run's weights go to RESULTS/models/user/<mode>-<time>.pt
(earlier versions are kept) and become the active model: added to the model combo and remembered
in RESULTS/segloop.ini so the next start offers and selects them again.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtCore import QProcess, QProcessEnvironment, Qt
from PyQt5.QtWidgets import (QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                             QHBoxLayout, QLineEdit, QProgressDialog, QPushButton, QSpinBox, QWidget)

from app.core.errors import InputError
from app.core.export import export_job
from app.core.jobs import CancelToken, Progress
from app.gui.annotators import settings_for
from app.gui.error_dialog import user_message
from app.gui.summary_box import show_summary, track
from app.gui.workers import run_in_background

REPO = Path(__file__).resolve().parents[2]
USER_MODELS = Path("models") / "user"     # under the results folder
RETRAINABLE = {"unet": "unet", "fpsnet-mixed": "fpsnet-mixed"}  # sidecar mode -> train --mode
EPOCH_LINE = re.compile(r"^epoch\s+(\d+)\b")


@dataclass
class TrainSettings:
    epochs: int = 10
    steps_per_epoch: int = 40
    batch_size: int = 16
    max_minutes: float = 30.0
    input_size: int | None = None      # None: the active model's
    base_dir: str = ""                 # an MSD-layout training set trained on as well


# ------------------------------------------------------------------ Qt-free steps
def weights_of(model: str) -> Path:
    """The .pt file behind a model combo entry (a shipped name or a path)."""
    from models import zoo

    return zoo.path_of(model) if model in zoo.MODEL_FILES else Path(model)


def sidecar_of(weights: Path) -> dict:
    from models.checkpoint import read_sidecar

    return read_sidecar(weights)


def new_weights_path(results_dir: Path, mode: str) -> Path:
    return Path(results_dir) / USER_MODELS / f"{mode}-{time.strftime('%Y%m%d-%H%M%S')}.pt"


def user_models(results_dir: Path) -> list[Path]:
    """Retrained weights (with their sidecar), oldest first."""
    folder = Path(results_dir) / USER_MODELS
    return sorted(p for p in folder.glob("*.pt") if p.with_suffix(".json").exists()) if folder.is_dir() else []


def train_command(data: Path, mode: str, init: Path | None, out: Path, settings: TrainSettings,
                  input_size: int | None) -> list[str]:
    """Arguments of `python main.py train` (without the interpreter)."""
    args = [str(REPO / "main.py"), "train", "--data", str(data), "--mode", mode, "--out", str(out),
            "--epochs", str(settings.epochs), "--steps-per-epoch", str(settings.steps_per_epoch),
            "--batch-size", str(settings.batch_size), "--max-minutes", f"{settings.max_minutes:g}"]
    if init is not None:
        args += ["--init", str(init)]
    if settings.input_size or input_size:
        args += ["--input-size", str(settings.input_size or input_size)]
    return args


def parse_epoch(line: str) -> int | None:
    match = EPOCH_LINE.match(line.strip())
    return int(match.group(1)) if match else None


def link_base_set(base: Path, dataset: Path) -> int:
    """Link (or copy) every <case>_0000.nii.gz of base/imagesTr with its label into dataset."""
    count = 0
    for image in sorted((base / "imagesTr").glob("*_0000.nii.gz")):
        case = image.name[: -len("_0000.nii.gz")]
        label = base / "labelsTr" / f"{case}.nii.gz"
        if not label.exists():
            continue
        for source, target in ((image, dataset / "imagesTr" / f"base_{image.name}"),
                               (label, dataset / "labelsTr" / f"base_{case}.nii.gz")):
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.symlink(source.resolve(), target)
            except OSError:
                shutil.copy2(source, target)
        count += 1
    return count


def dataset_job(store, folder: Path, base_dir: str, cancel: CancelToken):
    """The training folder: the done cases exported, plus the base set linked in."""
    n_done = len(store.list_cases("done"))
    base = Path(base_dir) if base_dir else None
    if base is not None and not (base / "imagesTr").is_dir():
        raise InputError(f"the base training set {base} has no imagesTr/ folder (MSD layout expected).")
    if n_done == 0 and base is None:
        raise InputError("No case is marked done yet: finish some cases (Ctrl+D) or set a base "
                         "training set before retraining.")
    dataset = folder / "dataset"
    if n_done:
        yield from export_job(store, dataset, status="done", label_format="nifti", cancel=cancel)
    else:
        dataset.mkdir(parents=True)
    yield Progress(1, 1, "linking the base training set")
    linked = link_base_set(base, dataset) if base is not None else 0
    return dataset, n_done, linked


# ------------------------------------------------------------------ the dialog
class TrainDialog(QDialog):
    def __init__(self, parent, settings: TrainSettings, model_title: str):
        super().__init__(parent)
        self.setWindowTitle(f"Retrain {model_title}")
        form = QFormLayout(self)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(settings.epochs)
        self.steps = QSpinBox()
        self.steps.setRange(1, 10000)
        self.steps.setValue(settings.steps_per_epoch)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.5, 24 * 60)
        self.minutes.setValue(settings.max_minutes)
        self.minutes.setSuffix(" min")
        self.base_edit = QLineEdit(settings.base_dir)
        self.base_edit.setPlaceholderText("optional: a folder with imagesTr/ and labelsTr/")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.base_edit, 1)
        row.addWidget(browse)
        holder = QWidget()
        holder.setLayout(row)
        form.addRow("Epochs", self.epochs)
        form.addRow("Steps per epoch", self.steps)
        form.addRow("Time budget", self.minutes)
        form.addRow("Base training set", holder)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Retrain")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._settings = settings

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Base training set (MSD layout)", self.base_edit.text())
        if folder:
            self.base_edit.setText(folder)

    def settings(self) -> TrainSettings:
        s = self._settings
        return TrainSettings(self.epochs.value(), self.steps.value(), s.batch_size, self.minutes.value(),
                             s.input_size, self.base_edit.text().strip())


class TrainAction:
    """Tests read `process`, `out`, `state` ("idle", "exporting", "training", "finished",
    "cancelled", "failed") and `output` (the child's lines)."""

    def __init__(self, window, on_model_changed=None):
        self.window = window
        self.on_model_changed = on_model_changed
        self.settings = TrainSettings(base_dir=str(settings_for(window).value("train/base_dir", "") or ""))
        self.state = "idle"
        self.process: QProcess | None = None
        self.progress: QProgressDialog | None = None
        self.runner = None
        self.out: Path | None = None
        self.output: list[str] = []
        self.summary_box = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._buffer = ""
        window.annotation.model_lister.listed.connect(lambda _names: self.offer_user_models())
        if window.annotation.model_combo.currentData():  # the list arrived before this was built
            self.offer_user_models()

    @property
    def results_dir(self) -> Path:
        return Path(self.window.store.path).parent

    @property
    def busy(self) -> bool:
        return self.state in ("exporting", "training")

    # -------------------------------------------------------------- models in the combo
    def offer_user_models(self) -> None:
        """Add the retrained weights to the model combo; select the remembered active one."""
        combo = self.window.annotation.model_combo
        for path in user_models(self.results_dir):
            if combo.findData(str(path)) < 0:
                combo.addItem(f"{path.stem} (retrained)", str(path))
        active = settings_for(self.window).value("model/active", "")
        if active and combo.findData(active) >= 0:
            combo.setCurrentIndex(combo.findData(active))
        if combo.findData("") >= 0 and combo.count() > 1:  # the "no model installed" placeholder
            combo.removeItem(combo.findData(""))
            combo.setEnabled(True)
            self.window.actions["segment"].setEnabled(True)

    def activate(self, weights: Path) -> None:
        combo = self.window.annotation.model_combo
        if combo.findData(str(weights)) < 0:
            combo.addItem(f"{weights.stem} (retrained)", str(weights))
        combo.setCurrentIndex(combo.findData(str(weights)))
        settings = settings_for(self.window)
        settings.setValue("model/active", str(weights))
        settings.sync()
        if self.on_model_changed is not None:
            self.on_model_changed()

    # -------------------------------------------------------------- running
    def ask(self) -> TrainDialog | None:
        combo = self.window.annotation.model_combo
        if not combo.currentData():
            self.window.show_error("Wait for the model list: retraining starts from the active model.")
            return None
        dialog = TrainDialog(self.window, self.settings, combo.currentText())
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.accepted.connect(lambda d=dialog: self.start(d.settings()))
        track(dialog).show()
        return dialog

    def start(self, settings: TrainSettings | None = None) -> bool:
        w = self.window
        if self.busy:
            w.show_error("A retraining is already running; wait for it or cancel it first.")
            return False
        self.settings = settings or self.settings
        store = settings_for(w)
        store.setValue("train/base_dir", self.settings.base_dir)
        store.sync()
        try:
            init = weights_of(w.annotation.model_combo.currentData())
            meta = sidecar_of(init)
        except Exception as error:  # noqa: BLE001 - a damaged or missing model file
            w.show_error(user_message(error, w.log_path))
            return False
        mode = RETRAINABLE.get(meta.get("mode"))
        if mode is None:
            w.show_error(f"{init.name} was trained from slice tags only ({meta.get('mode')}); choose a "
                         "U-Net or mixed FPSNet model to retrain on your labels.")
            return False
        self._tmp = tempfile.TemporaryDirectory(prefix="segloop-retrain-")
        token = CancelToken()
        self.state, self.output = "exporting", []
        self.runner = run_in_background(
            dataset_job(w.store, Path(self._tmp.name), self.settings.base_dir, token), token, w,
            title="Exporting the training set",
            on_result=lambda r: self._train(r[0], mode, init, meta),
            on_error=lambda e: self._end("failed", user_message(e, w.log_path)),
            on_cancelled=lambda: self._end("cancelled", None))
        return True

    def _train(self, dataset: Path, mode: str, init: Path, meta: dict) -> None:
        self.state = "training"
        self.out = new_weights_path(self.results_dir, mode)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        process = self.process = QProcess(self.window)
        process.setProcessChannelMode(QProcess.MergedChannels)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONIOENCODING", "utf-8")
        process.setProcessEnvironment(env)
        process.setWorkingDirectory(str(REPO))
        process.readyReadStandardOutput.connect(self._read)
        process.finished.connect(self._child_finished)
        process.errorOccurred.connect(self._child_error)
        self.progress = QProgressDialog("Starting the training process…", "Cancel", 0, self.settings.epochs, self.window)
        self.progress.setWindowTitle("Retraining")
        self.progress.setWindowModality(Qt.NonModal)  # the window stays usable while it trains
        self.progress.setAutoClose(False)
        self.progress.setAutoReset(False)
        self.progress.setMinimumDuration(0)
        self.progress.canceled.connect(self.cancel)
        track(self.progress).show()
        process.start(sys.executable, train_command(dataset, mode, init, self.out, self.settings,
                                                    meta.get("input_size")))

    def _read(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        *lines, self._buffer = re.split(r"[\r\n]", self._buffer)
        for line in filter(None, (l.strip() for l in lines)):
            self.output.append(line)
            epoch = parse_epoch(line)
            if self.progress is not None and (epoch is not None or line.startswith(("unet", "fpsnet", "initialised"))):
                if epoch is not None:
                    self.progress.setValue(min(epoch, self.settings.epochs))
                self.progress.setLabelText(line[:120])

    def cancel(self) -> None:
        if self.state == "exporting" and self.runner is not None:
            self.runner.cancel()
        elif self.state == "training" and self.process is not None:
            self.state = "cancelling"
            self.process.kill()  # a hard stop: the child frees its memory, the GUI's model is untouched

    def _child_error(self, error) -> None:
        if error == QProcess.FailedToStart:
            self._end("failed", f"the training process could not start ({self.process.errorString()}).")

    def _child_finished(self, code: int, status) -> None:
        if self.state == "cancelling":
            self._end("cancelled", None)
        elif status == QProcess.NormalExit and code == 0 and self.out is not None and self.out.exists():
            self.activate(self.out)
            self._end("finished", f"Retrained weights: {self.out}\nThey are now the active model "
                                  "(earlier versions stay in the model list).\n" + "\n".join(self.output[-3:]))
        else:
            tail = "\n".join(self.output[-5:])
            self._end("failed", f"The training process stopped with code {code}; the previous model stays "
                                f"active.\n{tail}")

    def _end(self, state: str, message: str | None) -> None:
        w = self.window
        if state in ("cancelled", "failed") and self.out is not None:
            leftovers = [self.out, self.out.with_suffix(".json"), self.out.with_suffix(".json.tmp"),
                         *self.out.parent.glob(f".{self.out.name}.*.tmp"),
                         *self.out.parent.glob(f".{self.out.with_suffix('.json').name}.*.tmp")]
            for path in leftovers:
                path.unlink(missing_ok=True)  # never leave half-trained weights behind
            self.out = None
        if self.progress is not None:
            self.progress.hide()
            self.progress.deleteLater()
            self.progress = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self.state = state
        if state == "cancelled":
            w.notify("Retraining cancelled; the previous model stays active.")
        elif state == "finished":
            self.summary_box = show_summary(w, "Retraining finished", message)
        elif message:
            w.show_error(message)
