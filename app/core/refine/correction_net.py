"""`correction-net`: the click correction network (models/correction, seed 003 improved).

A box centred on the newest click goes to the network with the current mask and Gaussian maps of
every foreground/background click in it: 64x64 pixels, or, when the labelled object the click is on
does not fit, wider (up to the zoom the network was trained with and the widest refine window) and
shrunk to 64x64 (models/correction/inputs.zoom_side). Its sigmoid output, grown back to the box and
thresholded at 0.5, is the new label inside the box. Only changes connected to the newest
interaction are kept: a click edits the error it lands on, and whatever else the network would
redraw in the box stays as the user left it. A weights file may hold several networks
(an ensemble): their logits are averaged.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from app.core.refine.base import CheckedRequest, Refiner, RefineRequest, widest_side

_LOCK = threading.Lock()
_CACHE: dict[str, tuple] = {}


def weights_path() -> Path:
    from models.correction.checkpoint import DEFAULT_WEIGHTS

    return DEFAULT_WEIGHTS


def load_network(path=None):
    """(network, sidecar), loaded once per path (torch.load weights_only inside)."""
    path = str(path or weights_path())
    with _LOCK:
        if path not in _CACHE:
            import torch

            from models.correction.checkpoint import load_correction

            from app.core.errors import ModelFileError
            from models.errors import ModelFileError as ModelsModelFileError

            try:
                _CACHE[path] = load_correction(path)
            except ModelsModelFileError as error:     # models/ cannot raise app errors itself
                raise ModelFileError(f"The correction network cannot be used: {error}") from None
        return _CACHE[path]


def network_probability(checked: CheckedRequest, path=None, patch: int | None = None,
                        max_zoom: float | None = None, max_side: int | None = None):
    """(box clipped to the slice, probability patch for that box, full unclipped box).

    path: a weights file (default: the shipped one), or a network already in memory (iterative
    training runs sessions with the weights it is training; the caller puts it in eval mode).
    patch: the input side in pixels; None: the size the network was trained at (its input_size).
    max_zoom: the network may see up to max_zoom x patch slice pixels around the click, shrunk to
    its input (inputs.zoom_side) and its output grown back; None: the zoom it was trained with.
    max_side: never wider than this (the largest window the refine options allow)."""
    import torch

    from models.correction.inputs import (crop, grow, normalise_slice, patch_box, slice_range,
                                          zoom_side, zoomed_inputs)

    network = path if isinstance(path, torch.nn.Module) else load_network(path)[0]
    size = int(patch or network.input_size)
    zoom = float(network.max_zoom if max_zoom is None else max_zoom)
    shape = checked.mask.shape
    side = zoom_side(checked.mask, checked.newest, size, zoom)
    if max_side is not None:
        side = max(size, min(side, int(max_side)))
    box = patch_box(shape, checked.newest, side)
    # Normalise only the box (with the whole slice's range): the slice may be 512x512.
    y0, y1, x0, x1 = box
    img_box = normalise_slice(crop(checked.image, box, 0.0), slice_range(checked.image))
    inside = np.zeros((side, side), np.float32)               # outside the slice: 0, as trained
    inside[max(0, -y0):min(side, shape[0] - y0), max(0, -x0):min(side, shape[1] - x0)] = 1.0
    img_box *= inside
    img, rest = zoomed_inputs(img_box, crop(checked.mask, box, 0), checked.fg_points,
                              checked.bg_points, box, size)
    # One 64x64 patch: intra-op threads only contend (5 s vs 0.25 s per call measured on the
    # loaded 2-core machine), so run single-threaded and restore the caller's setting.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            logits = network(torch.from_numpy(img[None]), torch.from_numpy(rest[None]))[0, 0]
    finally:
        torch.set_num_threads(threads)
    prob = grow(torch.sigmoid(logits).numpy(), side)
    y0, y1, x0, x1 = box
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, shape[0]), max(x0, 0), min(x1, shape[1])
    return (cy0, cy1, cx0, cx1), prob[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0], box


def keep_connected_changes(current: np.ndarray, new: np.ndarray, points: np.ndarray,
                           reach_px: int = 2) -> np.ndarray:
    """`new` where it differs from `current` only in change regions touching the points."""
    changed = current != new
    labels, n = ndimage.label(changed)
    if n == 0:
        return new
    near = np.zeros(changed.shape, bool)
    near[points[:, 0], points[:, 1]] = True
    near = ndimage.binary_dilation(near, iterations=reach_px)
    keep = np.unique(labels[near & changed])
    mask = np.isin(labels, keep[keep > 0])
    return np.where(mask, new, current).astype(np.uint8)


class CorrectionNetRefiner(Refiner):
    name = "correction-net"

    def __init__(self, weights=None, local: bool = True, patch: int | None = None,
                 max_zoom: float | None = None):
        self.weights = weights
        self.local = local
        self.patch = patch            # None: the size the net was trained on
        self.max_zoom = max_zoom      # None: the zoom the net was trained with

    def _refine(self, request: RefineRequest, checked: CheckedRequest):
        t0 = time.perf_counter()
        box, prob, _ = network_probability(checked, self.weights, self.patch, self.max_zoom,
                                           widest_side(checked, request.options))
        y0, y1, x0, x1 = box
        current = checked.mask[y0:y1, x0:x1]
        new = (prob > 0.5).astype(np.uint8)
        if self.local:
            new = keep_connected_changes(current, new, checked.newest_points - np.array([y0, x0]))
        out = checked.mask.copy()
        out[y0:y1, x0:x1] = new
        return out, box, {"network": time.perf_counter() - t0}
