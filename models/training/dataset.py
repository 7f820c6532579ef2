"""Training data in MSD / nnU-Net layout, held in memory as network-ready slices.

    DIR/imagesTr/<case>_0000.nii.gz  DIR/labelsTr/<case>.nii.gz  (DIR/dataset.json optional)

Every volume is normalised and resized in-plane once at load time (the same functions inference
uses), so a training step only gathers slices and augments them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from models import preprocess

_PATIENT = re.compile(r"^(sts\d+|btp\d+)_", re.IGNORECASE)


def patient_id(case: str) -> str:
    """Volumes of one patient share an id: stsNNN_ct / stsNNN_mr -> stsNNN, btpNN_pre/post -> btpNN;
    any other name is its own patient."""
    match = _PATIENT.match(case)
    return match.group(1).lower() if match else case


@dataclass
class Case:
    name: str
    modality: str
    image: np.ndarray       # (z, S, S) float32 in [0, 1], resized
    label: np.ndarray       # (z, S, S) uint8 0/1, resized
    tags: np.ndarray        # (z,) bool: tumour present in the slice (from the full-resolution label)
    original_label: np.ndarray | None = None   # (z, y, x) uint8, kept for validation Dice
    original_image: np.ndarray | None = None

    @property
    def patient(self) -> str:
        return patient_id(self.name)


def list_cases(data_dir: str | Path, split: str = "Tr") -> list[tuple[str, Path, Path | None]]:
    """(case, image path, label path or None) for every `<case>_0000.nii.gz` in images<split>/."""
    data_dir = Path(data_dir)
    images = data_dir / f"images{split}"
    if not images.is_dir():
        raise FileNotFoundError(f"{images} does not exist (expected MSD / nnU-Net layout)")
    cases = []
    for image in sorted(images.glob("*_0000.nii.gz")):
        case = image.name[: -len("_0000.nii.gz")]
        label = data_dir / f"labels{split}" / f"{case}.nii.gz"
        cases.append((case, image, label if label.exists() else None))
    if not cases:
        raise FileNotFoundError(f"no <case>_0000.nii.gz images in {images}")
    return cases


def read_array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def load_case(name: str, image_path: Path, label_path: Path, input_size: int,
              keep_original: bool = False) -> Case:
    raw = read_array(image_path)
    label = (read_array(label_path) > 0).astype(np.uint8)
    if label.shape != raw.shape:
        raise ValueError(f"{name}: label shape {label.shape} differs from image {raw.shape}")
    modality = preprocess.guess_modality(raw)
    return Case(
        name=name, modality=modality,
        image=preprocess.prepare_volume(raw, modality, input_size),
        label=preprocess.resize_label_slices(label, (input_size, input_size)),
        tags=label.reshape(label.shape[0], -1).any(axis=1),
        original_label=label if keep_original else None,
        original_image=raw if keep_original else None)


def split_patients(names: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Patient-disjoint split of case names into (train, validation), stratified by source
    (the prefix letters) so the validation set holds some of each kind of data."""
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[str]] = {}
    for patient in sorted({patient_id(n) for n in names}):
        by_source.setdefault(re.sub(r"\d.*$", "", patient), []).append(patient)
    val_patients: set[str] = set()
    for patients in by_source.values():
        n_val = int(round(len(patients) * val_fraction))
        if len(patients) >= 3:
            n_val = max(1, n_val)
        val_patients.update(rng.permutation(patients)[:n_val].tolist())
    train = [n for n in names if patient_id(n) not in val_patients]
    val = [n for n in names if patient_id(n) in val_patients]
    return train, val


def load_dataset(data_dir: str | Path, input_size: int, val_fraction: float = 0.15, seed: int = 0,
                 limit: int | None = None, progress=None, val_names: list[str] | None = None
                 ) -> tuple[list[Case], list[Case]]:
    """(train cases, validation cases) from DIR/imagesTr + labelsTr, split by patient.

    val_names: use exactly these validation cases (a continued run keeps its parent's split)."""
    entries = [e for e in list_cases(data_dir, "Tr") if e[2] is not None]
    if limit:
        entries = entries[:limit]
    if val_names is None:
        _, val_names = split_patients([e[0] for e in entries], val_fraction, seed)
    val_set = set(val_names)
    train, val = [], []
    for name, image, label in (progress(entries) if progress else entries):
        case = load_case(name, image, label, input_size, keep_original=name in val_set)
        (val if name in val_set else train).append(case)
    return train, val
