"""Overlay rendering: fixed colours per value, transparent background, contours inside regions."""
from __future__ import annotations

import numpy as np

from app.gui.overlay import LABEL_COLOURS, contour_mask, label_colour, label_rgba


def test_colours_are_fixed_distinct_and_background_is_transparent():
    assert label_colour(1) == (230, 40, 40) and label_colour(2) == (255, 215, 0)
    assert len({tuple(c) for c in LABEL_COLOURS[1:]}) > 200
    label = np.array([[0, 1], [2, 3]], np.uint8)
    rgba = label_rgba(label, 0.5)
    assert tuple(rgba[0, 0]) == (0, 0, 0, 0)
    assert tuple(rgba[0, 1]) == (*LABEL_COLOURS[1], 128)
    assert tuple(rgba[1, 0]) == (*LABEL_COLOURS[2], 128)


def test_contour_is_the_inner_border_of_each_region():
    label = np.zeros((7, 7), np.uint8)
    label[1:6, 1:6] = 1
    label[3, 3] = 2
    mask = contour_mask(label)
    ring = np.zeros_like(mask)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False
    ring[2, 3] = ring[3, 2] = ring[3, 4] = ring[4, 3] = True  # touch the value-2 pixel
    ring[3, 3] = True  # the single value-2 pixel is all border
    np.testing.assert_array_equal(mask, ring)
    rgba = label_rgba(label, 1.0, contours=True)
    assert (rgba[..., 3] > 0).sum() == ring.sum()
    assert rgba[3, 3, 3] == 255 and tuple(rgba[3, 3, :3]) == tuple(LABEL_COLOURS[2])
