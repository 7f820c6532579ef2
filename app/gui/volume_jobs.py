"""The two long actions on a whole volume, run as background jobs with progress and Cancel:
Segment (a network's proposal becomes the editable label) and 3D propagation of the current slice.

Both run the core's generator job on a worker thread (workers.run_in_background); results come
back on the GUI thread and go through the session, so each is one undoable step. Cancel leaves
the label as it was. A result for a case that was closed meanwhile is dropped.
"""
from __future__ import annotations

import threading

from PyQt5.QtCore import QObject, pyqtSignal

from app.core.errors import SegLoopError
from app.core.jobs import CancelToken
from app.gui.error_dialog import user_message
from app.gui.map_layers import heat_rgba
from app.gui.workers import JobRunner, run_in_background

HEAT_LAYER = "heat"
MODEL_TITLES = {"unet": "U-Net", "fpsnet-cam": "FPSNet-CAM", "fpsnet-mixed": "FPSNet-mixed"}


def model_title(name: str) -> str:
    return MODEL_TITLES.get(name, name)


class ModelLister(QObject):
    """Lists the installed models on a daemon thread: it imports the model zoo and torch (2-3 s),
    which must neither delay the window nor keep the application from quitting."""

    listed = pyqtSignal(object)   # list of model names
    failed = pyqtSignal(object)   # the exception

    def start(self) -> None:
        threading.Thread(target=self._run, name="segloop-models", daemon=True).start()

    def _run(self) -> None:
        try:
            from app.core.segmentation import available_models

            names = available_models()
        except Exception as error:  # noqa: BLE001 - shown as a message on the GUI thread
            self._emit("failed", error)
            return
        self._emit("listed", names)

    def _emit(self, name: str, value) -> None:
        try:
            getattr(self, name).emit(value)  # queued to the GUI thread
        except RuntimeError:
            pass  # the window closed meanwhile (its Qt object is gone)


class VolumeJobs(QObject):
    """Starts Segment and Propagate for the annotation controller; reports through its signals."""

    segmented = pyqtSignal(object, object)   # LoadedCase, SegmentationResult (after it was applied)
    finished = pyqtSignal()                  # any volume job ended (applied, cancelled or failed)

    def __init__(self, controller, parent_widget):
        super().__init__(parent_widget)
        self.controller = controller
        self.parent_widget = parent_widget
        self.runner: JobRunner | None = None
        self.last_result = None               # the newest SegmentationResult applied
        self.heat_visible = True
        self.heat_title = ""

    @property
    def running(self) -> bool:
        return self.runner is not None

    def _start(self, job, token, title, on_result, what: str) -> JobRunner:
        loaded = self.controller.loaded

        def result(value):
            self.runner = None
            self.controller.blocked_reason = None
            if self.controller.loaded is not loaded:
                self.controller.message.emit(f"The {what} finished after its case was closed; result dropped.")
            else:
                on_result(value)
            self.finished.emit()

        def failed(error):
            self.runner = None
            self.controller.blocked_reason = None
            self.controller.error.emit(f"The {what} failed: {user_message(error)} The label is unchanged.")
            self.finished.emit()

        def cancelled():
            self.runner = None
            self.controller.blocked_reason = None
            self.controller.message.emit(f"The {what} was cancelled; the label is unchanged.")
            self.finished.emit()

        self.runner = run_in_background(job, token, self.parent_widget, title=title, on_result=result,
                                        on_error=failed, on_cancelled=cancelled)
        return self.runner

    def _check_free(self) -> bool:
        if self.controller.loaded is None:
            self.controller.message.emit("Open a case first.")
            return False
        if self.running:
            self.controller.message.emit("Another volume job is running: wait for it or cancel it.")
            return False
        return True

    # ---------------------------------------------------------------- Segment
    def segment(self, model_name: str) -> JobRunner | None:
        if not self._check_free():
            return None
        if not model_name:
            self.controller.error.emit("No segmentation model is installed in models/weights/.")
            return None
        from app.core.segmentation import segment_volume_job

        token = CancelToken()
        image = self.controller.loaded.image
        job = segment_volume_job(image, model_name, cancel=token)
        title = f"Segmenting {self.controller.loaded.name} with {model_title(model_name)}…"
        return self._start(job, token, title, self._apply_segmentation, "segmentation")

    def _apply_segmentation(self, result) -> None:
        loaded = self.controller.loaded
        if not self.controller.replace_label(result.label.array, "proposal", prior=result.prior):
            return
        self.last_result = result
        self.show_heat(result)
        empty = "" if result.label.array.any() else " It found nothing: add foreground clicks."
        self.controller.message.emit(f"{model_title(result.model_name)} proposal in {result.seconds:.1f} s; "
                                     f"correct it with clicks (Ctrl+Z undoes it).{empty}")
        self.segmented.emit(loaded, result)

    def show_heat(self, result) -> None:
        """The CAM for FPSNet models, the foreground probability for the others."""
        heat = result.cam if result.cam is not None else result.prob
        self.controller.view.set_layer(HEAT_LAYER, heat, heat_rgba, 5, visible=self.heat_visible)
        self.heat_title = "CAM" if result.cam is not None else "probability"

    def set_heat_visible(self, visible: bool) -> bool:
        """False (with a message) when there is no heat map to show yet."""
        self.heat_visible = bool(visible)
        view = self.controller.view
        if not view.has_layer(HEAT_LAYER):
            if visible:
                self.controller.message.emit("No heat map yet: run Segment (Ctrl+G) first.")
            return False
        view.set_layer_visible(HEAT_LAYER, visible)
        return True

    # ---------------------------------------------------------------- 3D propagation
    def propagate(self) -> JobRunner | None:
        if not self._check_free():
            return None
        controller = self.controller
        if controller.busy:
            controller.message.emit("Clicks are still being refined: propagate when they are done.")
            return None
        session = controller.ensure_session()
        if session is None:
            return None
        axis, index = controller.view.state.orientation.axis, controller.view.state.slice_index
        try:
            plan = session.prepare_propagation(axis, index)
        except SegLoopError as exc:
            controller.message.emit(f"Cannot propagate: {exc}")
            return None
        token = CancelToken()
        controller.blocked_reason = ("A 3D propagation is running: wait for it to finish or cancel it "
                                     "before editing.")

        def apply(result):
            record = session.apply(plan, result)
            if record is None:
                controller.message.emit("Propagation changed nothing: the object ends at this slice.")
            else:
                z0, z1 = record.box[2 * axis: 2 * axis + 2]
                controller.message.emit(f"Propagated to slices {z0 + 1}–{z1} (Ctrl+Z undoes it).")

        return self._start(plan.job(token), token, "Propagating the label in 3D…", apply, "propagation")
