"""Label overlay rendering: a fixed colour per label value, filled or as contours.

Plain numpy (no Qt) so what the overlay item will hold can be computed and checked directly.
Colours are fixed per value, never re-ranked per slice, so liver stays red and tumour stays yellow
on every slice and every case.
"""
from __future__ import annotations

import numpy as np

# Value 0 is background (transparent). The first colours are chosen to stay apart for the common
# forms of colour blindness (red vs yellow differ in lightness, blue differs from both).
_BASE_COLOURS = (
    (230, 40, 40),    # 1 red      (liver, tumour in single-class labels)
    (255, 215, 0),    # 2 yellow   (tumour in LiTS)
    (40, 110, 255),   # 3 blue
    (40, 200, 90),    # 4 green
    (230, 60, 230),   # 5 magenta
    (0, 210, 210),    # 6 cyan
    (255, 140, 0),    # 7 orange
    (150, 90, 255),   # 8 violet
)


def _build_lut() -> np.ndarray:
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[1:len(_BASE_COLOURS) + 1] = _BASE_COLOURS
    # Values above 8 are rare (multi-organ labels): spread them around the hue circle.
    for value in range(len(_BASE_COLOURS) + 1, 256):
        hue = (value * 0.618034) % 1.0
        lut[value] = _hsv_to_rgb(hue, 0.85, 0.95)
    return lut


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


LABEL_COLOURS: np.ndarray = _build_lut()  # (256, 3) uint8, row = label value


def label_colour(value: int) -> tuple[int, int, int]:
    return tuple(int(c) for c in LABEL_COLOURS[int(value)])


def contour_mask(label: np.ndarray) -> np.ndarray:
    """True on labelled pixels that touch (4-neighbourhood) a pixel of another value or the edge
    of a label region; the outline is drawn inside the region so it never covers its neighbour."""
    label = np.asarray(label)
    padded = np.pad(label, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edge = ((padded[:-2, 1:-1] != centre) | (padded[2:, 1:-1] != centre)
            | (padded[1:-1, :-2] != centre) | (padded[1:-1, 2:] != centre))
    return edge & (label != 0)


def label_rgba(label: np.ndarray, opacity: float, contours: bool = False) -> np.ndarray:
    """(rows, cols, 4) uint8 RGBA of a 2D label slice: its colour where shown, transparent elsewhere."""
    label = np.asarray(label)
    shown = contour_mask(label) if contours else label != 0
    rgba = np.zeros(label.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = LABEL_COLOURS[label.astype(np.uint8, copy=False)]
    rgba[..., 3] = np.where(shown, np.uint8(round(float(np.clip(opacity, 0, 1)) * 255)), np.uint8(0))
    rgba[~shown, :3] = 0
    return rgba
