"""Several annotators per case: File > Import annotation…, Edit > Preferences… (who is annotating)
and View > Consensus overlay (majority vote or STAPLE of the case's annotations, as contours).

The annotator name is kept with the results, in RESULTS/segloop.ini (QSettings, INI format): it
travels with the case database it describes, and tests on a temporary results folder never touch
the user's own settings.
"""
from __future__ import annotations

import getpass
import re
from pathlib import Path

import numpy as np
from PyQt5.QtCore import QObject, QSettings, Qt, pyqtSignal
from PyQt5.QtWidgets import (QActionGroup, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                             QInputDialog, QLineEdit, QMenu)

from app.core.consensus import majority_vote, staple
from app.core.errors import SegLoopError
from app.core.jobs import CancelToken, Progress
from app.core.volume_io import read_label, write_label
from app.gui.error_dialog import user_message
from app.gui.overlay import contour_mask
from app.gui.summary_box import track
from app.gui.workers import run_in_background

SETTINGS_NAME = "segloop.ini"
ANNOTATIONS_FOLDER = "annotations"
CONSENSUS_LAYER = "consensus"
CONSENSUS_COLOUR = (255, 255, 255)   # white: apart from every label colour and the cyan reference
CONSENSUS_METHODS = {"majority": "Majority vote", "staple": "STAPLE"}


def settings_for(window) -> QSettings:
    return QSettings(str(Path(window.store.path).parent / SETTINGS_NAME), QSettings.IniFormat)


def default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (some containers): a neutral default
        return "annotator"


def current_user(window) -> str:
    return str(settings_for(window).value("annotator/name", "") or default_user())


def set_current_user(window, name: str) -> None:
    settings = settings_for(window)
    settings.setValue("annotator/name", name.strip())
    settings.sync()


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "annotator"


def consensus_rgba(mask: np.ndarray, colour=CONSENSUS_COLOUR) -> np.ndarray:
    """(rows, cols, 4) uint8: the consensus regions' outlines, opaque; transparent elsewhere."""
    edge = contour_mask(np.asarray(mask))
    rgba = np.zeros(edge.shape + (4,), dtype=np.uint8)
    rgba[edge, :3] = colour
    rgba[edge, 3] = 255
    return rgba


def consensus_job(paths: list[Path], image, method: str, cancel: CancelToken):
    """Read each annotation on the image's grid, then combine them: Progress per file."""
    masks = []
    for i, path in enumerate(paths):
        cancel.raise_if_cancelled()
        yield Progress(i, len(paths) + 1, f"reading {path.name}")
        masks.append(read_label(path, image).array)
    cancel.raise_if_cancelled()
    yield Progress(len(paths), len(paths) + 1, f"{CONSENSUS_METHODS[method]} of {len(paths)} annotations")
    return majority_vote(masks) if method == "majority" else staple(masks).mask


class CaseWatcher(QObject):
    """Emits caseChanged when the window shows another case (the slice view announces every new
    volume with sliceChanged; the window has set `case` by then)."""

    caseChanged = pyqtSignal(object)  # LoadedCase

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._seen = None
        window.slice_view.sliceChanged.connect(self._check)

    def _check(self, *_args) -> None:
        if self.window.case is not self._seen:
            self._seen = self.window.case
            self.caseChanged.emit(self._seen)


class PreferencesDialog(QDialog):
    def __init__(self, parent, name: str):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        form = QFormLayout(self)
        self.name_edit = QLineEdit(name)
        self.name_edit.setToolTip("Imported and saved annotations are stored under this name")
        form.addRow("Annotator name", self.name_edit)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class Annotators:
    """Import, preferences and the consensus layer. Tests read `consensus`, `method`."""

    def __init__(self, window, watcher: CaseWatcher):
        self.window = window
        self.method: str | None = None
        self.consensus: np.ndarray | None = None
        self.runner = None
        self.preferences: PreferencesDialog | None = None
        watcher.caseChanged.connect(lambda _case: self._case_changed())

    @property
    def results_dir(self) -> Path:
        return Path(self.window.store.path).parent

    def build_menus(self, make) -> None:
        w = self.window
        file_menu = w.menus["file"]
        file_menu.insertAction(file_menu.actions()[-2], make("import_annotation", "&Import annotation…",
                                                              self.ask_import))
        edit = next((a.menu() for a in w.menuBar().actions() if a.menu() and a.text() == "&Edit"), None)
        if edit is None:
            edit = w.menuBar().addMenu("&Edit")
        edit.addSeparator()
        edit.addAction(make("preferences", "&Preferences…", self.ask_preferences))
        sub = QMenu("&Consensus overlay", w)
        group = QActionGroup(w)
        for key, title in (("off", "Off"), *CONSENSUS_METHODS.items()):
            act = make(f"consensus_{key}", title, lambda on=False, k=key: on and self.set_method(
                None if k == "off" else k), True)
            group.addAction(act)
            sub.addAction(act)
        w.actions["consensus_off"].setChecked(True)
        w.menus["view"].addSeparator()
        w.menus["view"].addMenu(sub)

    # ------------------------------------------------------------------ preferences
    def ask_preferences(self) -> PreferencesDialog:
        self.preferences = PreferencesDialog(self.window, current_user(self.window))
        self.preferences.setAttribute(Qt.WA_DeleteOnClose)
        self.preferences.accepted.connect(
            lambda d=self.preferences: set_current_user(self.window, d.name_edit.text()))
        track(self.preferences).show()
        return self.preferences

    # ------------------------------------------------------------------ import
    def ask_import(self) -> None:
        w = self.window
        if w.case is None:
            w.show_error("Open a case first, then import another annotator's label for it.")
            return
        path, _ = QFileDialog.getOpenFileName(w, "Import annotation", "", "Labels (*.nii *.nii.gz *.nrrd *.mha *.mhd)")
        if not path:
            return
        name, ok = QInputDialog.getText(w, "Import annotation", "Annotator:", text=current_user(w))
        if ok and name.strip():
            self.import_annotation(path, name.strip())

    def import_annotation(self, path, annotator: str | None = None) -> bool:
        """Store `path` as `annotator`'s label of the open case (a copy under results/annotations/)."""
        w = self.window
        if w.case is None:
            w.show_error("Open a case first, then import another annotator's label for it.")
            return False
        annotator = annotator or current_user(w)
        try:
            label = read_label(path, w.case.image)  # refuses a label of another grid, in one sentence
            target = self.results_dir / ANNOTATIONS_FOLDER / safe_name(w.case.name) / f"{safe_name(annotator)}.nii.gz"
            target.parent.mkdir(parents=True, exist_ok=True)
            write_label(label.array, w.case.image, target)
            w.store.add_annotation(w.case.case_id, annotator, target)
        except SegLoopError as error:
            w.show_error(str(error))
            return False
        except OSError as error:
            w.show_error(f"{path} cannot be imported ({error.strerror or error}).")
            return False
        count = len(w.store.annotations(w.case.case_id))
        w.notify(f"Imported {Path(path).name} as {annotator}'s annotation ({count} annotators for this case).")
        if self.method:
            self.show_consensus()
        return True

    # ------------------------------------------------------------------ consensus layer
    def set_method(self, method: str | None) -> None:
        self.method = method
        self._sync_actions()
        if method is None:
            self.consensus = None
            self.window.slice_view.remove_layer(CONSENSUS_LAYER)
        else:
            self.show_consensus()

    def _sync_actions(self) -> None:
        for key in ("off", *CONSENSUS_METHODS):
            act = self.window.actions[f"consensus_{key}"]
            act.blockSignals(True)
            act.setChecked(key == (self.method or "off"))
            act.blockSignals(False)

    def show_consensus(self):
        w = self.window
        w.slice_view.remove_layer(CONSENSUS_LAYER)
        self.consensus = None
        if w.case is None:
            return None
        paths = [a.label_path for a in w.store.annotations(w.case.case_id)]
        if not paths:
            w.notify("This case has no imported annotations: File > Import annotation… adds them.")
            return None
        token, case, method = CancelToken(), w.case, self.method
        self.runner = run_in_background(
            consensus_job(paths, case.image, method, token), token, w,
            title=f"{CONSENSUS_METHODS[method]} of {len(paths)} annotations",
            on_result=lambda mask: self._show(case, method, mask, len(paths)),
            on_error=lambda e: w.show_error(user_message(e, w.log_path)))
        return self.runner

    def _show(self, case, method, mask, count: int) -> None:
        w = self.window
        if case is not w.case or method != self.method:
            return  # the user moved on meanwhile
        self.consensus = mask
        w.slice_view.set_layer(CONSENSUS_LAYER, mask, consensus_rgba, 16)
        w.notify(f"Consensus overlay: {CONSENSUS_METHODS[method]} of {count} annotations (white outline).")

    def _case_changed(self) -> None:
        self.consensus = None
        if self.method:
            self.show_consensus()
