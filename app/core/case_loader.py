"""Open one case: its image and the label to show, read completely before anything is displayed.

Reading everything first means a bad file (or a label on another grid) raises before the GUI
touches what it shows, so the case that was open stays open.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.core.case_discovery import discover_cases
from app.core.errors import InputError
from app.core.volume import Volume
from app.core.volume_io import read_label, read_volume


@dataclass
class LoadedCase:
    image: Volume
    label: Volume | None = None
    label_source: str = "none"  # "working" (the annotator's), "reference" (shipped) or "none"
    case_id: int | None = None

    @property
    def name(self) -> str:
        return self.image.name


def load_case(image_path: str | os.PathLike, label_path: str | os.PathLike | None = None,
              reference_label_path: str | os.PathLike | None = None,
              case_id: int | None = None) -> LoadedCase:
    """Read the image and the label to overlay: the working label if it exists, else the reference."""
    image = read_volume(image_path)
    for source, path in (("working", label_path), ("reference", reference_label_path)):
        if path and Path(path).exists():
            return LoadedCase(image, read_label(path, image), source, case_id)
    return LoadedCase(image, None, "none", case_id)



def paired_label(image_path: str | os.PathLike) -> Path | None:
    """The label that folder discovery pairs with this image file (`<case>_label.nii.gz` beside it,
    or labelsTr/ for imagesTr/), so opening one file finds the same label as opening its folder."""
    path = Path(image_path)
    if path.is_dir():
        return None
    try:
        cases = discover_cases(path.parent)
    except InputError:
        return None
    target = path.resolve()
    return next((c.reference_label_path for c in cases if c.image_path.resolve() == target), None)
