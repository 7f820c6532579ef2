"""A scalar 3D image together with the physical grid it lives on.

Arrays are kept in numpy order (z, y, x) exactly as SimpleITK's GetArrayFromImage gives them;
spacing, origin and direction stay in SimpleITK's (x, y, z) order so they can be handed back to
SimpleITK unchanged. A 2D image is a volume with one slice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

# Grids that differ by less than this (relative) are the same grid: NIfTI stores float32 spacing,
# so an exact comparison would reject a label written by another tool for the same image.
GRID_TOLERANCE = 1e-4


@dataclass
class Volume:
    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    path: Path | None = None
    modality: str = "unknown"  # "CT", "MR" or "unknown"
    notes: list[str] = field(default_factory=list)  # what the reader had to adapt, shown to the user

    def __post_init__(self):
        if self.array.ndim != 3:
            raise ValueError(f"a Volume holds a 3D (z, y, x) array, got shape {self.array.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = tuple(float(d) for d in self.direction)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) voxel counts."""
        return tuple(self.array.shape)

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        return tuple(reversed(self.array.shape))

    @property
    def name(self) -> str:
        return case_name(self.path) if self.path else "untitled"

    def with_array(self, array: np.ndarray, **changes) -> "Volume":
        """A volume on this grid holding other voxels (a label, a probability map)."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} does not match the grid {self.array.shape}")
        kwargs = dict(spacing=self.spacing, origin=self.origin, direction=self.direction,
                      path=None, modality=self.modality)
        kwargs.update(changes)
        return Volume(array, **kwargs)

    def same_grid(self, other: "Volume") -> bool:
        if self.shape != other.shape:
            return False
        pairs = ((self.spacing, other.spacing), (self.origin, other.origin),
                 (self.direction, other.direction))
        for a, b in pairs:
            a, b = np.asarray(a), np.asarray(b)
            scale = max(1.0, float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
            if np.abs(a - b).max(initial=0.0) > GRID_TOLERANCE * scale:
                return False
        return True

    def grid_description(self) -> str:
        sp = " × ".join(f"{s:.3g}" for s in self.spacing)
        return f"{' × '.join(map(str, self.size_xyz))} voxels, {sp} mm"

    def index_to_world(self, z: float, y: float, x: float) -> tuple[float, float, float]:
        """Physical (x, y, z) position in mm of a continuous voxel index given in (z, y, x)."""
        d = np.asarray(self.direction).reshape(3, 3)
        idx = np.array([x, y, z], dtype=float)
        world = np.asarray(self.origin) + d @ (idx * np.asarray(self.spacing))
        return tuple(float(v) for v in world)

    def to_sitk(self) -> sitk.Image:
        image = sitk.GetImageFromArray(self.array)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image, path: Path | None = None, modality: str = "unknown",
                  notes: list[str] | None = None) -> "Volume":
        if image.GetDimension() == 2:
            image = sitk.JoinSeries(image)
        array = sitk.GetArrayFromImage(image)
        return cls(array, image.GetSpacing(), image.GetOrigin(), image.GetDirection(),
                   Path(path) if path else None, modality, list(notes or []))


IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".png", ".jpg", ".jpeg")


def case_name(path: Path | str) -> str:
    """File name without its image extension and without nnU-Net's trailing channel `_0000`."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith("_0000"):
        name = name[:-5]
    return name
