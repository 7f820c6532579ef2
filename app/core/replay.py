"""Re-run an interaction log from its initial label and check every step's label checksum.

Used by `python main.py replay` and by crash recovery (snapshot + the log's tail). Every check
that fails says which step, what it was and what differs, as a ReplayError.
"""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Callable

import numpy as np

from app.core.interaction_log import LogError, array_sha1, image_fingerprint, load_arrays, read_log
from app.core.label_digest import label_checksum
from app.core.refine.base import RefineOptions
from app.core.seeds import AXIS_NAMES, voxel_to_plane
from app.core.volume import Volume


class ReplayError(LogError):
    """A log that does not replay: another image, a missing file, or a step that diverges."""


def options_from(data: dict | None, where: str) -> RefineOptions:
    known = {f.name for f in fields(RefineOptions)}
    unknown = set(data or {}) - known
    if unknown:
        raise ReplayError(f"{where} uses engine options this SegLoop does not know: {', '.join(sorted(unknown))}.")
    return RefineOptions(**(data or {}))


def load_image_for(header: dict, log_path: Path, image: str | os.PathLike | Volume | None = None) -> Volume:
    from app.core.volume_io import read_volume

    if isinstance(image, Volume):
        volume = image
    else:
        path = image or header.get("image")
        if not path:
            raise ReplayError(f"{log_path.name} does not name its image; pass it with --image.")
        if not Path(path).exists():
            raise ReplayError(f"the image of {log_path.name}, {path}, does not exist; pass it with --image.")
        volume = read_volume(path)
    found = image_fingerprint(volume.array, volume.spacing)
    if found != header.get("image_sha256"):
        raise ReplayError(
            f"{volume.path or 'the image'} is not the image {log_path.name} was recorded on (its voxels or "
            f"spacing differ: sha256 {found[:12]}… instead of {str(header.get('image_sha256'))[:12]}…); "
            "a log replays only on its own image.")
    return volume


def initial_label_for(header: dict, log_path: Path, volume: Volume,
                      initial: str | os.PathLike | None = None) -> np.ndarray:
    from app.core.volume_io import read_label

    name = header.get("initial_label")
    if initial is None and name is None:
        label = np.zeros(volume.shape, np.uint8)
    else:
        path = Path(initial) if initial is not None else log_path.parent / name
        if not path.exists():
            raise ReplayError(f"the initial label of {log_path.name}, {path}, is missing; pass it with --initial.")
        label = read_label(path, volume).array
    if label_checksum(label) != header.get("initial_checksum"):
        raise ReplayError(f"the initial label given for {log_path.name} is not the one the session started from "
                          "(checksum differs).")
    return label


def prior_for(header: dict, log_path: Path) -> np.ndarray | None:
    name = header.get("prior")
    if not name:
        return None
    path = log_path.parent / name
    if not path.exists():
        raise ReplayError(f"the prior of {log_path.name}, {path.name}, is missing: clicks cannot be recomputed.")
    prior = load_arrays(path).get("prior")
    if prior is None or array_sha1(prior) != header.get("prior_sha1"):
        raise ReplayError(f"{path.name} is not the prior {log_path.name} was recorded with.")
    return prior


def open_log_session(log_path: str | os.PathLike, image=None, initial=None, reference=None):
    """(session at step 0 without a log of its own, header, actions) for replaying `log_path`."""
    from app.core.session import AnnotationSession

    log_path = Path(log_path)
    header, actions = read_log(log_path)
    volume = load_image_for(header, log_path, image)
    label = initial_label_for(header, log_path, volume, initial)
    session = AnnotationSession(
        volume, label, prior_for(header, log_path), reference, engine=header["engine"],
        options=options_from(header.get("options"), log_path.name),
        active_value=int(header.get("active_value", 1)),
        history_bytes=int(header.get("history_bytes", 256 << 20)),
        label_kind=header.get("initial_kind", "initial"), overwrite=header.get("overwrite", "lower"))
    return session, header, actions


def describe(entry: dict) -> str:
    kind = entry.get("kind")
    where = ""
    if "axis" in entry:
        where = f" on {AXIS_NAMES.get(entry['axis'], entry['axis'])} slice {entry.get('slice')}"
    if entry.get("points") and kind in ("click", "scribble"):
        where += f" at voxel {tuple(entry['points'][0])}"
    return f"step {entry.get('step')} ({kind}{where})"


def set_label_blob(entry: dict, log_dir: Path) -> dict[str, np.ndarray]:
    """The arrays a set_label line stored: its label box and block, and/or the new prior."""
    if not entry.get("blob"):
        raise ReplayError(f"{describe(entry)} has no stored label to replay.")
    path = log_dir / entry["blob"]
    if not path.exists():
        raise ReplayError(f"{describe(entry)}: its stored label {path} is missing.")
    data = load_arrays(path)
    if ("box" in data) != (entry.get("box") is not None):
        raise ReplayError(f"{describe(entry)}: its stored label {path.name} does not match the logged change.")
    return data


def prior_of(entry: dict, data: dict[str, np.ndarray]) -> np.ndarray | None:
    """The prior a set_label line set (checked against its sha1), None if it set none."""
    expected = entry.get("prior_sha1")
    prior = data.get("prior")
    if expected is None and prior is None:
        return None
    if prior is None or expected is None or prior.dtype != np.uint8 or array_sha1(prior) != expected:
        raise ReplayError(f"{describe(entry)}: the prior stored in {entry.get('blob')} is not the one the log "
                          "recorded (missing, or its sha1 differs); later clicks cannot be recomputed.")
    from app.core.session import prior_from_codes

    return prior_from_codes(prior)


def prior_at(actions: list[dict], header: dict, log_path: Path) -> np.ndarray | None:
    """The prior in force after `actions` (the newest set_label that set one, else the header's)."""
    for entry in reversed(actions):
        if entry.get("kind") == "set_label" and entry.get("prior_sha1"):
            return prior_of(entry, set_label_blob(entry, log_path.parent))
    return prior_for(header, log_path)


def replay_action(session, entry: dict, log_dir: Path):
    """Do one logged action on the session; returns its ActionRecord (None if it did nothing)."""
    kind = entry["kind"]
    session.set_active_value(int(entry.get("value", session.active_value)))
    session.set_overwrite(entry.get("overwrite", "lower"))
    if kind in ("click", "scribble"):
        options = options_from(entry.get("options"), describe(entry))
        if entry.get("engine") != session.engine or options != session.options:
            session.set_engine(entry["engine"], options)
        axis, index = int(entry["axis"]), int(entry["slice"])
        plane = [voxel_to_plane(axis, p)[1] for p in entry["points"]]
        if kind == "click":
            return session.click(axis, index, plane[0], bool(entry["fg"]))
        return session.scribble(axis, index, plane, bool(entry["fg"]))
    if kind == "brush":
        return session.brush(int(entry["axis"]), int(entry["slice"]), entry["points"],
                             float(entry["radius_px"]), bool(entry["erase"]))
    if kind == "clear_seeds":
        return session.clear_seeds(int(entry["axis"]), int(entry["slice"]))
    if kind == "set_label":
        data = set_label_blob(entry, log_dir)
        new = session.label.copy()
        if "box" in data:
            z0, z1, y0, y1, x0, x1 = (int(v) for v in data["box"])
            new[z0:z1, y0:y1, x0:x1] = data["block"]
        return session.set_label(new, entry.get("source", "proposal"), prior=prior_of(entry, data))
    if kind == "propagate":
        return session.propagate(int(entry["axis"]), int(entry["slice"]), **entry.get("options", {}))
    if kind == "undo":
        return session.undo()
    if kind == "redo":
        return session.redo()
    raise ReplayError(f"{describe(entry)}: unknown action kind {kind!r} (log from a newer SegLoop?).")


def replay(session, actions: list[dict], log_path: str | os.PathLike, verify: bool = True,
           on_step: Callable[[dict], None] | None = None) -> None:
    """Apply `actions` in order; ReplayError at the first step whose label differs from the log's."""
    log_dir = Path(log_path).parent
    for entry in actions:
        if int(entry["step"]) != session.step + 1:
            raise ReplayError(f"{describe(entry)} does not follow step {session.step}; the log is out of order.")
        record = replay_action(session, entry, log_dir)
        if record is None:
            raise ReplayError(f"{describe(entry)} changed nothing on replay, but it was applied when recorded.")
        if verify and session.checksum != entry.get("checksum"):
            raise ReplayError(
                f"{describe(entry)} diverges: the label after it differs from the recorded one "
                f"(checksum {session.checksum[:12]}… vs {str(entry.get('checksum'))[:12]}…). The engine "
                f"'{entry.get('engine', session.engine)}' or its options behave differently from the SegLoop that "
                "wrote the log.")
        if on_step is not None:
            on_step(entry)
