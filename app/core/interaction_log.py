"""The per-case interaction log: one JSON line per action, written so a session can be replayed.

Layout for a log `NAME.jsonl`:
- line 1, the header: {"type": "header", image path and fingerprint, initial label checksum, engine,
  SegLoop version and git commit, ...};
- then one {"type": "action", "step": n, "kind": ..., "checksum": ...} line per applied action;
- `NAME.initial.nii.gz`: the label the session started from (absent when it was empty);
- `NAME.prior.npz`: the foreground prior the engines saw (absent when there was none);
- `NAME.blobs/step-NNNNNN.npz`: the content of a `set_label` (a label that came from outside:
  its changed box and block) and the new prior it set, as bytes round(255 p) (its line has `prior_sha1`).

Every line is flushed and fsync'd before the call returns (~5 ms on the development VM), so after
a crash the log holds every action that was applied; a half-written last line is ignored.
Sidecar files are written atomically before the line that refers to them.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tempfile
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from app.core.errors import SegLoopError

LOG_FORMAT = 1
SEGLOOP_VERSION = "0.1.0"
REPO_ROOT = Path(__file__).resolve().parents[2]


class LogError(SegLoopError):
    """An interaction log that cannot be read or does not fit what it is used with."""


def sidecar(log_path: str | os.PathLike, suffix: str) -> Path:
    """NAME.jsonl -> NAME<suffix> (e.g. '.initial.nii.gz', '.prior.npz', '.blobs')."""
    path = Path(log_path)
    stem = path.name[:-len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(stem + suffix)


def image_fingerprint(array: np.ndarray, spacing) -> str:
    """sha256 of the voxels and their spacing: what replay depends on, whatever the file format."""
    h = hashlib.sha256(f"{array.dtype.str} {array.shape} {tuple(float(s) for s in spacing)};".encode())
    h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return h.hexdigest()


def array_sha1(array: np.ndarray) -> str:
    h = hashlib.sha1(f"{array.dtype.str} {array.shape};".encode())
    h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, encoding="utf-8", timeout=5)
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Atomic .npz (zlib level 1 inside; np.savez_compressed's level 6 is 3x slower for labels)."""
    import io

    packed = {}
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        packed[name + "__z"] = np.frombuffer(zlib.compress(memoryview(array).cast("B"), 1), np.uint8)
        packed[name + "__meta"] = np.array(json.dumps([array.dtype.str, list(array.shape)]))
    buffer = io.BytesIO()
    np.savez(buffer, **packed)
    atomic_write_bytes(path, buffer.getvalue())


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {}
            for key in data.files:
                if key.endswith("__z"):
                    name = key[:-3]
                    dtype, shape = json.loads(str(data[name + "__meta"]))
                    raw = zlib.decompress(data[key].tobytes())
                    out[name] = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
            return out
    except (OSError, ValueError, KeyError, zlib.error) as error:
        raise LogError(f"{path.name} is damaged and cannot be read ({error}).") from None


class LogWriter:
    """Appends JSON lines durably. `last_write_ms` is the cost of the newest line (write+fsync)."""

    def __init__(self, path: str | os.PathLike, header: dict | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if header is not None:
            if self.path.exists() and self.path.stat().st_size > 0:
                raise LogError(f"the interaction log {self.path} already exists; a new session needs "
                               "a new log (restore() continues an existing one).")
            self._stream = open(self.path, "w", encoding="utf-8", newline="\n")
            self.write(dict(header, type="header"))
        else:
            _drop_partial_last_line(self.path)
            self._stream = open(self.path, "a", encoding="utf-8", newline="\n")
        self.last_write_ms = 0.0

    def write(self, entry: dict) -> None:
        start = time.perf_counter()
        try:
            self._stream.write(json.dumps(entry, separators=(",", ":")) + "\n")
            self._stream.flush()
            os.fsync(self._stream.fileno())
        except OSError as error:
            # The edit itself is already in memory; say plainly that it is not on disk yet.
            raise LogError(
                f"could not write the interaction log {self.path.name} ({error.strerror or error}): "
                "the last edit is on screen but not yet saved to disk. Free disk space or fix the "
                "folder's permissions, then save (Ctrl+S).") from None
        self.last_write_ms = (time.perf_counter() - start) * 1e3

    def close(self) -> None:
        if not self._stream.closed:
            self._stream.close()


def _drop_partial_last_line(path: Path) -> None:
    """A crash mid-write can leave a last line without its newline: cut it before appending."""
    with open(path, "rb+") as stream:
        data = stream.read()
        if data and not data.endswith(b"\n"):
            stream.truncate(data.rfind(b"\n") + 1)
            stream.flush()
            os.fsync(stream.fileno())


def read_log(path: str | os.PathLike) -> tuple[dict, list[dict]]:
    """(header, actions). A truncated or unreadable last line (a crash mid-write) is left out."""
    path = Path(path)
    if not path.exists():
        raise LogError(f"the interaction log {path} does not exist.")
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise LogError(f"{path.name} is not a SegLoop interaction log (not UTF-8 text).") from None
    complete, tail = lines[:-1], lines[-1]  # text after the last newline never finished writing
    entries = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            raise LogError(f"{path.name} line {number} is not valid JSON; the log is damaged.") from None
    del tail
    if not entries or entries[0].get("type") != "header":
        raise LogError(f"{path.name} is not a SegLoop interaction log (no header line).")
    header = entries[0]
    if int(header.get("format", 0)) > LOG_FORMAT:
        raise LogError(f"{path.name} was written by a newer SegLoop (log format {header.get('format')}).")
    actions = [e for e in entries[1:] if e.get("type") == "action"]
    for expected, entry in enumerate(actions, start=1):
        if entry.get("step") != expected:
            raise LogError(f"{path.name}: action {expected} is numbered {entry.get('step')}; the log is damaged.")
    return header, actions
