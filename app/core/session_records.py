"""The small types of an annotation session: its records, events, errors and input checks
(kept apart from app/core/session.py so the session class stays readable)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.errors import InputError, SegLoopError


def prior_from_codes(codes: np.ndarray) -> np.ndarray:
    """A prior stored as bytes (round(255 p)) back to float32 probabilities."""
    return np.asarray(codes, np.float32) / np.float32(255.0)


def _read_only(array: np.ndarray) -> np.ndarray:
    """The session's prior is replaced, never written: plans and jobs on worker threads may then
    hold views of it instead of copying a whole volume on the GUI thread."""
    array.flags.writeable = False
    return array


class SessionError(SegLoopError):
    """An action the session cannot take as asked (bad label, unknown engine, bad brush...)."""


@dataclass(frozen=True)
class ActionRecord:
    """What one applied action did; `entry` is the line written to the interaction log."""
    step: int
    kind: str
    box: tuple[int, ...] | None      # (z0, z1, y0, y1, x0, x1) of changed voxels, None if none
    entry: dict


@dataclass(frozen=True)
class SessionEvent:
    kind: str
    box: tuple[int, ...] | None      # changed label voxels (None: no label change)
    seeds_changed: bool
    version: int


def as_label(array, shape, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.shape != tuple(shape):
        raise InputError(f"the {what} has shape {array.shape}, the image {tuple(shape)} (z, y, x).")
    if array.dtype != np.uint8:
        if array.dtype.kind not in "biuf" or (array.size and (array.min() < 0 or array.max() > 255)) \
                or (array.dtype.kind == "f" and not np.array_equal(array, np.round(array))):
            raise InputError(f"the {what} must hold whole class numbers 0–255.")
    return np.array(array, dtype=np.uint8, copy=True, order="C")
