"""`info IMAGE`: print what SegLoop reads from an image file (grid, modality, intensity range)."""
from __future__ import annotations

import numpy as np

NAME = "info"
HELP = "show the grid, modality and intensity range of an image file or DICOM folder"


def add_arguments(parser):
    parser.add_argument("image", help="image file (.nii/.nii.gz/.nrrd/.mha/.mhd/.png/.jpg) or DICOM folder")


def run(args) -> int:
    from app.core.volume_io import read_volume

    volume = read_volume(args.image)
    arr = volume.array
    print(f"case:      {volume.name}")
    print(f"grid:      {volume.grid_description()}")
    print(f"origin:    {tuple(round(o, 3) for o in volume.origin)}")
    print(f"direction: {tuple(round(d, 4) for d in volume.direction)}")
    print(f"modality:  {volume.modality}")
    print(f"values:    {arr.dtype}, {float(np.min(arr)):g} .. {float(np.max(arr)):g}")
    for note in volume.notes:
        print(f"note:      {note}")
    return 0
