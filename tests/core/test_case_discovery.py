"""Case discovery by file names: the bundled data_source/, MSD/nnU-Net folders, DICOM series folders."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from app.core import case_discovery
from app.core.case_discovery import DiscoveredCase, discover_cases
from app.core.errors import InputError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data_source"


def _touch(folder: Path, *names: str) -> None:
    # Discovery never opens images, so empty files are enough to test the listing.
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _listing(cases: list[DiscoveredCase], root: Path) -> list[tuple[str, str, str | None]]:
    def rel(p):
        return None if p is None else p.relative_to(root.resolve()).as_posix()
    return [(c.name, rel(c.image_path), rel(c.reference_label_path)) for c in cases]


def _write_dicom_series(folder: Path, slices: int = 3, bare_names: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.99.1"
    for z in range(slices):
        image = sitk.GetImageFromArray(rng.integers(0, 1000, size=(8, 8)).astype(np.int16))
        image.SetSpacing((0.8, 0.8))
        for tag, value in (("0008|0060", "CT"), ("0020|000e", series_uid),
                           ("0020|0013", str(z + 1)), ("0020|0032", f"0\\0\\{2.5 * z}"),
                           ("0020|0037", "1\\0\\0\\0\\1\\0")):
            image.SetMetaData(tag, value)
        name = f"IM{z:04d}" if bare_names else f"slice{z:03d}.dcm"
        writer.SetFileName(str(folder / name))
        writer.SetImageIO("GDCMImageIO")
        writer.Execute(image)


def test_data_source_holds_exactly_the_four_sample_cases_with_their_labels():
    cases = discover_cases(DATA)
    assert _listing(cases, DATA) == [
        ("btp10_pre_t1c", "btp10_pre_t1c.nii.gz", "btp10_pre_t1c_label.nii.gz"),
        ("lits117_ct", "lits117_ct.nii.gz", "lits117_ct_label.nii.gz"),
        ("sts002_ct", "sts002_ct.nii.gz", "sts002_ct_label.nii.gz"),
        ("sts002_mr", "sts002_mr.nii.gz", "sts002_mr_label.nii.gz"),
    ]
    assert all(c.image_path.is_absolute() and c.image_path.is_file() for c in cases)
    assert all(c.reference_label_path.is_file() for c in cases)
    assert discover_cases(DATA) == cases  # deterministic


def test_flat_folder_pairs_label_seg_and_mask_in_every_format(tmp_path):
    _touch(tmp_path, "b.nrrd", "b_seg.nrrd", "a.nii", "a_mask.nii", "a_label.nii.gz",
           "c.mha", "d.mhd", "d.raw", "e.png", "e_mask.png", "f.jpg", "f_mask.jpg",
           "orphan_label.nii.gz", "notes.txt", ".hidden.nii.gz", "g.NII.GZ")
    assert _listing(discover_cases(tmp_path), tmp_path) == [
        ("a", "a.nii", "a_label.nii.gz"),  # _label is preferred over _mask
        ("b", "b.nrrd", "b_seg.nrrd"),
        ("c", "c.mha", None),
        ("d", "d.mhd", None),  # the .raw payload is not a case
        ("e", "e.png", "e_mask.png"),
        ("f", "f.jpg", None),  # a lossy JPEG is not taken as a label
        ("g", "g.NII.GZ", None),
    ]


def test_msd_layout_pairs_images_with_labels_in_both_splits(tmp_path):
    _touch(tmp_path, "imagesTr/liver_2_0000.nii.gz", "imagesTr/liver_1_0000.nii.gz",
           "labelsTr/liver_1.nii.gz", "labelsTr/liver_2.nii.gz",
           "imagesTs/liver_9_0000.nii.gz", "imagesTs/liver_8_0000.nii.gz", "labelsTs/liver_8.nii.gz",
           "dataset.json")
    (tmp_path / "labelsTr" / "._liver_1.nii.gz").write_bytes(b"")  # macOS litter
    assert _listing(discover_cases(tmp_path), tmp_path) == [
        ("liver_1", "imagesTr/liver_1_0000.nii.gz", "labelsTr/liver_1.nii.gz"),
        ("liver_2", "imagesTr/liver_2_0000.nii.gz", "labelsTr/liver_2.nii.gz"),
        ("liver_8", "imagesTs/liver_8_0000.nii.gz", "labelsTs/liver_8.nii.gz"),
        ("liver_9", "imagesTs/liver_9_0000.nii.gz", None),
    ]
    # Pointed straight at imagesTr/, the labels are still found in the sibling labelsTr/.
    assert _listing(discover_cases(tmp_path / "imagesTr"), tmp_path) == [
        ("liver_1", "imagesTr/liver_1_0000.nii.gz", "labelsTr/liver_1.nii.gz"),
        ("liver_2", "imagesTr/liver_2_0000.nii.gz", "labelsTr/liver_2.nii.gz"),
    ]


def test_msd_extra_channels_are_not_separate_cases_but_msd_names_without_channel_are(tmp_path):
    _touch(tmp_path, "nn/imagesTr/brats_0001_0000.nii.gz", "nn/imagesTr/brats_0001_0001.nii.gz",
           "nn/imagesTr/brats_0001_0002.nii.gz", "nn/labelsTr/brats_0001.nii.gz",
           # the original Decathlon names files without a channel suffix: _0001 is part of the name
           "msd/imagesTr/case_0001.nii.gz", "msd/imagesTr/case_0002.nii.gz",
           "msd/labelsTr/case_0002.nii.gz")
    assert _listing(discover_cases(tmp_path / "nn"), tmp_path / "nn") == [
        ("brats_0001", "imagesTr/brats_0001_0000.nii.gz", "labelsTr/brats_0001.nii.gz")]
    assert _listing(discover_cases(tmp_path / "msd"), tmp_path / "msd") == [
        ("case_0001", "imagesTr/case_0001.nii.gz", None),
        ("case_0002", "imagesTr/case_0002.nii.gz", "labelsTr/case_0002.nii.gz")]


def test_dicom_series_folders_are_one_case_each(tmp_path):
    _write_dicom_series(tmp_path / "chest")  # .dcm files
    _write_dicom_series(tmp_path / "pat1" / "study" / "series2", bare_names=True)  # no extension
    _touch(tmp_path, "chest_label.nii.gz", "docs/readme.txt", "docs/LICENSE", "empty/.keep", "brain.nii.gz")
    assert _listing(discover_cases(tmp_path), tmp_path) == [
        ("brain", "brain.nii.gz", None),
        ("chest", "chest", "chest_label.nii.gz"),
        ("pat1_study_series2", "pat1/study/series2", None),
    ]
    # The series folder itself is one case.
    assert _listing(discover_cases(tmp_path / "chest"), tmp_path) == [("chest", "chest", None)]


def test_dicom_detection_agrees_with_simpleitk(tmp_path):
    _write_dicom_series(tmp_path / "s", bare_names=True)
    assert len(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(tmp_path / "s"))) == 1
    assert [c.name for c in discover_cases(tmp_path)] == ["s"]


def test_missing_folder_or_a_file_is_our_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        discover_cases(tmp_path / "nowhere")
    with pytest.raises(InputError, match="is a file"):
        discover_cases(DATA / "sts002_ct.nii.gz")


def test_unreadable_folder_is_our_error(tmp_path):
    folder = tmp_path / "locked"
    _touch(folder, "a.nii.gz")
    folder.chmod(0)
    try:
        if os.access(folder, os.R_OK):
            pytest.skip("running with privileges that ignore folder permissions (root)")
        with pytest.raises(InputError, match="cannot be read"):
            discover_cases(folder)
    finally:
        folder.chmod(0o755)


def test_unreadable_folder_is_our_error_whatever_the_privileges(tmp_path, monkeypatch):
    # Root reads a chmod 000 folder, so the test above skips there; this one fails the listing itself.
    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(case_discovery.os, "scandir", denied)
    with pytest.raises(InputError, match=r"cannot be read \(permission denied\)"):
        discover_cases(tmp_path)


def test_a_locked_subfolder_does_not_hide_the_other_cases(tmp_path):
    _touch(tmp_path, "a.nii.gz", "locked/x.dcm")
    (tmp_path / "locked").chmod(0)
    try:
        assert [c.name for c in discover_cases(tmp_path)][0] == "a"
    finally:
        (tmp_path / "locked").chmod(0o755)
