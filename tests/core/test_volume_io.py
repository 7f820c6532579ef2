"""Geometry survives write→read in every format, and every bad input gets our own clear error."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from app.core.errors import (CorruptFileError, GridMismatchError, InputError,
                             UnsupportedFormatError)
from app.core.volume import Volume, case_name
from app.core.volume_io import read_label, read_volume, write_label, write_volume

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data_source"

# A rotation about z by 30° and a small tilt: a non-identity, orthonormal direction.
_c, _s = np.cos(np.pi / 6), np.sin(np.pi / 6)
ROTATED = tuple(np.array([[_c, -_s, 0.0], [_s, _c, 0.0], [0.0, 0.0, 1.0]]).reshape(-1))


def _volume(dtype=np.int16) -> Volume:
    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1500, size=(7, 11, 13)).astype(dtype)
    return Volume(array, spacing=(0.977, 0.977, 3.27), origin=(-12.5, 40.25, 101.0), direction=ROTATED)


def _assert_same_geometry(a: Volume, b: Volume, tol=1e-5):
    assert a.shape == b.shape
    np.testing.assert_allclose(a.spacing, b.spacing, rtol=tol)
    np.testing.assert_allclose(a.origin, b.origin, atol=tol * 100)
    np.testing.assert_allclose(a.direction, b.direction, atol=tol)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd"])
def test_geometry_round_trip_for_every_3d_format(tmp_path, suffix):
    original = _volume()
    path = write_volume(original, tmp_path / f"case{suffix}")
    loaded = read_volume(path)
    np.testing.assert_array_equal(loaded.array, original.array)
    assert loaded.array.dtype == original.array.dtype
    _assert_same_geometry(loaded, original)
    assert loaded.name == "case"


def test_round_trip_of_a_bundled_case_is_exact(tmp_path):
    image = read_volume(DATA / "sts002_ct.nii.gz")
    label = read_label(DATA / "sts002_ct_label.nii.gz", image)
    out = write_label(label.array, image, tmp_path / "out.nii.gz")
    again = read_label(out, image)
    np.testing.assert_array_equal(again.array, label.array)
    src = sitk.ReadImage(str(DATA / "sts002_ct.nii.gz"))
    written = sitk.ReadImage(str(out))
    assert written.GetSize() == src.GetSize()
    assert written.GetSpacing() == src.GetSpacing()
    assert written.GetOrigin() == src.GetOrigin()
    assert written.GetDirection() == src.GetDirection()


def _write_dicom_series(folder: Path, volume: Volume, series_uid="1.2.826.0.1.3680043.2.1125.1",
                        modality="CT", first_instance=1):
    folder.mkdir(parents=True, exist_ok=True)
    image = volume.to_sitk()
    direction = np.asarray(volume.direction).reshape(3, 3)
    orientation = "\\".join(f"{v:.6f}" for v in list(direction[:, 0]) + list(direction[:, 1]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(volume.shape[0]):
        sl = image[:, :, z]
        position = image.TransformIndexToPhysicalPoint((0, 0, z))
        tags = {
            "0008|0060": modality, "0020|000e": series_uid, "0020|000d": series_uid + ".9",
            "0008|0018": f"{series_uid}.{z + first_instance}", "0020|0013": str(z + first_instance),
            "0020|0032": "\\".join(f"{p:.6f}" for p in position), "0020|0037": orientation,
            "0018|0050": f"{volume.spacing[2]:.6f}",
            "0028|0030": f"{volume.spacing[1]:.6f}\\{volume.spacing[0]:.6f}",
        }
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"slice_{z + first_instance:03d}.dcm"))
        writer.Execute(sl)


def test_dicom_series_folder_keeps_geometry_and_modality(tmp_path):
    original = _volume()
    _write_dicom_series(tmp_path / "series", original)
    loaded = read_volume(tmp_path / "series")
    np.testing.assert_array_equal(loaded.array, original.array)
    _assert_same_geometry(loaded, original, tol=1e-4)
    assert loaded.modality == "CT"


def test_dicom_folder_with_two_series_is_refused(tmp_path):
    vol = _volume()
    _write_dicom_series(tmp_path / "mixed", vol, series_uid="1.2.3.4.5")
    _write_dicom_series(tmp_path / "mixed", vol, series_uid="1.2.3.4.6", first_instance=100)
    with pytest.raises(InputError, match="2 DICOM series"):
        read_volume(tmp_path / "mixed")


def test_grey_png_opens_as_one_slice_volume(tmp_path):
    array = (np.arange(20 * 30).reshape(20, 30) % 256).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "slice.png"))
    loaded = read_volume(tmp_path / "slice.png")
    assert loaded.shape == (1, 20, 30)
    np.testing.assert_array_equal(loaded.array[0], array)


def test_16bit_png_keeps_its_values(tmp_path):
    array = (np.arange(20 * 30).reshape(20, 30) * 97).astype(np.uint16)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "deep.png"))
    loaded = read_volume(tmp_path / "deep.png")
    np.testing.assert_array_equal(loaded.array[0], array)


def _rgb_png(path: Path, grey: bool):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = np.arange(16)[None, :] * 10
    rgb[..., 1] = rgb[..., 0] if grey else 255 - rgb[..., 0]
    rgb[..., 2] = rgb[..., 0]
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(path))
    return rgb


def test_grey_stored_as_rgb_png_is_accepted_with_a_note(tmp_path):
    rgb = _rgb_png(tmp_path / "grey_rgb.png", grey=True)
    loaded = read_volume(tmp_path / "grey_rgb.png")
    np.testing.assert_array_equal(loaded.array[0], rgb[..., 0])
    assert any("RGB" in note for note in loaded.notes)


# --- bad input: each is one of our errors with a message that names the problem -------------------

def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty"):
        read_volume(tmp_path / "empty.nii.gz")


def test_truncated_nii_gz(tmp_path):
    data = (DATA / "sts002_mr.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="gzip"):
        read_volume(tmp_path / "cut.nii.gz")


def test_truncated_uncompressed_nii(tmp_path):
    raw = gzip.decompress((DATA / "sts002_mr.nii.gz").read_bytes())
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError):
        read_volume(tmp_path / "cut.nii")


def test_text_file_renamed_nii(tmp_path):
    (tmp_path / "notes.nii").write_text("this is a text file, not an image\n" * 20)
    with pytest.raises(CorruptFileError, match="not a readable"):
        read_volume(tmp_path / "notes.nii")


def test_unsupported_extension(tmp_path):
    (tmp_path / "report.docx").write_bytes(b"PK\x03\x04 not an image")
    with pytest.raises(UnsupportedFormatError, match="unsupported file type"):
        read_volume(tmp_path / "report.docx")


def test_colour_png_is_refused(tmp_path):
    _rgb_png(tmp_path / "photo.png", grey=False)
    with pytest.raises(UnsupportedFormatError, match="colour"):
        read_volume(tmp_path / "photo.png")


def test_4d_nifti_is_refused(tmp_path):
    series = sitk.JoinSeries([sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16))] * 3)
    sitk.WriteImage(series, str(tmp_path / "fmri.nii.gz"))
    with pytest.raises(UnsupportedFormatError, match="4D"):
        read_volume(tmp_path / "fmri.nii.gz")


def test_label_on_another_grid_is_refused(tmp_path):
    image = read_volume(DATA / "sts002_ct.nii.gz")
    with pytest.raises(GridMismatchError, match="does not lie on the grid"):
        read_label(DATA / "sts002_mr_label.nii.gz", image)
    shifted = image.with_array(np.zeros(image.shape, np.uint8), origin=(0.0, 0.0, 5.0))
    write_volume(shifted, tmp_path / "shifted.nii.gz")
    with pytest.raises(GridMismatchError):
        read_label(tmp_path / "shifted.nii.gz", image)


def test_unreadable_or_missing_paths(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="does not exist"):
        read_volume(tmp_path / "nope.nii.gz")
    with pytest.raises(InputError, match="no DICOM series"):
        read_volume(tmp_path)  # an empty folder
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0)
    try:
        with pytest.raises(InputError, match="permission"):
            if os.access(locked, os.R_OK):
                # root reads any folder: make the check see what a normal user would
                real_access = os.access
                monkeypatch.setattr(os, "access",
                                    lambda p, mode: False if Path(p) == locked else real_access(p, mode))
                read_volume(locked)
            else:
                read_volume(locked)
    finally:
        os.chmod(locked, 0o755)


def test_huge_declared_size_is_refused_without_allocating(tmp_path):
    write_volume(Volume(np.zeros((2, 3, 4), np.int16)), tmp_path / "tiny.nii")
    raw = bytearray((tmp_path / "tiny.nii").read_bytes())
    struct.pack_into("<8h", raw, 40, 3, 32000, 32000, 32000, 1, 1, 1, 1)  # NIfTI-1 dim[8]
    (tmp_path / "huge.nii").write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="declares"):
        read_volume(tmp_path / "huge.nii")


def test_nan_voxels_are_replaced_and_reported(tmp_path):
    array = np.linspace(0, 1, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    array[0, 0, 0] = np.nan
    array[1, 2, 3] = np.inf
    write_volume(Volume(array), tmp_path / "nan.mha")
    loaded = read_volume(tmp_path / "nan.mha")
    assert np.isfinite(loaded.array).all()
    assert any("NaN/Inf" in note for note in loaded.notes)


def test_single_voxel_volume_is_refused(tmp_path):
    write_volume(Volume(np.zeros((1, 1, 1), np.int16)), tmp_path / "dot.nii.gz")
    with pytest.raises(InputError, match="single voxel"):
        read_volume(tmp_path / "dot.nii.gz")


def test_label_values_outside_0_255_are_refused(tmp_path):
    image = read_volume(DATA / "sts002_mr.nii.gz")
    bad = image.with_array(np.full(image.shape, 300, np.int16))
    write_volume(bad, tmp_path / "bad_label.nii.gz")
    with pytest.raises(InputError, match="0–255"):
        read_label(tmp_path / "bad_label.nii.gz", image)


def test_write_label_refuses_a_wrong_shape(tmp_path):
    image = read_volume(DATA / "sts002_mr.nii.gz")
    with pytest.raises(GridMismatchError):
        write_label(np.zeros((2, 2, 2), np.uint8), image, tmp_path / "x.nii.gz")


def test_modality_guess_on_bundled_cases():
    assert read_volume(DATA / "sts002_ct.nii.gz").modality == "CT"
    assert read_volume(DATA / "lits117_ct.nii.gz").modality == "CT"
    assert read_volume(DATA / "sts002_mr.nii.gz").modality == "MR"
    assert read_volume(DATA / "btp10_pre_t1c.nii.gz").modality == "MR"


def test_case_name_strips_extension_and_channel():
    assert case_name("imagesTr/sts003_mr_0000.nii.gz") == "sts003_mr"
    assert case_name("x/brain.nrrd") == "brain"
    assert case_name("scan.PNG") == "scan"


def test_gzip_header_followed_by_garbage(tmp_path):
    (tmp_path / "junk.nii.gz").write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"not deflate data" * 50)
    with pytest.raises(CorruptFileError, match="gzip"):
        read_volume(tmp_path / "junk.nii.gz")
