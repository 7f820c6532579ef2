"""Clicks and scribbles of an annotation session, kept in voxel index space (z, y, x).

A seed belongs to the slice it was made on, named by (axis, index): axis 0 slices along z (axial,
plane rows = y, columns = x), axis 1 along y (coronal, rows = z, columns = x), axis 2 along x
(sagittal, rows = z, columns = y). Plane coordinates here are plain numpy index order of
`volume[index]`, `volume[:, index, :]`, `volume[:, :, index]`: the display flips of
app/core/view_state.py are the view's business (`display_to_voxel` then `voxel_to_plane`).

Seeds are immutable tuples so an undo step can keep the before/after lists of a slice by reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from app.core.refine.base import ClickOutsideImageError

AXES = (0, 1, 2)
AXIS_NAMES = {0: "axial", 1: "coronal", 2: "sagittal"}
Voxel = tuple[int, int, int]
SliceKey = tuple[int, int]


@dataclass(frozen=True)
class Seed:
    axis: int
    index: int
    foreground: bool
    kind: str                      # "click" or "scribble"
    points: tuple[Voxel, ...]      # (z, y, x) voxels; one for a click, the polyline for a scribble

    def plane_points(self) -> list[tuple[int, int]]:
        return [voxel_to_plane(self.axis, p)[1] for p in self.points]

    def to_json(self) -> dict:
        return {"axis": self.axis, "slice": self.index, "fg": self.foreground, "kind": self.kind,
                "points": [list(p) for p in self.points]}

    @classmethod
    def from_json(cls, data: dict) -> "Seed":
        return cls(int(data["axis"]), int(data["slice"]), bool(data["fg"]), str(data["kind"]),
                   tuple(tuple(int(c) for c in p) for p in data["points"]))


def check_axis(axis: int) -> int:
    if axis not in AXES:
        raise ValueError(f"axis must be 0 (axial), 1 (coronal) or 2 (sagittal), got {axis!r}")
    return int(axis)


def plane_shape(shape: Sequence[int], axis: int) -> tuple[int, int]:
    z, y, x = shape
    return {0: (y, x), 1: (z, x), 2: (z, y)}[check_axis(axis)]


def plane_spacing(spacing_xyz: Sequence[float], axis: int) -> tuple[float, float]:
    """(row, column) pixel size in mm of a plane; spacing is SimpleITK's (x, y, z)."""
    sx, sy, sz = (float(s) for s in spacing_xyz)
    return {0: (sy, sx), 1: (sz, sx), 2: (sz, sy)}[check_axis(axis)]


def plane_view(array: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2D plane (a numpy view, writes go through to `array`)."""
    return {0: lambda: array[index], 1: lambda: array[:, index, :],
            2: lambda: array[:, :, index]}[check_axis(axis)]()


def plane_to_voxel(axis: int, index: int, point: Sequence[float]) -> Voxel:
    r, c = int(round(point[0])), int(round(point[1]))
    return {0: (index, r, c), 1: (r, index, c), 2: (r, c, index)}[check_axis(axis)]


def voxel_to_plane(axis: int, voxel: Sequence[int]) -> tuple[int, tuple[int, int]]:
    """(slice index, (row, column)) of a (z, y, x) voxel in the planes of `axis`."""
    z, y, x = (int(v) for v in voxel)
    return {0: (z, (y, x)), 1: (y, (z, x)), 2: (x, (z, y))}[check_axis(axis)]


def box_of_plane(axis: int, index: int, region: tuple[int, int, int, int]) -> tuple[slice, slice, slice]:
    """The (z, y, x) slices of a plane region (r0, r1, c0, c1) on slice `index`."""
    r0, r1, c0, c1 = region
    one = slice(index, index + 1)
    return {0: (one, slice(r0, r1), slice(c0, c1)), 1: (slice(r0, r1), one, slice(c0, c1)),
            2: (slice(r0, r1), slice(c0, c1), one)}[check_axis(axis)]


def check_inside(shape: Sequence[int], axis: int, index: int, points: Iterable[Sequence[float]],
                 what: str = "click") -> list[tuple[int, int]]:
    """Rounded plane points, or ClickOutsideImageError naming the first one off the slice."""
    check_axis(axis)
    if not (0 <= int(index) < shape[axis]):
        raise ClickOutsideImageError(
            f"The {what} is on {AXIS_NAMES[axis]} slice {index}, but the image has slices 0–{shape[axis] - 1}.")
    h, w = plane_shape(shape, axis)
    out = []
    for p in points:
        if len(p) != 2 or not all(np.isfinite(float(c)) for c in p):
            raise ClickOutsideImageError(f"The {what} position {tuple(p)} is not a (row, column) pair.")
        r, c = int(round(float(p[0]))), int(round(float(p[1])))
        if not (0 <= r < h and 0 <= c < w):
            raise ClickOutsideImageError(
                f"The {what} at (row={r}, column={c}) is outside the {h}x{w} {AXIS_NAMES[axis]} slice.")
        out.append((r, c))
    if not out:
        raise ClickOutsideImageError(f"The {what} has no points.")
    return out


class SeedStore:
    """Seeds per slice, in the order they were made."""

    def __init__(self):
        self._by_slice: dict[SliceKey, tuple[Seed, ...]] = {}

    def on_slice(self, axis: int, index: int) -> tuple[Seed, ...]:
        return self._by_slice.get((axis, index), ())

    def set_slice(self, key: SliceKey, seeds: tuple[Seed, ...]) -> None:
        if seeds:
            self._by_slice[key] = tuple(seeds)
        else:
            self._by_slice.pop(key, None)

    def all(self) -> list[Seed]:
        """Every seed, for drawing in all three views (each seed knows its voxels)."""
        return [s for key in sorted(self._by_slice) for s in self._by_slice[key]]

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_slice.values())

    def to_json(self) -> list[dict]:
        return [s.to_json() for s in self.all()]

    @classmethod
    def from_json(cls, items: list[dict]) -> "SeedStore":
        store = cls()
        for item in items:
            seed = Seed.from_json(item)
            key = (seed.axis, seed.index)
            store._by_slice[key] = store.on_slice(*key) + (seed,)
        return store
