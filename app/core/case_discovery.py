"""Finding the cases in a folder by file names alone (no image is opened, so listing stays fast).

Layouts understood, and combinable in one folder:
  flat           <case>.nii.gz with an optional <case>_label / _seg / _mask file beside it (data_source/)
  MSD / nnU-Net  imagesTr/<case>_0000.nii.gz with labelsTr/<case>.nii.gz, and imagesTs/labelsTs
  DICOM          a folder of one series (.dcm files, or DICOM files without an extension) is one case;
                 series folders are looked for up to DICOM_DEPTH levels down (patient/study/series)
Checking that an image really reads (and that its label fits its grid) happens when it is opened.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from app.core.errors import InputError
from app.core.volume import IMAGE_SUFFIXES, case_name

LABEL_MARKERS = ("_label", "_seg", "_mask")  # in order of preference when several exist
LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".png")
MSD_SPLITS = (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs"))
DICOM_DEPTH = 3
_CHANNEL = re.compile(r"_(\d{4})$")
_NOT_DICOM = {".raw", ".zraw", ".img", ".hdr", ".txt", ".md", ".json", ".csv", ".tsv", ".xml", ".yaml",
              ".yml", ".py", ".npz", ".npy", ".pt", ".pth", ".db", ".db-wal", ".db-shm", ".zip", ".gz",
              ".log", ".pdf", ".html", ".ini", ".cfg"}


@dataclass(frozen=True)
class DiscoveredCase:
    name: str
    image_path: Path
    reference_label_path: Path | None = None


def discover_cases(folder: str | os.PathLike) -> list[DiscoveredCase]:
    """Every case under `folder`, sorted by name (then path), the same list on every call."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise InputError(f"{root} does not exist.")
    if not root.is_dir():
        raise InputError(f"{root} is a file; choose the folder that holds the cases.")
    root = root.resolve()
    entries = _entries(root, required=True)

    cases: list[DiscoveredCase] = []
    msd_dirs = {images for images, _ in MSD_SPLITS} | {labels for _, labels in MSD_SPLITS}
    for images_dir, labels_dir in MSD_SPLITS:
        if (root / images_dir).is_dir():
            cases += _paired_folder(root / images_dir, root / labels_dir)
    # Pointed straight at imagesTr/: its labels live in the sibling labelsTr/.
    sibling = dict(MSD_SPLITS).get(root.name)
    if sibling is not None:
        return _sorted(cases + _paired_folder(root, root.parent / sibling, entries))

    labels = _flat_labels(entries)
    cases += [DiscoveredCase(case_name(p), p, labels.get(case_name(p))) for p in entries
              if _is_image_file(p) and not _label_marker(case_name(p))]
    if _is_dicom_series(root, entries):
        cases.append(DiscoveredCase(case_name(root), root))
    else:
        for sub in entries:
            if sub.is_dir() and not sub.name.startswith(".") and sub.name not in msd_dirs:
                # A series folder `case1/` may have its label beside it as case1_label.nii.gz.
                cases += [DiscoveredCase(c.name, c.image_path, labels.get(c.name))
                          for c in _dicom_series_below(sub, prefix="", depth=DICOM_DEPTH)]
    return _sorted(cases)


def _sorted(cases: list[DiscoveredCase]) -> list[DiscoveredCase]:
    return sorted(cases, key=lambda c: (c.name, str(c.image_path)))


def _entries(folder: Path, required: bool = False) -> list[Path]:
    """The folder's entries, sorted; an unreadable folder is our error if required, else empty."""
    try:
        with os.scandir(folder) as it:
            return sorted(Path(e.path) for e in it)
    except OSError as exc:
        if not required:
            return []
        reason = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
        raise InputError(f"the folder {folder} cannot be read ({reason}).") from None


def _image_suffix(path: Path) -> str | None:
    lower = path.name.lower()
    return next((s for s in IMAGE_SUFFIXES if lower.endswith(s)), None)


def _is_image_file(path: Path) -> bool:
    return not path.name.startswith(".") and _image_suffix(path) is not None and path.is_file()


def _label_marker(name: str) -> str | None:
    return next((m for m in LABEL_MARKERS if name.endswith(m)), None)


def _flat_labels(entries: list[Path]) -> dict[str, Path]:
    """{case name: its label file} from `<case>_label` / `_seg` / `_mask` files (preferred in that
    order). Such files are never cases themselves, even when their image is missing."""
    found: dict[str, dict[str, Path]] = {}
    for p in entries:
        marker = _label_marker(case_name(p)) if _is_image_file(p) else None
        if marker and p.name.lower().endswith(LABEL_SUFFIXES):
            found.setdefault(case_name(p)[: -len(marker)], {}).setdefault(marker, p)
    return {name: next(by[m] for m in LABEL_MARKERS if m in by) for name, by in found.items()}


def _paired_folder(images: Path, labels: Path, entries: list[Path] | None = None) -> list[DiscoveredCase]:
    """MSD / nnU-Net: the label of imagesTr/<case>_0000.ext is labelsTr/<case>.ext."""
    if entries is None:
        entries = _entries(images, required=True)
    files = [p for p in entries if _is_image_file(p)]
    # nnU-Net stores extra input channels as _0001, _0002...; SegLoop opens channel 0 as the case.
    multichannel = any(_strip_suffix(p).endswith("_0000") for p in files)
    label_files = {}
    for q in _entries(labels):
        if _is_image_file(q) and q.name.lower().endswith(LABEL_SUFFIXES):
            label_files.setdefault(case_name(q), q)
    cases = []
    for p in files:
        channel = _CHANNEL.search(_strip_suffix(p))
        if multichannel and channel and channel.group(1) != "0000":
            continue
        name = case_name(p)
        cases.append(DiscoveredCase(name, p, label_files.get(name)))
    return cases


def _strip_suffix(path: Path) -> str:
    suffix = _image_suffix(path) or ""
    return path.name[: len(path.name) - len(suffix)]


def _dicom_series_below(folder: Path, prefix: str, depth: int) -> list[DiscoveredCase]:
    entries = _entries(folder)  # a locked subfolder is skipped, not fatal: the rest still lists
    # Nested series folders are often all called "series1": keep the parents in the name.
    name = f"{prefix}_{folder.name}" if prefix else case_name(folder)
    if _is_dicom_series(folder, entries):
        return [DiscoveredCase(name, folder)]
    if depth <= 1:
        return []
    found = []
    for sub in entries:
        if sub.is_dir() and not sub.name.startswith("."):
            found += _dicom_series_below(sub, name, depth - 1)
    return found


def _is_dicom_series(folder: Path, entries: list[Path]) -> bool:
    files = [p for p in entries if not p.name.startswith(".") and p.is_file()]
    if any(p.suffix.lower() in (".dcm", ".dicom", ".ima") for p in files):
        return True
    # DICOM names are often bare (IM0001) or UIDs with dots (1.2.840...3): anything not known as
    # something else is a candidate.
    candidates = [p for p in files if _image_suffix(p) is None and p.suffix.lower() not in _NOT_DICOM]
    if not candidates:
        return False
    # Part-10 DICOM files say "DICM" at byte 128: reading 132 bytes of a few files is enough.
    if any(_has_dicm_magic(p) for p in candidates[:3]):
        return True
    # Older files lack that preamble; let GDCM decide, but only for a folder of bare files.
    if len(candidates) != len(files) or any(p.is_dir() for p in entries):
        return False
    try:
        return bool(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
    except RuntimeError:
        return False


def _has_dicm_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"
