"""What the slice view shows, without Qt: orientation, cursor, window, overlay settings.

Geometry of a 2D view of a (z, y, x) volume, kept in one place so the display, the status bar and
(later) click refinement agree on which voxel is under the mouse:

- axial    shows volume[z]       rows = y, columns = x
- coronal  shows volume[:, y, :] rows = z, columns = x
- sagittal shows volume[:, :, x] rows = z, columns = y

Row 0 is drawn at the top. Axes are reversed where the image's direction says so (`display_flips`):
for the identity direction (LPS) only z is, so coronal and sagittal views have the head end up.
The view is drawn on the voxel grid; the physical aspect of each pixel comes from `pixel_size_mm`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from app.core.intensity import Window, apply_window


class Orientation(str, Enum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"

    @property
    def axis(self) -> int:
        """The (z, y, x) axis this orientation slices through."""
        return _AXIS[self]


_AXIS = {Orientation.AXIAL: 0, Orientation.CORONAL: 1, Orientation.SAGITTAL: 2}


# Which (z, y, x) array axes are drawn reversed. For the identity direction only z is: row 0 is the
# highest slice, so the head end is up in coronal and sagittal views.
HEAD_UP = (True, False, False)

# (row axis, column axis) of the displayed slice, as (z, y, x) array axes.
_DISPLAY_AXES = {Orientation.AXIAL: (1, 2), Orientation.CORONAL: (0, 2), Orientation.SAGITTAL: (0, 1)}


def display_flips(direction: tuple[float, ...]) -> tuple[bool, bool, bool]:
    """Axes to reverse so every scan is shown the radiological way whatever its storage order:
    patient's right on screen left (LPS +x to the right), anterior up in axial (+y down), head up
    in coronal/sagittal (+z up). Only axes stored along a world axis are judged; an oblique or
    permuted axis keeps its stored order."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)

    def sign(i: int) -> float:  # d[:, i] is the world direction of index axis i (x, y, z)
        column = d[:, i]
        return float(np.sign(column[i])) if abs(column[i]) >= np.abs(column).max() - 1e-6 else 0.0

    sx, sy, sz = sign(0), sign(1), sign(2)
    return (sz >= 0, sy < 0, sx < 0)


def _step(flip: bool) -> slice:
    return slice(None, None, -1) if flip else slice(None)


def extract_slice(array: np.ndarray, orientation: Orientation, index: int,
                  flips: tuple[bool, bool, bool] = HEAD_UP) -> np.ndarray:
    """The 2D (row, column) slice at `index`, oriented for display (a view, not a copy)."""
    rows, columns = _DISPLAY_AXES[orientation]
    key = [slice(None)] * 3
    key[orientation.axis] = index
    key[rows], key[columns] = _step(flips[rows]), _step(flips[columns])
    return array[tuple(key)]


def slice_shape(shape: tuple[int, int, int], orientation: Orientation) -> tuple[int, int]:
    """(rows, columns) of a displayed slice of a volume of `shape` (z, y, x)."""
    rows, columns = _DISPLAY_AXES[orientation]
    return shape[rows], shape[columns]


def pixel_size_mm(spacing_xyz: tuple[float, float, float], orientation: Orientation) -> tuple[float, float]:
    """(row height, column width) in mm of one displayed pixel."""
    spacing_zyx = tuple(reversed(spacing_xyz))
    rows, columns = _DISPLAY_AXES[orientation]
    return spacing_zyx[rows], spacing_zyx[columns]


def display_to_voxel(shape: tuple[int, int, int], orientation: Orientation, index: int,
                     row: float, column: float,
                     flips: tuple[bool, bool, bool] = HEAD_UP) -> tuple[int, int, int] | None:
    """The (z, y, x) voxel under a continuous display position, or None outside the slice.

    `row`/`column` are in pixel units with pixel (r, c) covering [r, r+1) × [c, c+1).
    """
    r, c = int(np.floor(row)), int(np.floor(column))
    row_axis, column_axis = _DISPLAY_AXES[orientation]
    if not (0 <= r < shape[row_axis] and 0 <= c < shape[column_axis]):
        return None
    voxel = [0, 0, 0]
    voxel[orientation.axis] = int(index)
    voxel[row_axis] = shape[row_axis] - 1 - r if flips[row_axis] else r
    voxel[column_axis] = shape[column_axis] - 1 - c if flips[column_axis] else c
    return tuple(voxel)


def voxel_to_display(shape: tuple[int, int, int], orientation: Orientation, z: int, y: int, x: int,
                     flips: tuple[bool, bool, bool] = HEAD_UP) -> tuple[int, int, int]:
    """(slice index, row, column) at which voxel (z, y, x) is displayed."""
    voxel = (z, y, x)
    row_axis, column_axis = _DISPLAY_AXES[orientation]
    row = shape[row_axis] - 1 - voxel[row_axis] if flips[row_axis] else voxel[row_axis]
    column = shape[column_axis] - 1 - voxel[column_axis] if flips[column_axis] else voxel[column_axis]
    return voxel[orientation.axis], row, column


@dataclass
class ViewState:
    """The slice view's settings for one open volume. Widgets read it and render."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]  # (x, y, z) mm, as in Volume
    window: Window
    orientation: Orientation = Orientation.AXIAL
    cursor: list[int] = field(default_factory=list)  # (z, y, x): each orientation slices through it
    overlay_visible: bool = True
    overlay_contours: bool = False
    overlay_opacity: float = 0.4
    flips: tuple[bool, bool, bool] = HEAD_UP  # see display_flips

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape)
        if not self.cursor:
            self.cursor = [s // 2 for s in self.shape]
        self.cursor = [int(np.clip(c, 0, s - 1)) for c, s in zip(self.cursor, self.shape)]
        self.orientation = Orientation(self.orientation)
        self.flips = tuple(bool(f) for f in self.flips)
        self.overlay_opacity = float(np.clip(self.overlay_opacity, 0.0, 1.0))

    @classmethod
    def for_volume(cls, volume, window: Window, **settings) -> "ViewState":
        return cls(volume.shape, volume.spacing, window, flips=display_flips(volume.direction), **settings)

    @property
    def slice_index(self) -> int:
        return self.cursor[self.orientation.axis]

    @property
    def slice_count(self) -> int:
        return self.shape[self.orientation.axis]

    def set_slice(self, index: int) -> bool:
        """Move to slice `index` (clamped); True if the slice changed."""
        index = int(np.clip(index, 0, self.slice_count - 1))
        changed = index != self.slice_index
        self.cursor[self.orientation.axis] = index
        return changed

    def step(self, delta: int) -> bool:
        return self.set_slice(self.slice_index + int(delta))

    def set_orientation(self, orientation: Orientation | str) -> bool:
        orientation = Orientation(orientation)
        changed = orientation is not self.orientation
        self.orientation = orientation
        return changed

    def set_opacity(self, opacity: float) -> None:
        self.overlay_opacity = float(np.clip(opacity, 0.0, 1.0))

    @property
    def slice_shape(self) -> tuple[int, int]:
        return slice_shape(self.shape, self.orientation)

    @property
    def pixel_size_mm(self) -> tuple[float, float]:
        return pixel_size_mm(self.spacing, self.orientation)

    @property
    def extent_mm(self) -> tuple[float, float]:
        """(height, width) of the displayed slice in mm."""
        (rows, columns), (h, w) = self.slice_shape, self.pixel_size_mm
        return rows * h, columns * w

    def slice_of(self, array: np.ndarray) -> np.ndarray:
        """The current slice of any array on this grid (image, label, probability map)."""
        if tuple(array.shape) != self.shape:
            raise ValueError(f"array shape {array.shape} is not the view's grid {self.shape}")
        return extract_slice(array, self.orientation, self.slice_index, self.flips)

    def display_image(self, array: np.ndarray) -> np.ndarray:
        """The current slice mapped through the window to [0, 1] float32."""
        return apply_window(self.slice_of(array), self.window)

    def voxel_at(self, row: float, column: float) -> tuple[int, int, int] | None:
        return display_to_voxel(self.shape, self.orientation, self.slice_index, row, column, self.flips)

    def display_position(self, z: int, y: int, x: int) -> tuple[int, int, int]:
        return voxel_to_display(self.shape, self.orientation, z, y, x, self.flips)


# How many screen pixels of drag double the window width / move the level by one width.
DRAG_PIXELS_PER_WIDTH = 200.0


def drag_window(window: Window, dx_pixels: float, dy_pixels: float) -> Window:
    """Window after a mouse drag: right widens, left narrows (by a factor, so it works at any
    scale from MR counts to CT HU); up raises the level, down lowers it (screen y grows down)."""
    width = max(window.width * 2.0 ** (dx_pixels / DRAG_PIXELS_PER_WIDTH), 1e-3)
    level = window.level - dy_pixels * window.width / DRAG_PIXELS_PER_WIDTH
    return Window(float(width), float(level))


def focus_cursor(label: np.ndarray) -> list[int] | None:
    """(z, y, x) where a label is largest along each axis, so a case opens on its structure
    rather than on an empty middle slice; None for an empty label."""
    if label is None or not label.any():
        return None
    mask = label != 0
    return [int(np.argmax(mask.sum(axis=tuple(a for a in range(3) if a != axis)))) for axis in range(3)]
