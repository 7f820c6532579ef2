"""Small datasets in MSD / nnU-Net layout (images<split>/<case>_0000.nii.gz + labels<split>/<case>.nii.gz),
written with SimpleITK for the tests of the training and benchmark commands."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk


def write_msd_case(root: Path, split: str, case: str, image: np.ndarray, label: np.ndarray,
                   spacing=(1.0, 1.0, 1.0)) -> None:
    """One (z, y, x) image and its label; spacing is SimpleITK's (x, y, z)."""
    for folder, array, name in ((f"images{split}", image, f"{case}_0000.nii.gz"),
                                (f"labels{split}", label, f"{case}.nii.gz")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        itk = sitk.GetImageFromArray(array)
        itk.SetSpacing(tuple(float(s) for s in spacing))
        sitk.WriteImage(itk, str(root / folder / name))
