"""The annotation session of one case: the label a clinician edits, seeds, undo/redo, log, autosave.

Qt-free. The GUI calls it from its own thread only; a refinement is computed elsewhere through a
plan (see app/core/session_plans.py):

    plan = session.prepare_click(axis, index, (row, col), foreground=True)   # GUI thread, pure
    result = plan.compute()                                                  # worker thread
    record = session.apply(plan, result)                                     # GUI thread

and a propagation the same way, with a generator job for progress and cancel:
`plan = session.prepare_propagation(axis, index)`, `result = run_job(plan.job(cancel), ...)` on
the worker, `session.apply(plan, result)`. (row, col) are plane coordinates in numpy index order
(app/core/seeds.py); the view converts the mouse with display_to_voxel + voxel_to_plane.

Staleness rule: a plan remembers `session.version` when it was made; every change of label or
seeds (any action, undo, redo) bumps the version. `apply` applies a result only if the version is
unchanged, otherwise it changes nothing and returns None: the state the engine saw is gone. The
GUI then drops the result, or re-plans the same interaction on the current state with
`session.replan(plan)`. With one worker and clicks queued (each planned after the previous one
was applied) nothing goes stale; an undo or brush stroke made while a click computes does.

Multi-class labels: actions edit `active_value` (default 1) under an overwrite policy (see
app/core/label_values.py; default "lower": nested classes as in LiTS, editing tumour (2) may take
liver (1) voxels, editing liver never removes tumour). Background and erase clear only voxels of
the active value.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from app.core.errors import InputError
from app.core.label_digest import DiceTracker, LabelDigest
from app.core.label_values import check_policy, merge
from app.core.refine.base import RefineOptions, disks, scribble_pixels
from app.core.seeds import (Seed, SeedStore, box_of_plane, check_axis, check_inside, plane_shape,
                            plane_to_voxel)
from app.core.session_records import (ActionRecord, SessionError, SessionEvent,  # noqa: F401
                                     _read_only, as_label, prior_from_codes)
from app.core.session_plans import ClickPlan, VolumePlan, build_click_plan, resolve_refiner
from app.core.undo import DEFAULT_HISTORY_BYTES, Edit, History, SeedChange, box_slices, make_edit
from app.core.volume import Volume

MAX_BRUSH_RADIUS_PX = 256


class AnnotationSession:
    def __init__(self, volume: Volume, label: np.ndarray | None = None, prior: np.ndarray | None = None,
                 reference: np.ndarray | None = None, engine: str = "geodesic-crf",
                 options: RefineOptions | None = None, log_path: str | Path | None = None,
                 autosave_dir: str | Path | None = None, active_value: int = 1,
                 history_bytes: int = DEFAULT_HISTORY_BYTES, label_kind: str = "initial",
                 overwrite: str = "lower"):
        self.volume = volume
        shape = volume.shape
        self.label = as_label(np.zeros(shape, np.uint8) if label is None else label, shape, "initial label")
        self.prior = None if prior is None else self._as_prior(prior)
        self._prior_codes_to_log = None   # set only while set_label logs a new prior (its byte codes)
        self.reference = None if reference is None else as_label(reference, shape, "reference label")
        self.seeds = SeedStore()
        self.history = History(cap_bytes=int(history_bytes))
        self.version = 0
        self.step = 0
        self.active_value = int(active_value)
        self.overwrite = check_policy(overwrite)
        self.engine = engine
        self.options = options or RefineOptions()
        self.label_kind = label_kind
        self.set_engine(engine, self.options)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[SessionEvent], None]] = []
        self._digest = LabelDigest(self.label)
        self._dice = DiceTracker(self.label, self.reference) if self.reference is not None else None
        self._reference_values = self._dice.reference_values() if self._dice is not None else []
        self._opened = time.monotonic()
        self._t_offset = 0.0
        self.log = None
        self.autosave = None
        self.last_log_write_ms = 0.0
        self.closed = False
        case_lock = None
        if autosave_dir is not None:
            from app.core.autosave import case_key, new_log_path
            from app.core.case_lock import CaseLock

            # first, so a refused second window writes nothing (no log, no autosave)
            case_lock = CaseLock(Path(autosave_dir) / case_key(volume.path))
            if log_path is None:
                log_path = new_log_path(autosave_dir, volume.path)
        try:
            if log_path is not None:
                from app.core.session_files import start_log

                self.log = start_log(self, Path(log_path))
            if autosave_dir is not None:
                from app.core.autosave import AutosaveWriter

                self.autosave = AutosaveWriter(self, Path(autosave_dir), lock=case_lock)
        except BaseException:
            if case_lock is not None:
                case_lock.release()
            raise

    # ------------------------------------------------------------------ state
    def _as_prior(self, prior) -> np.ndarray:
        prior = np.asarray(prior)
        if prior.shape != self.volume.shape:
            raise InputError(f"the prior has shape {prior.shape}, the image {self.volume.shape} (z, y, x).")
        return _read_only(np.array(prior, dtype=np.float32, copy=True, order="C"))

    @property
    def checksum(self) -> str:
        return self._digest.hexdigest()

    @property
    def can_undo(self) -> bool:
        return bool(self.history.undo_stack)

    @property
    def can_redo(self) -> bool:
        return bool(self.history.redo_stack)

    def elapsed(self) -> float:
        """Seconds since the case was opened (continued across a restore)."""
        return self._t_offset + time.monotonic() - self._opened

    def dice(self) -> dict[str, float] | None:
        if self._dice is None:
            return None
        values = sorted(set(self._reference_values) | {self.active_value})
        return self._dice.dice(values)

    def subscribe(self, callback: Callable[[SessionEvent], None]) -> None:
        """Call `callback(SessionEvent)` after every change (the GUI redraws the box it names)."""
        self._listeners.append(callback)

    def set_engine(self, engine, options: RefineOptions | None = None) -> None:
        """Engine by registry name (app.core.refine.REFINERS), or a Refiner instance (tests)."""
        self._refiner = resolve_refiner(engine)
        self.engine = engine if isinstance(engine, str) else self._refiner.name
        if options is not None:
            self.options = options

    def set_overwrite(self, policy: str) -> None:
        """Which other classes an edit may take over: "lower" (default), "none" or "all"."""
        self.overwrite = check_policy(policy)

    def set_active_value(self, value: int) -> None:
        if not (1 <= int(value) <= 255):
            raise SessionError(f"the label value to edit must be 1–255, got {value}.")
        self.active_value = int(value)

    # ------------------------------------------------------------------ clicks and scribbles
    def prepare_click(self, axis: int, index: int, point: Sequence[float], foreground: bool = True) -> ClickPlan:
        (rc,) = check_inside(self.volume.shape, axis, index, [point], "click")
        seed = Seed(axis, int(index), bool(foreground), "click", (plane_to_voxel(axis, index, rc),))
        return build_click_plan(self, seed)

    def prepare_scribble(self, axis: int, index: int, points: Sequence[Sequence[float]],
                         foreground: bool = True) -> ClickPlan:
        pts = check_inside(self.volume.shape, axis, index, points, "scribble")
        seed = Seed(axis, int(index), bool(foreground), "scribble",
                    tuple(plane_to_voxel(axis, index, p) for p in pts))
        return build_click_plan(self, seed)

    def replan(self, plan: ClickPlan) -> ClickPlan:
        """The same interaction planned again on the current state (after apply() returned None)."""
        return build_click_plan(self, plan.seed)

    def click(self, axis: int, index: int, point: Sequence[float], foreground: bool = True) -> ActionRecord:
        plan = self.prepare_click(axis, index, point, foreground)
        return self.apply(plan, plan.compute())

    def scribble(self, axis: int, index: int, points, foreground: bool = True) -> ActionRecord:
        plan = self.prepare_scribble(axis, index, points, foreground)
        return self.apply(plan, plan.compute())

    def apply(self, plan: ClickPlan | VolumePlan, result) -> ActionRecord | None:
        """Apply a computed result on the owning thread; None (nothing changed) if it is stale."""
        with self._lock:
            if self.closed or plan.base_version != self.version:
                return None
            if isinstance(plan, VolumePlan):
                return self._apply_volume(plan, result)
            return self._apply_click(plan, result)

    def _apply_click(self, plan: ClickPlan, result) -> ActionRecord:
        seed, axis, index = plan.seed, plan.seed.axis, plan.seed.index
        h, w = plane_shape(self.label.shape, axis)
        mask = np.asarray(result.mask)
        r0, r1, c0, c1 = (int(v) for v in result.region)
        if mask.shape != (h, w) or not (0 <= r0 <= r1 <= h and 0 <= c0 <= c1 <= w):
            raise SessionError(f"the {plan.engine} engine returned a mask {mask.shape} / region "
                               f"{result.region} that does not fit the {h}x{w} slice.")
        slices = box_of_plane(axis, index, (r0, r1, c0, c1))
        old = self.label[slices]
        new = merge(old, mask[r0:r1, c0:c1].reshape(old.shape), plan.value, plan.overwrite)
        key = (axis, index)
        seeds = (SeedChange(key, self.seeds.on_slice(*key), self.seeds.on_slice(*key) + (seed,)),)
        details = {"axis": axis, "slice": index, "fg": seed.foreground,
                   "points": [list(p) for p in seed.points], "engine": plan.engine,
                   "options": asdict(plan.options), "compute_ms": round(result.seconds * 1e3, 3),
                   "latency_ms": round((time.perf_counter() - plan.created) * 1e3, 3)}
        return self._commit(seed.kind, old, new, slices, seeds, details)

    # ------------------------------------------------------------------ other actions
    def brush(self, axis: int, index: int, points: Sequence[Sequence[float]], radius_px: float,
              erase: bool = False) -> ActionRecord | None:
        """Paint (or erase) the active value along a stroke; None if it changed nothing."""
        start = time.perf_counter()
        check_axis(axis)
        if not (0 <= int(index) < self.label.shape[axis]):
            check_inside(self.label.shape, axis, index, [(0, 0)], "brush stroke")
        if not np.isfinite(radius_px) or not (0 <= radius_px <= MAX_BRUSH_RADIUS_PX):
            raise SessionError(f"the brush radius must be 0–{MAX_BRUSH_RADIUS_PX} pixels, got {radius_px}.")
        h, w = plane_shape(self.label.shape, axis)
        pts = np.asarray(points, dtype=float).reshape(-1, 2) if len(points) else np.zeros((0, 2))
        if len(pts) == 0 or not np.isfinite(pts).all() or (np.abs(pts) > 2 * max(h, w) + radius_px).any():
            raise SessionError("a brush stroke needs finite points on or near the slice.")
        pixels = scribble_pixels([tuple(p) for p in pts])
        paint = disks((h, w), pixels, (float(radius_px), float(radius_px)))
        if not paint.any():
            return None
        rows, cols = np.flatnonzero(paint.any(axis=1)), np.flatnonzero(paint.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        slices = box_of_plane(axis, int(index), (r0, r1, c0, c1))
        old = self.label[slices]
        sel, v = paint[r0:r1, c0:c1].reshape(old.shape), self.active_value
        mask = ((old == v) & ~sel) if erase else (sel | (old == v))
        new = merge(old, mask, v, self.overwrite)
        if np.array_equal(old, new):
            return None
        details = {"axis": axis, "slice": int(index), "points": [list(map(float, p)) for p in pts],
                   "radius_px": float(radius_px), "erase": bool(erase),
                   "latency_ms": round((time.perf_counter() - start) * 1e3, 3)}
        return self._commit("brush", old, new, slices, (), details)

    def clear_seeds(self, axis: int, index: int) -> ActionRecord | None:
        """Forget the seeds of one slice (the label stays); None if it had none."""
        key = (check_axis(axis), int(index))
        before = self.seeds.on_slice(*key)
        if not before:
            return None
        empty = np.zeros((0, 0, 0), np.uint8)
        slices = (slice(0, 0),) * 3
        return self._commit("clear_seeds", empty, empty, slices, (SeedChange(key, before, ()),),
                            {"axis": key[0], "slice": key[1], "latency_ms": 0.0})

    def set_label(self, new_label: np.ndarray, kind: str = "proposal",
                  prior: np.ndarray | None = None) -> ActionRecord | None:
        """Replace the whole label (a new network proposal, a loaded file); one undoable step.

        `prior` (optional, the volume's shape, values in [0, 1]): the network's foreground prior
        that later clicks and propagations use; it replaces the session's prior, quantised once to
        1/255 steps (as the log stores it, one byte per voxel: a 128x256x256 prior is then a few MB
        and quick to compress on the GUI thread) so a replay sees the same values. The engines
        clip priors to [0.02, 0.98] anyway, so the steps do not matter to them. The prior is the network's
        belief, not an edit: undo/redo restore the label only and keep the prior. With a prior the
        action is applied and logged even if the label does not change (a re-run of Segment with
        another model); it then adds no undo step. None: nothing changed (label equal, no prior).
        """
        start = time.perf_counter()
        new = as_label(new_label, self.label.shape, "new label")
        codes = None if prior is None else self._prior_codes(prior)
        slices = (slice(None),) * 3
        details = {"source": str(kind), "latency_ms": 0.0}
        if codes is not None:
            from app.core.interaction_log import array_sha1

            details["prior_sha1"] = array_sha1(codes)
        with self._lock:
            self._check_open()
            if codes is not None:
                # Before the commit: the log line written there stores it (as these byte codes).
                self.prior = _read_only(prior_from_codes(codes))
                self._prior_codes_to_log = codes
            try:
                record = self._commit("set_label", self.label, new, slices, (), details, timing_start=start)
                if record is None and codes is not None:
                    details["latency_ms"] = round((time.perf_counter() - start) * 1e3, 3)
                    record = self._finish("set_label", None, False, details, None)
            finally:
                self._prior_codes_to_log = None
            return record

    def _prior_codes(self, prior) -> np.ndarray:
        prior = np.asarray(prior)
        if prior.shape != self.volume.shape:
            raise InputError(f"the prior has shape {prior.shape}, the image {self.volume.shape} (z, y, x).")
        if prior.dtype.kind not in "biuf":
            raise InputError(f"the prior must hold numbers in [0, 1], not {prior.dtype}.")
        if prior.size and not (np.isfinite(prior).all() and prior.min() >= 0 and prior.max() <= 1):
            raise InputError("the prior must be a foreground probability: finite values in [0, 1].")
        return np.ascontiguousarray(np.rint(np.asarray(prior, np.float32) * 255.0).astype(np.uint8))

    def prepare_propagation(self, axis: int, index: int, **options) -> VolumePlan:
        from app.core.session_plans import build_propagation_plan

        return build_propagation_plan(self, check_axis(axis), int(index), options)

    def propagate(self, axis: int, index: int, cancel=None, on_progress=None, **options) -> ActionRecord | None:
        """3D propagation from one slice, synchronously (the GUI runs plan.job() on a worker)."""
        from app.core.jobs import run_job

        plan = self.prepare_propagation(axis, index, **options)
        return self.apply(plan, run_job(plan.job(cancel), on_progress))

    def _apply_volume(self, plan: VolumePlan, result) -> ActionRecord | None:
        if result.mask.size == 0:
            return None
        slices = box_slices(result.box)
        old = self.label[slices]
        if result.mask.shape != old.shape:
            raise SessionError(f"the {plan.kind} result {result.mask.shape} does not fit its box {result.box}.")
        new = merge(old, result.mask, plan.value, plan.overwrite)
        details = dict(plan.details, latency_ms=round((time.perf_counter() - plan.created) * 1e3, 3),
                       compute_ms=round(result.seconds * 1e3, 3))
        return self._commit(plan.kind, old, new, slices, (), details)

    # ------------------------------------------------------------------ undo / redo
    def undo(self) -> ActionRecord | None:
        with self._lock:
            self._check_open()
            edit = self.history.pop_undo()
            return None if edit is None else self._replay_edit(edit, "before", "undo")

    def redo(self) -> ActionRecord | None:
        with self._lock:
            self._check_open()
            edit = self.history.pop_redo()
            return None if edit is None else self._replay_edit(edit, "after", "redo")

    def _replay_edit(self, edit: Edit, which: str, kind: str) -> ActionRecord:
        start = time.perf_counter()
        old_block = None
        if edit.box is not None:
            slices = box_slices(edit.box)
            old_block = self.label[slices].copy()
            self.label[slices] = edit.block(which)
            self._label_changed(edit.box, old_block)
        for change in edit.seeds:
            self.seeds.set_slice(change.key, change.before if which == "before" else change.after)
        details = {"of": edit.kind, "latency_ms": round((time.perf_counter() - start) * 1e3, 3)}
        return self._finish(kind, edit.box, bool(edit.seeds), details, None)

    # ------------------------------------------------------------------ bookkeeping
    def _commit(self, kind, old_block, new_block, slices, seed_changes, details, timing_start=None):
        with self._lock:
            self._check_open()
            origin = tuple(s.indices(n)[0] for s, n in zip(slices, self.label.shape))
            edit = make_edit(kind, old_block, new_block, origin, tuple(seed_changes))
            if edit.box is None and not edit.seeds:
                return None
            if edit.box is not None:
                changed = box_slices(edit.box)
                before = edit.block("before")
                self.label[changed] = edit.block("after")
                self._label_changed(edit.box, before)
            for change in edit.seeds:
                self.seeds.set_slice(change.key, change.after)
            edit = self.history.push(edit)
            if timing_start is not None:
                details["latency_ms"] = round((time.perf_counter() - timing_start) * 1e3, 3)
            return self._finish(kind, edit.box, bool(edit.seeds), details, edit)

    def _label_changed(self, box, before_block) -> None:
        slices = box_slices(box)
        self._digest.update(box[0], box[1])
        if self._dice is not None:
            self._dice.update(slices, before_block, self.label[slices])

    def _check_open(self) -> None:
        if self.closed:
            raise SessionError("this annotation session is closed; open the case again to edit it.")

    def _finish(self, kind, box, seeds_changed, details, edit) -> ActionRecord:
        self.version += 1
        self.step += 1
        entry = {"type": "action", "step": self.step, "kind": kind, "value": self.active_value,
                 "overwrite": self.overwrite,
                 "t": round(self.elapsed(), 3), **details,
                 "box": list(box) if box is not None else None, "checksum": self.checksum}
        dice = self.dice()
        if dice is not None:
            entry["dice"] = dice
        if self.log is not None:
            from app.core.session_files import log_action

            log_action(self, entry, edit)
        if self.autosave is not None:
            self.autosave.notify()
        event = SessionEvent(kind, tuple(box) if box is not None else None, seeds_changed, self.version)
        for callback in list(self._listeners):
            callback(event)
        return ActionRecord(self.step, kind, tuple(box) if box is not None else None, entry)

    # ------------------------------------------------------------------ saving and closing
    def save(self, path: str | Path) -> Path:
        """Write the label on the image grid atomically; the autosave of this state is consumed."""
        from app.core.volume_io import write_label

        with self._lock:
            label = self.label.copy()
            step = self.step
        written = write_label(label, self.volume, path)
        if self.log is not None:
            from app.core.session_files import log_save

            log_save(self, written, step)
        if self.autosave is not None:
            self.autosave.mark_saved(step)
        return written

    def close(self) -> None:
        """Finish pending autosave writes and close the log (the autosave stays recoverable)."""
        self.closed = True
        if self.autosave is not None:
            self.autosave.close()
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> "AnnotationSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
