"""What a session writes next to its interaction log: header, sidecars, per-action lines, blobs."""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from app.core.interaction_log import (LOG_FORMAT, SEGLOOP_VERSION, LogWriter, array_sha1, git_commit,
                                      image_fingerprint, now_iso, save_arrays, sidecar)


def blob_path(log_path: Path, step: int) -> Path:
    return sidecar(log_path, ".blobs") / f"step-{step:06d}.npz"


def make_header(session, log_path: Path) -> dict:
    volume = session.volume
    image_path = Path(volume.path).resolve() if volume.path else None
    stat = image_path.stat() if image_path is not None and image_path.is_file() else None
    initial = None
    if session.label.any():
        from app.core.volume_io import write_label

        initial = write_label(session.label, volume, sidecar(log_path, ".initial.nii.gz")).name
    prior = None
    if session.prior is not None:
        prior_path = sidecar(log_path, ".prior.npz")
        save_arrays(prior_path, prior=session.prior)
        prior = prior_path.name
    return {
        "format": LOG_FORMAT, "segloop_version": SEGLOOP_VERSION, "git_commit": git_commit(),
        "created": now_iso(), "image": str(image_path) if image_path else None,
        "image_sha256": image_fingerprint(volume.array, volume.spacing),
        "image_size": stat.st_size if stat else None, "image_mtime": stat.st_mtime if stat else None,
        "shape": list(volume.shape), "spacing_xyz": list(volume.spacing),
        "initial_label": initial, "initial_checksum": session.checksum,
        "initial_kind": session.label_kind,
        "prior": prior, "prior_sha1": array_sha1(session.prior) if session.prior is not None else None,
        "reference": session.reference is not None,
        "engine": session.engine, "options": asdict(session.options),
        "active_value": session.active_value, "overwrite": session.overwrite, "history_bytes": session.history.cap_bytes,
    }


def start_log(session, log_path: Path) -> LogWriter:
    """Sidecars first, then the header: a header never names a file that is not there yet."""
    log_path = Path(log_path)
    if log_path.exists() and log_path.stat().st_size > 0:
        return LogWriter(log_path, header={})  # raises the clear 'already exists' error
    return LogWriter(log_path, header=make_header(session, log_path))


def log_action(session, entry: dict, edit) -> None:
    log = session.log
    if entry["kind"] == "set_label":
        arrays = {}
        if edit is not None and edit.box is not None:
            arrays.update(box=np.asarray(edit.box, np.int64), block=edit.block("after"))
        if entry.get("prior_sha1"):
            # The byte codes set_label quantised the session's prior to: the exact values, 1 byte each.
            arrays["prior"] = session._prior_codes_to_log
        if arrays:
            path = blob_path(log.path, entry["step"])
            save_arrays(path, **arrays)
            entry["blob"] = os.path.relpath(path, log.path.parent)
    log.write(entry)
    session.last_log_write_ms = log.last_write_ms


def log_save(session, written: Path, step: int) -> None:
    session.log.write({"type": "save", "after_step": step, "path": str(Path(written).resolve()),
                       "t": round(session.elapsed(), 3), "checksum": session.checksum})
