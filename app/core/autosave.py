"""Autosave and crash recovery: nothing a clinician did is lost to a crash or a kill -9.

Two layers, both crash-safe:
1. The interaction log (app/core/interaction_log.py): every action is one fsync'd line before the
   call returns (~5 ms). It alone can rebuild the session: initial label + replay of every step.
2. A snapshot, written by a background thread `idle_s` (0.3 s) after the last edit and at most
   `max_delay_s` (1 s) after the first unsaved one (later only when a snapshot is so slow, ~0.3 s
   for a 300x512x512 label, that the writer would take more than a quarter of a core): the label
   (zlib), seeds, the undo/redo stacks (each edit written once to edits/<uid>.bin, referenced by
   id) and the step it holds. Recovery = snapshot + replay of
   the log's tail after it, so a long session does not re-run every click.

Layout per case: AUTOSAVE_ROOT/<case>-<hash of image path>/ with state.json (what and where),
snapshot.npz, edits/. Every file is written to a temp file then os.replace'd. A clean
`session.save()` records the saved step; a case is recoverable while its log has actions after it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from app.core.case_lock import CaseLock
from app.core.errors import SegLoopError
from app.core.interaction_log import (LogError, LogWriter, atomic_write_bytes, load_arrays, now_iso,
                                      read_log, save_arrays)
from app.core.label_digest import label_checksum
from app.core.seeds import SeedStore
from app.core.undo import History, edit_from_bytes, edit_to_bytes
from app.core.volume import case_name

STATE_FORMAT = 1


class RecoveryError(SegLoopError):
    """Unsaved work that cannot be restored as it was."""


def case_key(image_path) -> str:
    path = str(Path(image_path).resolve()) if image_path else "untitled"
    return f"{case_name(path)}-{hashlib.sha1(path.encode('utf-8')).hexdigest()[:10]}"


def new_log_path(autosave_root, image_path) -> Path:
    """A log name no earlier session used: the time stamp is only to the second, and a case can be
    closed and reopened within one."""
    folder = Path(autosave_root) / case_key(image_path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    n = 0
    while True:
        path = folder / f"log-{stamp}-{os.getpid()}-{n}.jsonl"
        if not path.exists():
            return path
        n += 1


def read_state(folder: Path) -> dict:
    try:
        return json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RecoveryError(f"the autosave in {folder} is unreadable ({error}).") from None


def write_state(folder: Path, state: dict) -> None:
    atomic_write_bytes(folder / "state.json", json.dumps(state, indent=1).encode("utf-8"))


class AutosaveWriter:
    """Debounced background snapshots of one session. `last_write_ms`: cost of the newest one."""

    def __init__(self, session, root: Path, idle_s: float = 0.3, max_delay_s: float = 1.0,
                 resume: bool = False, lock: CaseLock | None = None):
        self.session = session
        self.folder = Path(root) / case_key(session.volume.path)
        # before touching any file: CaseInUseError if another process annotates this case
        self.lock = lock if lock is not None else CaseLock(self.folder)
        self.idle_s, self.max_delay_s = idle_s, max_delay_s
        self.last_write_ms = 0.0
        self.writes = 0
        self.error: Exception | None = None
        self._written_edits: dict[int, str] = {}
        self._cond = threading.Condition()
        self._dirty_since: float | None = None
        self._last_notify = 0.0
        self._writing = False
        self._closing = False
        self._last_end = 0.0
        self.folder.mkdir(parents=True, exist_ok=True)
        if resume:
            self.state = read_state(self.folder)
            self._written_edits = {int(p.stem): p.name for p in (self.folder / "edits").glob("*.bin")}
        else:
            self._start_fresh()
        self._thread = threading.Thread(target=self._run, name="segloop-autosave", daemon=True)
        self._thread.start()

    def _start_fresh(self) -> None:
        for stale in [self.folder / "snapshot.npz", *(self.folder / "edits").glob("*.bin")]:
            stale.unlink(missing_ok=True)
        volume, log = self.session.volume, self.session.log
        self.state = {"format": STATE_FORMAT, "image": str(Path(volume.path).resolve()) if volume.path else None,
                      "log": str(log.path.resolve()) if log is not None else None,
                      "created": now_iso(), "saved_step": None, "snapshot_step": None, "snapshot_at": None}
        write_state(self.folder, self.state)

    # ---------------------------------------------------------------- scheduling
    def notify(self) -> None:
        """An action was applied (called by the session on its thread; cheap)."""
        with self._cond:
            now = time.monotonic()
            if self._dirty_since is None:
                self._dirty_since = now
            self._last_notify = now
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._dirty_since is None and not self._closing:
                    self._cond.wait()
                if self._dirty_since is None and self._closing:
                    return
                while not self._closing:
                    deadline = min(self._last_notify + self.idle_s, self._dirty_since + self.max_delay_s)
                    # On a big volume a snapshot costs ~0.3 s: keep the writer under ~25% of a core.
                    # Safe because the log already holds every action durably.
                    deadline = max(deadline, self._last_end + 3 * self.last_write_ms / 1e3)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                self._dirty_since = None
                self._writing = True
            try:
                self.write_snapshot()
            except Exception as error:  # noqa: BLE001 - kept for the GUI to show; the log still holds the work
                self.error = error
            finally:
                with self._cond:
                    self._last_end = time.monotonic()
                    self._writing = False
                    self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Write pending changes now and wait for them; False if that took longer than timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            if self._dirty_since is not None:
                self._dirty_since = self._last_notify = -1e9  # due at once
                self._cond.notify_all()
            while self._dirty_since is not None or self._writing:
                if not self._cond.wait(max(0.0, end - time.monotonic())) and time.monotonic() >= end:
                    return False
        return True

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=30)
        self.lock.release()

    # ---------------------------------------------------------------- writing
    def write_snapshot(self) -> None:
        start = time.perf_counter()
        s = self.session
        with s._lock:  # a consistent copy; the slow part (compressing, writing) happens outside
            label = s.label.copy()
            meta = {"step": s.step, "checksum": s.checksum, "seeds": s.seeds.to_json(),
                    "active_value": s.active_value, "overwrite": s.overwrite, "engine": s.engine, "options": asdict(s.options),
                    "t": round(s.elapsed(), 3), "history_cap": s.history.cap_bytes,
                    "history_dropped": s.history.dropped, "next_uid": s.history.next_uid}
            undo, redo = list(s.history.undo_stack), list(s.history.redo_stack)
        edits_dir = self.folder / "edits"
        for edit in undo + redo:
            if edit.uid not in self._written_edits:
                name = f"{edit.uid:08d}.bin"
                atomic_write_bytes(edits_dir / name, edit_to_bytes(edit))
                self._written_edits[edit.uid] = name
        meta["undo"] = [e.uid for e in undo]
        meta["redo"] = [e.uid for e in redo]
        save_arrays(self.folder / "snapshot.npz", label=label, meta=np.frombuffer(
            json.dumps(meta).encode("utf-8"), np.uint8))
        self.state.update(snapshot_step=meta["step"], snapshot_at=now_iso())
        write_state(self.folder, self.state)
        live = set(meta["undo"]) | set(meta["redo"])
        for uid in [u for u in self._written_edits if u not in live]:
            (edits_dir / self._written_edits.pop(uid)).unlink(missing_ok=True)
        self.last_write_ms = (time.perf_counter() - start) * 1e3
        self.writes += 1

    def mark_saved(self, step: int) -> None:
        """A clean save of the label at `step`: the autosave up to there is consumed."""
        with self._cond:
            self.state["saved_step"] = int(step)
            write_state(self.folder, self.state)


@dataclass(frozen=True)
class Recoverable:
    image_path: Path | None
    saved_at: datetime            # when the newest unsaved action was made
    n_actions: int                # actions in the log (unsaved ones: n_actions - saved_step)
    unsaved_actions: int
    folder: Path
    log_path: Path | None


def find_recoverable(autosave_root) -> list[Recoverable]:
    """Cases whose log holds actions after their last clean save, newest first."""
    root = Path(autosave_root)
    found = []
    for folder in sorted(p for p in root.glob("*") if (p / "state.json").exists()) if root.exists() else []:
        try:
            state = read_state(folder)
            log_path = Path(state["log"]) if state.get("log") else None
            if log_path is None or not log_path.exists():
                continue
            if _written_by_another_live_instance(log_path):
                continue
            _header, actions = read_log(log_path)
        except (RecoveryError, LogError, KeyError):
            continue
        saved = state.get("saved_step") or 0
        if len(actions) <= saved:
            continue
        stamp = datetime.fromtimestamp(log_path.stat().st_mtime, timezone.utc)
        found.append(Recoverable(Path(state["image"]) if state.get("image") else None, stamp,
                                 len(actions), len(actions) - saved, folder, log_path))
    return sorted(found, key=lambda r: r.saved_at, reverse=True)


_LOG_PID = re.compile(r"^log-\d{8}-\d{6}-(\d+)")


def _written_by_another_live_instance(log_path: Path) -> bool:
    """A log whose writer (the pid in its name) is another SegLoop still running is live work,
    not a crash: offering it would let two windows write one log."""
    match = _LOG_PID.match(log_path.name)
    if not match or os.name != "posix":
        return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False  # no such process (or no /proc): the writer is gone
    # After a reboot the pid may belong to an unrelated program; only a Python process counts.
    return b"python" in cmdline


def discard(recoverable: Recoverable) -> None:
    """The user declined to restore: mark everything in the log as dealt with."""
    state = read_state(recoverable.folder)
    state["saved_step"] = recoverable.n_actions
    write_state(recoverable.folder, state)


def restore(recoverable: Recoverable, volume=None, reference=None, on_step=None):
    """The session as it was at the last logged action: label, seeds and undo history, exactly.

    Loads the snapshot (if it matches the log) and replays the log's tail after it; the restored
    session continues the same log and autosave folder. ReplayError/RecoveryError if it cannot.
    """
    from app.core.replay import open_log_session, replay

    if recoverable.log_path is None:
        raise RecoveryError(f"the autosave in {recoverable.folder} has no interaction log to restore from.")
    lock = CaseLock(recoverable.folder)       # first: refused at once if another window has the case
    try:
        session, header, actions = open_log_session(recoverable.log_path,
                                                    image=volume or recoverable.image_path,
                                                    reference=reference)
        start = _load_snapshot(session, recoverable.folder, header, actions, recoverable.log_path)
        replay(session, actions[start:], recoverable.log_path, on_step=on_step)
        if actions:
            session._t_offset = float(actions[-1].get("t", 0.0))
            session._opened = time.monotonic()
        session.log = LogWriter(recoverable.log_path)
        session.autosave = AutosaveWriter(session, recoverable.folder.parent, resume=True, lock=lock)
    except BaseException:
        lock.release()
        raise
    session.autosave.notify()
    return session


def _load_snapshot(session, folder: Path, header: dict, actions: list[dict], log_path: Path) -> int:
    """Put the snapshot into the session if it agrees with the log; returns the step it holds."""
    from app.core.replay import options_from, prior_at

    path = folder / "snapshot.npz"
    if not path.exists():
        return 0
    try:
        arrays = load_arrays(path)
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        step = int(meta["step"])
        expected = header["initial_checksum"] if step == 0 else (
            actions[step - 1]["checksum"] if step <= len(actions) else None)
        # A snapshot that disagrees with the log (or with itself) is ignored: the log is the truth.
        if expected is None or meta["checksum"] != expected or label_checksum(arrays["label"]) != expected:
            return 0
        edits = {}
        for uid in meta["undo"] + meta["redo"]:
            edits[uid] = edit_from_bytes((folder / "edits" / f"{uid:08d}.bin").read_bytes())
        # The prior is not in the snapshot: the log's newest set_label before it says which was in force.
        prior = prior_at(actions[:step], header, Path(log_path)) if step else session.prior
    except (LogError, OSError, KeyError, ValueError):
        return 0
    label = arrays["label"]
    session.label[...] = label
    session._digest.update(0, label.shape[0])
    if session._dice is not None:
        session._dice.reset(session.label)
    session.seeds = SeedStore.from_json(meta["seeds"])
    session.history = History(cap_bytes=int(meta["history_cap"]), dropped=int(meta["history_dropped"]),
                              next_uid=int(meta["next_uid"]))
    session.history.undo_stack = [edits[u] for u in meta["undo"]]
    session.history.redo_stack = [edits[u] for u in meta["redo"]]
    session.set_active_value(int(meta["active_value"]))
    session.set_overwrite(meta.get("overwrite", "lower"))
    session.set_engine(meta["engine"], options_from(meta["options"], "the autosave snapshot"))
    session.prior = prior
    session.step = step
    session.version += 1
    return step
