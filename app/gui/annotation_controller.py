"""Binds the slice view's mouse to the open case's AnnotationSession (issue 3/4, GUI side).

Left click = foreground seed, right click = background seed on the current slice; a left/right
drag = a scribble; in paint mode (brush_tool.py) drags paint or erase instead. Clicks and
scribbles are refined on one worker thread (refine_worker.py), in the order they were made: each
is planned when the worker is free, so it sees every earlier click. If the state changed while a
result was computed (an undo, a brush stroke), the stale result is dropped and the same click is
planned again on the new state; an undo while clicks are still computing cancels them instead.
Results are applied on the GUI thread, which then repaints at once and stamps the latency.

The session is created on the first edit, not when a case is opened, so browsing cases writes
nothing. Every session event redraws the label and the seeds; the window shows `message`s in the
status bar and `error`s in a dialog.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

import numpy as np
from PyQt5.QtCore import QObject, Qt, pyqtSignal

from app.core.errors import SegLoopError
from app.core.refine import DEFAULT_REFINER
from app.core.seeds import AXIS_NAMES, voxel_to_plane
from app.core.session import AnnotationSession, SessionEvent
from app.gui.annotation_support import dice_of, dice_text, unsettled_recovery, warm_up_plan
from app.gui.brush_tool import BrushCursor, BrushTool
from app.gui.error_dialog import user_message
from app.gui.latency_probe import LatencyProbe
from app.gui.map_layers import reference_contour_rgba
from app.gui.refine_worker import RefineJob, RefineWorker
from app.gui.seeds_overlay import BG_COLOUR, FG_COLOUR, PAINT_COLOUR, SeedsOverlay

log = logging.getLogger("segloop")
REFERENCE_LAYER = "reference"
EDIT_KINDS = ("click", "scribble")


class AnnotationController(QObject):
    message = pyqtSignal(str)       # a notice for the status bar
    error = pyqtSignal(str)         # a problem the user must see (dialog)
    statusChanged = pyqtSignal()    # Dice, latency, mode or undo state changed

    def __init__(self, view, autosave_root: Path, parent=None):
        super().__init__(parent)
        self.view = view
        self.autosave_root = Path(autosave_root)
        self.engine = DEFAULT_REFINER
        self.loaded = None                      # LoadedCase on screen
        self.reference: np.ndarray | None = None
        self.session: AnnotationSession | None = None
        self.blocked_reason: str | None = None  # set while a propagation job runs
        self.clicks_unrecorded = 0              # clicks + scribbles not yet added to the store
        self.seconds_recorded = 0.0
        self.probe = LatencyProbe()
        self.brush = BrushTool(self)
        self.seeds_overlay = SeedsOverlay(view)
        self.brush_cursor = BrushCursor(view, self.brush)
        self.worker = RefineWorker(self)
        self.worker.finished.connect(self._on_finished)
        self.pending: deque[RefineJob] = deque()
        self._stroke: list[tuple[int, int, int]] | None = None
        self._stroke_button = 0
        self._warm = False
        self._opening_dice: dict[str, float] | None = None
        self.brush.changed.connect(self.statusChanged)
        view.voxelClicked.connect(self.on_click)
        view.clickedOutside.connect(self.on_click_outside)
        view.strokeEvent.connect(self.on_stroke)

    # ---------------------------------------------------------------- case lifecycle
    def open_case(self, loaded, reference: np.ndarray | None, session: AnnotationSession | None = None) -> None:
        """A case is on screen (the view already shows its image); `session` when restoring."""
        self.close_case()
        self.loaded, self.reference = loaded, reference
        self.seconds_recorded, self.clicks_unrecorded = 0.0, 0
        if reference is not None:
            self.view.set_layer(REFERENCE_LAYER, reference, reference_contour_rgba, 15)
        label = loaded.label.array if loaded.label is not None else np.zeros(loaded.image.shape, np.uint8)
        self._opening_dice = dice_of(label, reference) if reference is not None else None
        if session is not None:
            self._adopt(session)
        if not self._warm:
            self._warm = True
            plan = warm_up_plan(self.engine)
            if plan is not None:
                self.worker.warm_up(plan)
        self.statusChanged.emit()

    def close_case(self) -> None:
        """Forget the case: pending clicks are dropped, the session closed (its autosave stays)."""
        self._drop_pending()
        if self.session is not None:
            self.session.close()
        self.session = self.loaded = self.reference = None
        self._stroke = None
        self.seeds_overlay.set_seeds([])
        self.seeds_overlay.hide_stroke()

    def ensure_session(self) -> AnnotationSession | None:
        """The session of the open case, created on first use (None, with a message, if not possible)."""
        if self.session is not None or self.loaded is None:
            return self.session
        image = self.loaded.image
        if image.path is not None and unsettled_recovery(self.autosave_root, image.path):
            self.error.emit(f"{self.loaded.name} has unsaved work from an earlier session. Restore or discard "
                            "it first (File > Recover unsaved work…), so it is not overwritten.")
            return None
        label = self.loaded.label.array if self.loaded.label is not None else None
        try:
            session = AnnotationSession(image, label=label, reference=self.reference, engine=self.engine,
                                        autosave_dir=self.autosave_root,
                                        label_kind=self.loaded.label_source)
        except (SegLoopError, OSError) as exc:
            self.error.emit(f"Cannot start annotating {self.loaded.name}: {user_message(exc)}")
            return None
        self._adopt(session)
        return session

    def _adopt(self, session: AnnotationSession) -> None:
        self.session = session
        self.engine = session.engine
        self.loaded.label = self.loaded.image.with_array(session.label)  # the live array, shared
        session.subscribe(self._on_session_event)
        self.view.set_label(session.label)
        self.seeds_overlay.set_seeds(session.seeds.all())

    def _on_session_event(self, event: SessionEvent) -> None:
        if event.box is not None:
            self.view.refresh_label()
        if event.seeds_changed:
            self.seeds_overlay.set_seeds(self.session.seeds.all())
        self.statusChanged.emit()

    @property
    def has_unsaved_work(self) -> bool:
        s = self.session
        if s is None or s.step == 0:
            return False
        saved = s.autosave.state.get("saved_step") if s.autosave is not None else None
        return saved is None or s.step > saved

    def take_work(self) -> tuple[int, float]:
        """(clicks, seconds) done since the last call, for the store's work record."""
        if self.session is None:
            return 0, 0.0
        elapsed = self.session.elapsed()
        work = (self.clicks_unrecorded, max(0.0, elapsed - self.seconds_recorded))
        self.clicks_unrecorded, self.seconds_recorded = 0, elapsed
        return work

    # ---------------------------------------------------------------- engine
    def set_engine(self, name: str) -> None:
        self.engine = name
        if self.session is not None:
            try:
                self.session.set_engine(name)
            except SegLoopError as exc:
                self.error.emit(str(exc))

    # ---------------------------------------------------------------- mouse
    def _refused(self) -> bool:
        if self.loaded is None:
            self.message.emit("Open a case first.")
            return True
        if self.blocked_reason:
            self.message.emit(self.blocked_reason)
            return True
        return False

    def on_click(self, z: int, y: int, x: int, button: int) -> None:
        started = time.perf_counter()
        if button not in (int(Qt.LeftButton), int(Qt.RightButton)) or self._refused():
            return
        if self.brush.active:
            self._paint([(z, y, x)], self.brush.erases(button))
            return
        self._enqueue("click", [(z, y, x)], button == int(Qt.LeftButton), started)

    def on_click_outside(self, button: int) -> None:
        if self.loaded is not None:
            self.message.emit("That click is outside the image: click on the image to add a seed.")

    def on_stroke(self, phase: str, voxel, button: int) -> None:
        if phase == "start":
            self._stroke, self._stroke_button = [], button
            if self._refused():
                self._stroke = None
        if self._stroke is None:
            return
        if voxel is not None and (not self._stroke or self._stroke[-1] != tuple(voxel)):
            self._stroke.append(tuple(voxel))
        if phase != "finish":
            colour = PAINT_COLOUR if self.brush.active else (
                FG_COLOUR if self._stroke_button == int(Qt.LeftButton) else BG_COLOUR)
            self.seeds_overlay.show_stroke(self._stroke, colour)
            return
        started = time.perf_counter()
        stroke, self._stroke = self._stroke, None
        self.seeds_overlay.hide_stroke()
        if not stroke:
            self.message.emit("That stroke was outside the image: draw on the image.")
        elif self.brush.active:
            self._paint(stroke, self.brush.erases(button))
        else:
            kind = "click" if len(stroke) == 1 else "scribble"
            self._enqueue(kind, stroke, button == int(Qt.LeftButton), started)

    # ---------------------------------------------------------------- refinement queue
    def _enqueue(self, kind: str, voxels, foreground: bool, started: float) -> None:
        session = self.ensure_session()
        if session is None:
            return
        axis = self.view.state.orientation.axis
        index = self.view.state.slice_index
        points = [voxel_to_plane(axis, v)[1] for v in voxels]
        job = RefineJob(kind, axis, index, points, foreground, session=session)
        job.timing.event, job.timing.kind, job.timing.engine = started, kind, session.engine
        self.pending.append(job)
        self._pump()

    def _pump(self) -> None:
        while self.worker.busy is None and self.pending:
            job = self.pending.popleft()
            if job.dropped or job.session is not self.session:
                continue
            try:
                if job.kind == "click":
                    job.plan = job.session.prepare_click(job.axis, job.index, job.points[0], job.foreground)
                else:
                    job.plan = job.session.prepare_scribble(job.axis, job.index, job.points, job.foreground)
            except SegLoopError as exc:
                self.message.emit(str(exc))
                continue
            job.timing.engine = job.plan.engine
            self.worker.submit(job)

    @property
    def busy(self) -> bool:
        """Clicks still waiting or computing."""
        return self.worker.busy is not None and not self.worker.busy.dropped or bool(self.pending)

    def _drop_pending(self) -> int:
        jobs = list(self.pending) + ([self.worker.busy] if self.worker.busy is not None else [])
        live = [j for j in jobs if not j.dropped and j.kind in EDIT_KINDS]
        for job in jobs:
            job.dropped = True
        self.pending.clear()
        return len(live)

    def _on_finished(self, job: RefineJob, result, error) -> None:
        try:
            self._finish(job, result, error)
        finally:
            self._pump()

    def _finish(self, job: RefineJob, result, error) -> None:
        session = self.session
        if job.dropped or job.session is not session or session is None:
            return
        if error is not None:
            if not isinstance(error, SegLoopError):
                log.error("refinement engine %s failed", job.timing.engine, exc_info=error)
            self.error.emit(f"The {job.timing.engine} engine could not refine that {job.kind}: "
                            f"{user_message(error)} The label is unchanged.")
            return
        try:
            record = session.apply(job.plan, result)
        except SegLoopError as exc:
            self.error.emit(str(exc))
            return
        if record is None:  # the label or seeds changed while it computed: plan it again
            job.timing.recomputed += 1
            job.plan = session.replan(job.plan)
            self.worker.submit(job)
            return
        job.timing.applied = time.perf_counter()
        self.view.repaint_now()
        job.timing.painted = time.perf_counter()
        self.probe.add(job.timing)
        self.clicks_unrecorded += 1
        self.statusChanged.emit()

    # ---------------------------------------------------------------- other edits
    def _paint(self, voxels, erase: bool) -> None:
        session = self.ensure_session()
        if session is None:
            return
        axis, index = self.view.state.orientation.axis, self.view.state.slice_index
        points = [voxel_to_plane(axis, v)[1] for v in voxels]
        try:
            record = session.brush(axis, index, points, float(self.brush.radius_px), erase=erase)
        except SegLoopError as exc:
            self.message.emit(str(exc))
            return
        if record is None:
            self.message.emit("Nothing to erase there." if erase else "Already painted there.")

    def undo(self) -> None:
        if self._drop_pending():
            self.message.emit("Undo: cancelled the click still being computed.")
            return
        self._history("undo")

    def redo(self) -> None:
        self._history("redo")

    def _history(self, which: str) -> None:
        if self.session is None or self._refused():
            return
        record = getattr(self.session, which)()
        if record is None:
            self.message.emit(f"Nothing to {which}.")
        else:
            self.message.emit(f"{which.capitalize()}: {record.entry.get('of', record.kind)}.")

    def clear_seeds(self) -> None:
        if self._refused() or self.session is None:
            return
        axis, index = self.view.state.orientation.axis, self.view.state.slice_index
        if self.session.clear_seeds(axis, index) is None:
            self.message.emit(f"No seeds on this {AXIS_NAMES[axis]} slice.")
        else:
            self.message.emit(f"Seeds of {AXIS_NAMES[axis]} slice {index + 1} cleared (the label is kept).")

    def replace_label(self, array: np.ndarray, kind: str, prior: np.ndarray | None = None) -> bool:
        """A whole new editable label (a proposal, a file): one undoable step. `prior`: the
        network's foreground prior the next clicks should use (kept by undo; None keeps the old)."""
        session = self.ensure_session()
        if session is None:
            return False
        self._drop_pending()
        try:
            session.set_label(array, kind, prior=prior)
        except SegLoopError as exc:
            self.error.emit(str(exc))
            return False
        return True

    # ---------------------------------------------------------------- status
    def dice(self) -> dict[str, float] | None:
        if self.reference is None:
            return None
        return self.session.dice() if self.session is not None else self._opening_dice

    def status_texts(self) -> tuple[str, str, str]:
        """(Dice, latency, mode) texts for the status bar."""
        last = self.probe.last
        latency = "" if last is None else f"refine {last.compute_ms:.0f} ms · screen {last.total_ms:.0f} ms"
        mode = self.brush.describe() if self.brush.active else ""
        return dice_text(self.dice()), latency, mode

    def shutdown(self) -> None:
        self.close_case()
        self.worker.shutdown()
