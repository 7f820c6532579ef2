"""3D propagation as a session action: app/core/propagation.py seen from any of the three axes.

propagation.py walks along z. For a coronal (axis 1) or sagittal (axis 2) start slice the volume
is viewed transposed so that axis comes first, with planes in the session's (row, column) order:
(y, z, x) and (x, z, y). Slices holding seeds on that axis are locked (the user corrected them),
unless the caller passes `locked` itself. The session's network prior (if any, read-only) is held at plan
time and tells the walk where the object ends. Only the active label value (its object under the
overwrite policy) is propagated; the result is merged with app/core/label_values.py's rule.
"""
from __future__ import annotations

import time
from dataclasses import asdict, fields

import numpy as np

from app.core.label_values import object_mask
from app.core.seeds import AXIS_NAMES, check_inside, plane_view
from app.core.session_plans import VolumeResult

_ORDER = {0: (0, 1, 2), 1: (1, 0, 2), 2: (2, 0, 1)}


def _spacing_along(spacing_xyz, axis):
    sx, sy, sz = (float(s) for s in spacing_xyz)
    zyx = (sz, sy, sx)
    return tuple(zyx[a] for a in _ORDER[axis])


def propagation_job_factory(session, axis: int, index: int, options: dict):
    from app.core.session import SessionError
    from app.core.propagation import PropagationParams, propagate_job

    check_inside(session.label.shape, axis, index, [(0, 0)], "propagation start")
    options = dict(options)
    locked = options.pop("locked", None)
    known = {f.name for f in fields(PropagationParams)}
    unknown = set(options) - known
    if unknown:
        raise SessionError(f"unknown propagation options: {', '.join(sorted(unknown))}.")
    params = PropagationParams(**options)
    value = session.active_value
    if not object_mask(plane_view(session.label, axis, index), value, session.overwrite).any():
        raise SessionError(f"nothing to propagate: {AXIS_NAMES[axis]} slice {index} holds no voxel of "
                           f"label {value}.")
    if locked is None:
        locked = sorted({s.index for s in session.seeds.all() if s.axis == axis and s.index != index})
    locked = sorted(int(i) for i in locked)
    order = _ORDER[axis]
    image = np.ascontiguousarray(np.transpose(session.volume.array, order))
    mask = np.ascontiguousarray(np.transpose(object_mask(session.label, value, session.overwrite), order))
    # A view, no copy: the session's prior is read-only and set_label replaces it rather than
    # writing into it, so the worker's job keeps the prior it was planned with.
    prior = None if session.prior is None else np.transpose(session.prior, order)
    spacing = _spacing_along(session.volume.spacing, axis)
    shape = session.label.shape

    def make_job(cancel=None):
        start = time.perf_counter()
        result = yield from propagate_job(image, mask, index, spacing, frozenset(locked), params, cancel,
                                          prior=prior)
        box = [0, shape[0], 0, shape[1], 0, shape[2]]
        if not result.changed_slices:
            box[2 * axis], box[2 * axis + 1] = index, index
            return VolumeResult(tuple(box), np.zeros((0, 0, 0), np.uint8), time.perf_counter() - start)
        lo, hi = min(result.changed_slices), max(result.changed_slices) + 1
        box[2 * axis], box[2 * axis + 1] = lo, hi
        # Back to (z, y, x): the 0/1 mask of the active value inside the box.
        block = np.ascontiguousarray(np.transpose(result.label[lo:hi], np.argsort(order)))
        return VolumeResult(tuple(box), block, time.perf_counter() - start)

    details = {"axis": axis, "slice": index,
               "options": dict(asdict(params), locked=locked)}
    return make_job, details
