"""Seeds on the slice view: clicks as dots, scribbles as their pixels, fg green and bg blue.

Seeds live in voxel index space (app/core/seeds.py), so a seed shows in every view whose slice
passes through it: a click made on axial slice 17 appears on the coronal slice through its row.
`seed_display_points` (plain numpy) says where; `SeedsOverlay` draws it with pyqtgraph items and
redraws on every slice or orientation change. The stroke being drawn is previewed as a line.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt

from app.core.refine.base import scribble_pixels
from app.core.seeds import Seed, plane_to_voxel
from app.core.view_state import ViewState

FG_COLOUR = (40, 230, 70)     # green: foreground seeds
BG_COLOUR = (40, 140, 255)    # blue: background seeds
PAINT_COLOUR = (255, 255, 255)
CLICK_SIZE_PX = 9
SCRIBBLE_SIZE_PX = 4


@lru_cache(maxsize=4096)
def seed_voxels(seed: Seed) -> np.ndarray:
    """(n, 3) int (z, y, x) of every voxel a seed covers (a scribble's whole polyline)."""
    if seed.kind == "click":
        return np.asarray(seed.points, dtype=int).reshape(-1, 3)
    pixels = scribble_pixels(seed.plane_points())
    return np.array([plane_to_voxel(seed.axis, seed.index, p) for p in pixels], dtype=int).reshape(-1, 3)


def voxels_on_view(voxels: np.ndarray, state: ViewState) -> np.ndarray:
    """(m, 2) display (row, column) of the voxels that lie on the view's current slice."""
    voxels = np.asarray(voxels, dtype=int).reshape(-1, 3)
    axis = state.orientation.axis
    row_axis, column_axis = [a for a in range(3) if a != axis]  # view_state's display axes
    on = voxels[voxels[:, axis] == state.slice_index]
    rows, columns = on[:, row_axis].copy(), on[:, column_axis].copy()
    if state.flips[row_axis]:
        rows = state.shape[row_axis] - 1 - rows
    if state.flips[column_axis]:
        columns = state.shape[column_axis] - 1 - columns
    return np.stack([rows, columns], axis=1)


def seed_display_points(seeds, state: ViewState) -> dict[str, np.ndarray]:
    """Display (row, column) points per group: fg/bg clicks and fg/bg scribble pixels."""
    groups: dict[str, list[np.ndarray]] = {"fg_click": [], "bg_click": [], "fg_scribble": [], "bg_scribble": []}
    for seed in seeds:
        key = ("fg_" if seed.foreground else "bg_") + ("click" if seed.kind == "click" else "scribble")
        groups[key].append(voxels_on_view(seed_voxels(seed), state))
    return {k: (np.concatenate(v) if v else np.zeros((0, 2), int)) for k, v in groups.items()}


class _SeedDots(pg.ScatterPlotItem):
    """Dots that never take a mouse click: a click next to a seed is a new seed, not a pick."""

    def mouseClickEvent(self, ev):
        ev.ignore()


class SeedsOverlay:
    """The seed items of one SliceView; call `set_seeds` whenever the session's seeds change."""

    def __init__(self, view):
        self.view = view
        self.seeds: list[Seed] = []
        self.points: dict[str, np.ndarray] = {}
        self.items: dict[str, pg.ScatterPlotItem] = {}
        for key, colour, size in (("fg_scribble", FG_COLOUR, SCRIBBLE_SIZE_PX),
                                  ("bg_scribble", BG_COLOUR, SCRIBBLE_SIZE_PX),
                                  ("fg_click", FG_COLOUR, CLICK_SIZE_PX),
                                  ("bg_click", BG_COLOUR, CLICK_SIZE_PX)):
            outline = pg.mkPen(0, 0, 0, 200, width=1) if key.endswith("click") else None
            item = _SeedDots(size=size, pen=outline, brush=pg.mkBrush(*colour), pxMode=True)
            item.setZValue(20 if key.endswith("scribble") else 21)
            view.view_box.addItem(item)
            self.items[key] = item
        self.stroke_item = pg.PlotCurveItem(pen=pg.mkPen(*FG_COLOUR, width=2, style=Qt.DashLine))
        self.stroke_item.setZValue(22)
        view.view_box.addItem(self.stroke_item)
        view.sliceChanged.connect(lambda *_: self.render())

    def set_seeds(self, seeds) -> None:
        self.seeds = list(seeds)
        self.render()

    def render(self) -> None:
        state = self.view.state
        if state is None:
            self.points = {}
            for item in self.items.values():
                item.setData([], [])
            return
        self.points = seed_display_points(self.seeds, state)
        row_mm, column_mm = state.pixel_size_mm
        for key, item in self.items.items():
            pts = self.points[key]
            item.setData((pts[:, 1] + 0.5) * column_mm, (pts[:, 0] + 0.5) * row_mm)

    def displayed(self, group: str) -> set[tuple[int, int]]:
        """Display (row, column) points drawn for a group ('fg_click', 'bg_scribble', ...)."""
        return {tuple(int(v) for v in p) for p in self.points.get(group, np.zeros((0, 2), int))}

    def show_stroke(self, voxels, colour) -> None:
        """Preview of the stroke being drawn (voxels on the current slice), until `hide_stroke`."""
        state = self.view.state
        if state is None or not voxels:
            self.hide_stroke()
            return
        pts = voxels_on_view(np.asarray(voxels), state)
        row_mm, column_mm = state.pixel_size_mm
        self.stroke_item.setPen(pg.mkPen(*colour, width=2, style=Qt.DashLine))
        self.stroke_item.setData((pts[:, 1] + 0.5) * column_mm, (pts[:, 0] + 0.5) * row_mm)
        self.stroke_item.setVisible(True)

    def hide_stroke(self) -> None:
        self.stroke_item.setData([], [])
        self.stroke_item.setVisible(False)
