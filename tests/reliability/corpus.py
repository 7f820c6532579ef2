"""The hostile-input corpus: small bad (or odd but valid) files made on the fly, one builder per kind.

Each entry is (builder, expected): expected is an error class plus a phrase of its message, or
None for an odd file that must open (with its oddity in Volume.notes when the reader adapted it).
The same corpus drives the core readers and the GUI's open path (test_hostile_inputs.py) and the
figures in benchmarks/results/reliability.md.
"""
from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from app.core.errors import CorruptFileError, InputError, UnsupportedFormatError
from app.core.volume import Volume
from app.core.volume_io import write_volume

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data_source"
SAMPLE = DATA / "sts002_mr.nii.gz"


def zero_byte(d: Path) -> Path:
    (d / "empty.nii.gz").write_bytes(b"")
    return d / "empty.nii.gz"


def truncated_gzip(d: Path) -> Path:
    data = SAMPLE.read_bytes()
    (d / "cut.nii.gz").write_bytes(data[: len(data) // 3])
    return d / "cut.nii.gz"


def gzip_of_garbage(d: Path) -> Path:
    (d / "garbage.nii.gz").write_bytes(gzip.compress(b"\x00\x01not a nifti header" * 64))
    return d / "garbage.nii.gz"


def wrong_magic_nii(d: Path) -> Path:
    write_volume(Volume(np.zeros((3, 4, 5), np.int16)), d / "ok.nii")
    raw = bytearray((d / "ok.nii").read_bytes())
    raw[344:348] = b"XYZ\0"                      # NIfTI-1 magic "n+1\0" replaced
    (d / "magic.nii").write_bytes(bytes(raw))
    return d / "magic.nii"


def wrong_magic_nrrd(d: Path) -> Path:
    (d / "scan.nrrd").write_bytes(b"PNG?\nthis is not nrrd\n" + bytes(range(256)))
    return d / "scan.nrrd"


def png_renamed_nii_gz(d: Path) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 8), np.uint8)), str(d / "pic.png"))
    shutil.copy(d / "pic.png", d / "pic.nii.gz")
    return d / "pic.nii.gz"


def huge_dims_nii(d: Path) -> Path:
    write_volume(Volume(np.zeros((2, 3, 4), np.int16)), d / "tiny.nii")
    raw = bytearray((d / "tiny.nii").read_bytes())
    struct.pack_into("<8h", raw, 40, 3, 32000, 32000, 32000, 1, 1, 1, 1)
    (d / "huge.nii").write_bytes(bytes(raw))
    return d / "huge.nii"


def huge_dims_nii_gz(d: Path) -> Path:
    path = huge_dims_nii(d)
    (d / "huge.nii.gz").write_bytes(gzip.compress(path.read_bytes()))
    return d / "huge.nii.gz"


def huge_dims_mha(d: Path) -> Path:
    header = ("ObjectType = Image\nNDims = 3\nDimSize = 40000 40000 40000\nElementType = MET_SHORT\n"
              "ElementDataFile = LOCAL\n")
    (d / "huge.mha").write_bytes(header.encode("ascii") + b"\0" * 64)
    return d / "huge.mha"


def huge_dims_nrrd(d: Path) -> Path:
    header = "NRRD0004\ntype: short\ndimension: 3\nsizes: 50000 50000 50000\nencoding: raw\n\n"
    (d / "huge.nrrd").write_bytes(header.encode("ascii") + b"\0" * 64)
    return d / "huge.nrrd"


def truncated_mha(d: Path) -> Path:
    # write_volume compresses .mha; a raw one is what can be cut without zlib noticing
    image = sitk.GetImageFromArray(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6))
    sitk.WriteImage(image, str(d / "raw.mha"), useCompression=False)
    raw = (d / "raw.mha").read_bytes()
    (d / "cut.mha").write_bytes(raw[: len(raw) - 100])
    return d / "cut.mha"


# MetaImage keeps NaN; ITK's NIfTI reader turns NaN into 0 before SegLoop sees it (see
# test_nan_in_nifti_reaches_us_as_zero), so the NaN kinds are .mha files.
def nan_inf_voxels(d: Path) -> Path:
    array = np.linspace(0, 100, 4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    array[0, 0, :3] = [np.nan, np.inf, -np.inf]
    write_volume(Volume(array), d / "nan.mha")
    return d / "nan.mha"


def all_nan(d: Path) -> Path:
    write_volume(Volume(np.full((3, 4, 5), np.nan, np.float32)), d / "allnan.mha")
    return d / "allnan.mha"


def four_d(d: Path) -> Path:
    series = sitk.JoinSeries([sitk.GetImageFromArray(np.full((4, 5, 6), t, np.int16)) for t in range(3)])
    sitk.WriteImage(series, str(d / "fmri.nii.gz"))
    return d / "fmri.nii.gz"


def two_voxels(d: Path) -> Path:
    write_volume(Volume(np.array([[[10, 20]]], np.int16)), d / "two.nii.gz")
    return d / "two.nii.gz"


def one_voxel(d: Path) -> Path:
    write_volume(Volume(np.zeros((1, 1, 1), np.int16)), d / "dot.nii.gz")
    return d / "dot.nii.gz"


def rgb_png(d: Path) -> Path:
    rgb = np.zeros((16, 20, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, np.arange(20, dtype=np.uint8)[None, :] * 9, 30
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(d / "photo.png"))
    return d / "photo.png"


def png_16bit(d: Path) -> Path:
    array = (np.arange(16 * 20).reshape(16, 20) * 181).astype(np.uint16)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(d / "deep.png"))
    return d / "deep.png"


def _dicom_slices(folder: Path, series_uid: str, first: int, n: int = 3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        image = sitk.GetImageFromArray(np.full((8, 8), k * 10 + first, np.int16))
        image.SetSpacing((0.7, 0.7))
        tags = {"0008|0060": "CT", "0020|000e": series_uid, "0020|000d": "1.2.3.4",
                "0020|0013": str(first + k), "0020|0032": f"0\\0\\{(first + k) * 2.0}",
                "0020|0037": "1\\0\\0\\0\\1\\0", "0028|0030": "0.7\\0.7", "0008|0016": "1.2.840.10008.5.1.4.1.1.2"}
        for key, value in tags.items():
            image.SetMetaData(key, value)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(folder / f"s{series_uid[-1]}_{k:03d}.dcm"))
        writer.Execute(image)


def dicom_mixed_series(d: Path) -> Path:
    _dicom_slices(d / "mixed", "1.2.3.4.5", 0)
    _dicom_slices(d / "mixed", "1.2.3.4.6", 100)
    return d / "mixed"


def empty_folder(d: Path) -> Path:
    (d / "nothing").mkdir()
    return d / "nothing"


def unsupported_suffix(d: Path) -> Path:
    (d / "report.docx").write_bytes(b"PK\x03\x04 not an image")
    return d / "report.docx"


def missing_file(d: Path) -> Path:
    return d / "never-written.nii.gz"


# kind -> (builder, error class or None, phrase in the message / note)
IMAGE_CORPUS = {
    "zero-byte file": (zero_byte, CorruptFileError, "empty (0 bytes)"),
    "truncated gzip": (truncated_gzip, CorruptFileError, "not a complete gzip file"),
    "gzip of garbage (.nii.gz)": (gzip_of_garbage, CorruptFileError, "not a readable"),
    "wrong NIfTI magic": (wrong_magic_nii, CorruptFileError, "NIfTI signature"),
    "wrong NRRD magic": (wrong_magic_nrrd, CorruptFileError, "not a readable"),
    "PNG renamed .nii.gz": (png_renamed_nii_gz, CorruptFileError, "gzip"),
    "huge dims, tiny .nii": (huge_dims_nii, CorruptFileError, "declares"),
    "huge dims, tiny .nii.gz": (huge_dims_nii_gz, CorruptFileError, "declares"),
    "huge dims, tiny .mha": (huge_dims_mha, CorruptFileError, "declares"),
    "huge dims, tiny .nrrd": (huge_dims_nrrd, CorruptFileError, "not a readable"),
    "truncated raw .mha": (truncated_mha, CorruptFileError, "truncated"),
    "all voxels NaN": (all_nan, CorruptFileError, "no finite voxel"),
    "4D series": (four_d, UnsupportedFormatError, "4D image"),
    "1-voxel volume": (one_voxel, InputError, "single voxel"),
    "colour (RGB) PNG": (rgb_png, UnsupportedFormatError, "colour image"),
    "DICOM folder, mixed series": (dicom_mixed_series, InputError, "2 DICOM series"),
    "empty folder": (empty_folder, InputError, "no DICOM series"),
    "unsupported suffix": (unsupported_suffix, UnsupportedFormatError, "unsupported file type"),
    "missing file": (missing_file, InputError, "does not exist"),
    # odd but valid: must open, and say what was adapted
    "NaN/Inf voxels": (nan_inf_voxels, None, "NaN/Inf voxels replaced"),
    "2-voxel volume": (two_voxels, None, ""),
    "16-bit PNG": (png_16bit, None, ""),
}


# --- labels for an image (sample grid): kind -> (array maker, error class or None, phrase) ------------
def _label_file(d: Path, reference: Volume, array: np.ndarray, name: str) -> Path:
    path = d / name
    sitk_image = reference.with_array(array).to_sitk()
    sitk.WriteImage(sitk_image, str(path))
    return path


LABEL_CORPUS = {
    "label value 300": (lambda shape: np.full(shape, 300, np.int16), InputError, "0–255"),
    "label value -1": (lambda shape: np.full(shape, -1, np.int16), InputError, "0–255"),
    "fractional label": (lambda shape: np.full(shape, 0.5, np.float32), InputError, "fractional"),
    "label value 9 (outside the label table)": (lambda shape: np.full(shape, 9, np.uint8), None, ""),
    "label on another grid": (lambda shape: np.zeros((shape[0], shape[1] + 1, shape[2]), np.uint8),
                              InputError, "does not lie on the grid"),
}


def label_file(d: Path, reference: Volume, kind: str) -> Path:
    make = LABEL_CORPUS[kind][0]
    array = make(reference.shape)
    if array.shape != reference.shape:
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(reference.spacing)
        sitk.WriteImage(image, str(d / "grid_label.nii.gz"))
        return d / "grid_label.nii.gz"
    return _label_file(d, reference, array, "bad_label.nii.gz")


def outcome_table() -> str:
    """The corpus as a Markdown table of what read_volume / read_label answer (for the report)."""
    import tempfile

    from app.core.volume_io import read_label, read_volume

    rows = ["| input | outcome | message or note |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for number, (kind, (build, _error, _phrase)) in enumerate(IMAGE_CORPUS.items()):
            folder = root / f"k{number}"
            folder.mkdir()
            try:
                volume = read_volume(build(folder))
                rows.append(f"| {kind} | opens {volume.shape} | {' '.join(volume.notes) or '-'} |")
            except Exception as error:  # noqa: BLE001 - the table shows whatever happens
                text = str(error).replace(str(folder), "<folder>")
                rows.append(f"| {kind} | {type(error).__name__} | {text} |")
        image = read_volume(SAMPLE)
        for number, kind in enumerate(LABEL_CORPUS):
            folder = root / f"l{number}"
            folder.mkdir()
            try:
                label = read_label(label_file(folder, image, kind), image)
                rows.append(f"| {kind} | opens (values {sorted(set(label.array.ravel().tolist()))}) | - |")
            except Exception as error:  # noqa: BLE001
                rows.append(f"| {kind} | {type(error).__name__} | {str(error).replace(str(folder), '<folder>')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(outcome_table())
