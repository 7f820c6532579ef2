"""The annotation half of the main window: actions, toolbar, status bar fields, save / done,
and crash recovery. Handlers read the widgets, call the controller or the core, show the result.

Store bookkeeping: a proposal moves a new case to "pre-labelled"; Save writes
results/labels/<case>.nii.gz on the image grid and moves it to "in progress"; Mark done saves
and sets "done". Clicks, seconds and the model used are added to the case's work record on every
save. Work is never left behind: switching cases or closing the window saves unsaved edits.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from PyQt5.QtCore import QEventLoop, QObject, Qt, QTimer
from PyQt5.QtWidgets import QApplication, QComboBox, QLabel, QMenu, QSpinBox, QToolBar

from app.core import autosave
from app.core.case_loader import paired_label
from app.core.errors import SegLoopError
from app.core.refine import DEFAULT_REFINER, REFINERS
from app.core.volume_io import read_label
from app.gui.annotation_controller import REFERENCE_LAYER, AnnotationController
from app.gui.brush_tool import ERASE, MAX_RADIUS_PX, MIN_RADIUS_PX, PAINT
from app.gui.error_dialog import user_message
from app.gui.recovery_dialog import RecoveryDialog
from app.gui.volume_jobs import ModelLister, VolumeJobs, model_title

log = logging.getLogger("segloop")
AUTOSAVE_FOLDER = "autosave"
LABELS_FOLDER = "labels"


class AnnotationUi(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.results_dir = Path(window.store.path).parent
        self.controller = AnnotationController(window.slice_view, self.results_dir / AUTOSAVE_FOLDER, self)
        self.jobs = VolumeJobs(self.controller, window)
        self.recovery_dialog: RecoveryDialog | None = None
        self._restored_session = None
        self._model_used: str | None = None
        self._shut_down = False
        self._build_widgets()
        c = self.controller
        c.message.connect(window.notify)
        c.error.connect(window.show_error)
        c.statusChanged.connect(self.update_status)
        c.brush.changed.connect(self._sync_brush)
        self.jobs.segmented.connect(self._on_segmented)
        self.jobs.finished.connect(self._after_volume_job)
        self.model_lister = ModelLister(self)
        self.model_lister.listed.connect(self._show_models)
        self.model_lister.failed.connect(self._models_failed)
        self.model_lister.start()

    # ---------------------------------------------------------------- widgets
    def _build_widgets(self) -> None:
        self.model_combo = QComboBox()
        self.model_combo.addItem("loading models…", "")
        self.model_combo.setEnabled(False)
        self.model_combo.setToolTip("The network that makes the first proposal (Segment, Ctrl+G)")
        self.engine_combo = QComboBox()
        for name in REFINERS:
            self.engine_combo.addItem(name, name)
        self.engine_combo.setCurrentIndex(self.engine_combo.findData(DEFAULT_REFINER))
        self.engine_combo.setToolTip(f"Refinement engine: how each click or scribble changes the label "
                                     f"(default {DEFAULT_REFINER})")
        self.engine_combo.activated.connect(
            lambda i: self.controller.set_engine(self.engine_combo.itemData(i)) or self.update_status())
        self.radius_spin = QSpinBox()
        self.radius_spin.setRange(MIN_RADIUS_PX, MAX_RADIUS_PX)
        self.radius_spin.setValue(self.controller.brush.radius_px)
        self.radius_spin.setSuffix(" px")
        self.radius_spin.setToolTip("Brush radius ([ and ] change it)")
        self.radius_spin.valueChanged.connect(self.controller.brush.set_radius)
        self.dice_label, self.latency_label, self.mode_label = QLabel(""), QLabel(""), QLabel("")
        self.dice_label.setToolTip("Dice of the whole editable label volume to the case's reference label")
        self.latency_label.setToolTip("Last click: the engine's time · from the mouse event to the overlay "
                                      "on screen")
        for label in (self.dice_label, self.latency_label, self.mode_label):
            label.setContentsMargins(12, 0, 6, 0)
            self.window.statusBar().addPermanentWidget(label)

    def _show_models(self, names) -> None:
        self.model_combo.clear()
        for name in names:
            self.model_combo.addItem(model_title(name), name)
        self.model_combo.setEnabled(bool(names))
        if not names:
            self.model_combo.addItem("no model installed", "")
        self.window.actions["segment"].setEnabled(bool(names))

    def _models_failed(self, error) -> None:
        self._show_models([])
        self.window.notify(f"The segmentation models cannot be listed: {user_message(error)}")

    def build_menus(self, make) -> None:
        """Add the annotation actions: File (save, done, recover), a new Edit menu, View (heat map,
        reference), a new Annotate menu; `make` is the window's action factory."""
        w = self.window
        file_menu = w.menus["file"]
        quit_separator = file_menu.actions()[-2]
        for act in (make("save", "&Save label", self.save), make("mark_done", "Mark case &done", self.mark_done),
                    make("recover", "&Recover unsaved work…", self.offer_recovery)):
            file_menu.insertAction(quit_separator, act)
        file_menu.insertSeparator(quit_separator)
        edit = QMenu("&Edit", w)
        w.menuBar().insertMenu(w.menus["view"].menuAction(), edit)
        edit.addAction(make("undo", "&Undo", self.controller.undo))
        edit.addAction(make("redo", "&Redo", self.controller.redo))
        edit.addAction(make("clear_seeds", "Clear the seeds of this slice", self.controller.clear_seeds))
        view = w.menus["view"]
        view.addSeparator()
        view.addAction(make("toggle_heatmap", "Show the heat map (CAM / probability)", self.set_heat, True))
        view.addAction(make("toggle_reference", "Show the reference outline", self.set_reference, True))
        self._set_checked("toggle_heatmap", True)
        self._set_checked("toggle_reference", True)
        annotate = QMenu("&Annotate", w)
        w.menuBar().insertMenu(w.menus["help"].menuAction(), annotate)
        annotate.addAction(make("segment", "&Segment with the chosen model", self.segment))
        annotate.addAction(make("propagate", "&Propagate this slice in 3D", self.jobs.propagate))
        annotate.addSeparator()
        annotate.addAction(make("paint", "&Paint brush", lambda on: self._brush_mode(PAINT, on), True))
        annotate.addAction(make("erase", "&Eraser", lambda on: self._brush_mode(ERASE, on), True))
        annotate.addAction(make("brush_smaller", "Smaller brush", lambda: self.controller.brush.grow(-1)))
        annotate.addAction(make("brush_bigger", "Bigger brush", lambda: self.controller.brush.grow(1)))
        annotate.addAction(make("leave_paint", "Back to click refinement",
                                lambda: self.controller.brush.set_mode(None)))
        w.actions["segment"].setEnabled(False)  # until the model list arrives
        self._build_toolbar()

    def _build_toolbar(self) -> None:
        a = self.window.actions
        short = {"segment": "Segment", "toggle_heatmap": "Heat map", "toggle_reference": "Reference",
                 "undo": "Undo", "redo": "Redo", "clear_seeds": "Clear seeds", "paint": "Paint",
                 "erase": "Erase", "propagate": "Propagate", "save": "Save", "mark_done": "Done"}
        for act_id, text in short.items():
            a[act_id].setIconText(text)
        bar = self.toolbar = QToolBar("Annotate")
        bar.setObjectName("annotate_toolbar")
        bar.setToolButtonStyle(Qt.ToolButtonTextOnly)
        layout = [self.model_combo, "segment", "toggle_heatmap", "toggle_reference", None,
                  self.engine_combo, "undo", "redo", "clear_seeds", None,
                  "paint", "erase", self.radius_spin, None, "propagate", "save", "mark_done"]
        for entry in layout:
            if entry is None:
                bar.addSeparator()
            elif isinstance(entry, str):
                bar.addAction(a[entry])
            else:
                bar.addWidget(entry)
        self.window.addToolBar(Qt.TopToolBarArea, bar)

    # ---------------------------------------------------------------- handlers
    def segment(self):
        return self.jobs.segment(self.model_combo.currentData())

    def set_heat(self, visible: bool) -> None:
        if not self.jobs.set_heat_visible(visible) and visible:
            self._set_checked("toggle_heatmap", True)  # the preference holds for the next proposal

    def set_reference(self, visible: bool) -> None:
        view = self.controller.view
        if not view.has_layer(REFERENCE_LAYER):
            if visible and self.controller.loaded is not None:
                self.window.notify("This case has no reference label.")
            return
        view.set_layer_visible(REFERENCE_LAYER, visible)

    def _brush_mode(self, mode: str, on: bool) -> None:
        brush = self.controller.brush
        if on:
            brush.set_mode(mode)
        elif brush.mode == mode:
            brush.set_mode(None)

    def _sync_brush(self) -> None:
        brush = self.controller.brush
        self._set_checked("paint", brush.mode == PAINT)
        self._set_checked("erase", brush.mode == ERASE)
        self.radius_spin.blockSignals(True)
        self.radius_spin.setValue(brush.radius_px)
        self.radius_spin.blockSignals(False)
        self.update_status()

    def _set_checked(self, action_id: str, checked: bool) -> None:
        act = self.window.actions[action_id]
        act.blockSignals(True)
        act.setChecked(checked)
        act.blockSignals(False)

    def _after_volume_job(self) -> None:
        # A dialog (progress, recovery) had the focus: give it back to the view, so keys work at once.
        self._reactivate()
        # The hidden progress dialog's deactivation arrives later, in the event loop, and can leave
        # no active window (shortcuts such as Ctrl+Z then go nowhere): check again once it has.
        QTimer.singleShot(0, self._reactivate)
        self.update_status()

    def _reactivate(self) -> None:
        active = QApplication.activeWindow()
        if self.window.isVisible() and (active is None or not active.isVisible()):
            self.window.activateWindow()
        self.window.slice_view.setFocus()

    def update_status(self) -> None:
        dice, latency, mode = self.controller.status_texts()
        self.dice_label.setText(dice)
        self.latency_label.setText(latency)
        self.mode_label.setText(mode)
        session = self.controller.session
        self.window.actions["undo"].setEnabled(self.controller.busy or bool(session and session.can_undo))
        self.window.actions["redo"].setEnabled(bool(session and session.can_redo))

    # ---------------------------------------------------------------- cases
    def case_opened(self, loaded) -> None:
        """The window shows `loaded`: start annotating it (with a restored session if any)."""
        reference = None
        if loaded.label_source == "reference" and loaded.label is not None:
            reference = loaded.label.array
        elif loaded.case_id is not None:
            reference = self._read_reference(loaded)
        session, self._restored_session = self._restored_session, None
        self._model_used = None
        self.controller.open_case(loaded, reference, session)
        self.controller.view.set_layer_visible(REFERENCE_LAYER, self.window.actions["toggle_reference"].isChecked())

    def _read_reference(self, loaded):
        path = self.window.store.get(loaded.case_id).reference_label_path
        if not path or not Path(path).exists():
            return None
        try:
            return read_label(path, loaded.image).array
        except (SegLoopError, OSError) as exc:
            self.window.notify(f"The reference label is not used: {user_message(exc)}")
            return None

    def before_case_change(self) -> None:
        """Another case is about to replace this one: keep its work, then let it go."""
        if self.controller.has_unsaved_work:
            name = self.controller.loaded.name
            if self.save():
                self.window.notify(f"Saved your work on {name}.")
        self.controller.close_case()

    def _set_label_source(self, loaded, source: str) -> None:
        """Where the editable label came from, as the status bar says it."""
        loaded.label_source = source
        if loaded is self.window.case:
            self.window.case_label.setText(f"{loaded.image.modality} · {source} label")

    def _on_segmented(self, loaded, result) -> None:
        self._model_used = result.model_name
        self._set_label_source(loaded, f"{model_title(result.model_name)} proposal")
        store = self.window.store
        if loaded.case_id is not None:
            if store.get(loaded.case_id).status == "new":
                store.set_status(loaded.case_id, "pre-labelled")
            store.record_work(loaded.case_id, model_used=result.model_name)
            self.window.refresh_case_list()

    def label_path(self, loaded) -> Path:
        return self.results_dir / LABELS_FOLDER / f"{loaded.name}.nii.gz"

    def save(self) -> Path | None:
        """Write the editable label on the image grid and record the work; None on failure."""
        c, store = self.controller, self.window.store
        loaded = c.loaded
        if loaded is None:
            self.window.notify("Open a case first.")
            return None
        session = c.ensure_session()
        if session is None:
            return None
        try:
            written = session.save(self.label_path(loaded))
            if loaded.case_id is not None:
                clicks, seconds = c.take_work()
                store.set_label(loaded.case_id, written, status="in progress")
                store.record_work(loaded.case_id, clicks, seconds, model_used=self._model_used)
        except (SegLoopError, OSError) as exc:
            self.window.show_error(f"The label could not be saved: {user_message(exc)}")
            return None
        self._set_label_source(loaded, "working")
        self.window.refresh_case_list()
        self.window.notify(f"Saved {written}.")
        return written

    def mark_done(self) -> bool:
        loaded = self.controller.loaded
        if loaded is None or self.save() is None:
            return False
        if loaded.case_id is not None:
            self.window.store.set_status(loaded.case_id, "done")
            self.window.refresh_case_list()
        self.window.notify(f"{loaded.name} is done.")
        return True

    # ---------------------------------------------------------------- crash recovery
    def offer_recovery(self, quiet: bool = False) -> RecoveryDialog | None:
        """The recovery dialog if unsaved work exists (start-up calls it with quiet=True)."""
        items = autosave.find_recoverable(self.results_dir / AUTOSAVE_FOLDER)
        if not items:
            if not quiet:
                self.window.notify("There is no unsaved work to recover.")
            return None
        if self.recovery_dialog is not None:
            self.recovery_dialog.close()
        dialog = self.recovery_dialog = RecoveryDialog(items, self.window)
        dialog.restoreRequested.connect(self.restore)
        dialog.discardRequested.connect(self.discard)
        dialog.show()
        return dialog

    def discard(self, item) -> None:
        try:
            autosave.discard(item)
        except SegLoopError as exc:
            self.window.show_error(str(exc))
            return
        if self.recovery_dialog is not None:
            self.recovery_dialog.remove(item)

    def restore(self, item) -> bool:
        """Reopen the case of `item` with its label, seeds and undo history as they were."""
        w = self.window
        if item.image_path is None or not Path(item.image_path).exists():
            w.show_error(f"The image of this unsaved work, {item.image_path}, is gone; it cannot be restored.")
            return False
        record = w.store.find_by_image(item.image_path) or w.store.add_case(
            item.image_path, paired_label(item.image_path))
        loaded = w._load(record.image_path, None, record.reference_label_path, record.id)
        if loaded is None:
            return False
        reference = loaded.label.array if loaded.label_source == "reference" else None
        try:
            session = autosave.restore(item, volume=loaded.image, reference=reference)
        except (SegLoopError, OSError) as exc:
            w.show_error(f"The unsaved work on {loaded.name} cannot be restored: {user_message(exc)}")
            return False
        loaded.label = loaded.image.with_array(session.label)
        loaded.label_source = "restored"
        self._restored_session = session
        w._display(loaded)
        w.refresh_case_list()
        if self.recovery_dialog is not None:
            self.recovery_dialog.remove(item)
        self._after_volume_job()  # the dialog had the focus: back to the view
        w.notify(f"Restored {session.step} actions on {loaded.name}; Ctrl+Z steps back through them.")
        return True

    def shutdown(self) -> None:
        """The window closes: save unsaved edits, stop the jobs and the worker (idempotent)."""
        if self._shut_down:
            return
        self._shut_down = True
        if self.jobs.runner is not None:  # stop it at its next check, and let its thread end
            self.jobs.runner.cancel()
            deadline = time.monotonic() + 30
            while self.jobs.runner is not None and time.monotonic() < deadline:
                QApplication.processEvents(QEventLoop.AllEvents, 50)
        try:
            if self.controller.has_unsaved_work:
                self.save()
        except Exception:  # noqa: BLE001 - e.g. the store closed first; the autosave still holds the work
            log.exception("saving on close failed")
        self.controller.shutdown()
