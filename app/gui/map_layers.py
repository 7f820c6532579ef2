"""Extra layers over the slice: the network's heat map and the reference label's outline.

Plain numpy (no Qt), like overlay.py, so what a layer item holds can be computed and checked
directly. The slice view calls these with the current slice of the layer's volume.
"""
from __future__ import annotations

import numpy as np

from app.gui.overlay import contour_mask

REFERENCE_COLOUR = (0, 230, 255)   # cyan: apart from every label colour used for values 1-2
HEAT_OPACITY = 0.45


def _heat_lut() -> np.ndarray:
    """(256, 3) uint8: purple -> magenta -> orange -> pale yellow, ordered in lightness like magma.
    It avoids cyan (the reference outline), green and blue (the seeds)."""
    stops = np.array([0.0, 0.4, 0.7, 1.0])
    colours = np.array([(60, 15, 110), (180, 55, 125), (250, 140, 50), (255, 245, 160)], float)
    t = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(t, stops, colours[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


HEAT_LUT = _heat_lut()


def heat_rgba(values: np.ndarray, opacity: float = HEAT_OPACITY) -> np.ndarray:
    """(rows, cols, 4) uint8 of a [0, 1] map: colour by value, alpha proportional to the value, so
    the low-probability background stays see-through and the image remains readable."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0)
    index = np.round(v * 255).astype(np.uint8)
    rgba = np.empty(v.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = HEAT_LUT[index]
    alpha = float(np.clip(opacity, 0.0, 1.0)) * 255 * v
    rgba[..., 3] = np.round(alpha).astype(np.uint8)
    return rgba


def reference_contour_rgba(reference: np.ndarray, colour=REFERENCE_COLOUR) -> np.ndarray:
    """(rows, cols, 4) uint8: the outline of every reference region, opaque, transparent elsewhere."""
    edge = contour_mask(np.asarray(reference))
    rgba = np.zeros(edge.shape + (4,), dtype=np.uint8)
    rgba[edge, :3] = colour
    rgba[edge, 3] = 255
    return rgba
