"""Reading and writing volumes with their geometry intact, through SimpleITK.

Every failure the user can cause (an empty file, a truncated gzip, a text file named .nii, a 4D
series, a colour photo, a label on another grid) becomes an InputError with one sentence that says
what is wrong and what to do; nothing here lets a SimpleITK traceback reach the user.
"""
from __future__ import annotations

import gzip
import zlib
import os
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from app.core.errors import CorruptFileError, GridMismatchError, InputError, UnsupportedFormatError
from app.core.intensity import guess_modality
from app.core.volume import IMAGE_SUFFIXES, Volume

# A declared size above this is refused before any pixel is read: a 40-byte header can claim
# terabytes, and SimpleITK would try to allocate them.
MAX_VOXELS = 1024 ** 3
LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
_PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def read_volume(path: str | os.PathLike) -> Volume:
    """Read an image file or a DICOM series folder as a scalar volume with its geometry."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path} cannot be read (permission denied).")
    if path.is_dir():
        image, modality = _read_dicom_series(path)
        notes = []
    else:
        image, notes = _read_file(path)
        modality = "unknown"
    image, more_notes = _to_scalar_3d(image, path)
    volume = Volume.from_sitk(image, path=path, notes=notes + more_notes)
    _check_values(volume, path)
    volume.modality = modality if modality in ("CT", "MR") else guess_modality(volume.array)
    return volume


def _read_file(path: Path) -> tuple[sitk.Image, list[str]]:
    suffix = _suffix(path)
    if suffix not in IMAGE_SUFFIXES:
        raise UnsupportedFormatError(
            f"{path.name}: unsupported file type '{suffix or path.name}'. SegLoop opens NIfTI "
            "(.nii, .nii.gz), NRRD, MetaImage (.mha, .mhd), PNG/JPEG and DICOM series folders.")
    if path.stat().st_size == 0:
        raise CorruptFileError(f"{path.name} is empty (0 bytes).")
    if suffix == ".nii.gz":
        _check_gzip(path)
    if suffix in (".nii", ".nii.gz"):
        _check_nifti_magic(path, suffix)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise CorruptFileError(
            f"{path.name} is not a readable {suffix} image (damaged, truncated or another kind "
            "of file with this extension).") from None
    size = reader.GetSize()
    voxels = int(np.prod(size, dtype=np.int64)) * max(1, reader.GetNumberOfComponents())
    if voxels > MAX_VOXELS or voxels <= 0:
        raise CorruptFileError(
            f"{path.name} declares {' × '.join(map(str, size))} voxels, more than SegLoop can "
            "hold in memory; the header is probably damaged.")
    _check_raw_payload(path, suffix, reader, voxels)
    try:
        image = reader.Execute()
    except RuntimeError:
        raise CorruptFileError(
            f"{path.name}: the header is readable but the voxel data is damaged or truncated.") from None
    return image, []


def _check_raw_payload(path: Path, suffix: str, reader: sitk.ImageFileReader, voxels: int) -> None:
    """An uncompressed file shorter than its declared voxels is truncated: SimpleITK would read
    whatever memory follows instead of failing."""
    if suffix not in (".nii", ".mha"):
        return
    if suffix == ".mha" and "CompressedData = True" in path.read_bytes()[:4096].decode("latin-1"):
        return
    itemsize = sitk.GetArrayViewFromImage(sitk.Image([1, 1], reader.GetPixelID())).itemsize
    header = 348 if suffix == ".nii" else 0
    if path.stat().st_size < header + voxels * itemsize:
        raise CorruptFileError(
            f"{path.name} is truncated: it holds fewer bytes than its {' × '.join(map(str, reader.GetSize()))} "
            "voxels need.")


def _check_gzip(path: Path) -> None:
    """Walk the whole gzip stream: SimpleITK reports a truncated .nii.gz only by a vague error."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error):
        raise CorruptFileError(
            f"{path.name} is not a complete gzip file (truncated or damaged download?).") from None


def _check_nifti_magic(path: Path, suffix: str) -> None:
    """A .nii without the NIfTI magic is read by ITK as an old Analyze header, whose geometry it
    guesses: refuse it instead of opening a scan with a made-up orientation."""
    opener = gzip.open if suffix == ".nii.gz" else open
    with opener(path, "rb") as stream:
        head = stream.read(548)
    nifti1 = len(head) >= 348 and head[344:348] in (b"n+1\0", b"ni1\0")
    nifti2 = len(head) >= 540 and head[4:8] in (b"n+2\0", b"ni2\0")
    if not (nifti1 or nifti2):
        raise CorruptFileError(
            f"{path.name} is not a readable {suffix} image: its header lacks the NIfTI signature "
            "(damaged, or another kind of file with this extension).")


def _read_dicom_series(folder: Path) -> tuple[sitk.Image, str]:
    try:
        series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or ()
    except RuntimeError:
        series_ids = ()
    if not series_ids:
        raise InputError(f"{folder} holds no DICOM series (and a folder is read only as DICOM).")
    if len(series_ids) > 1:
        raise InputError(
            f"{folder} holds {len(series_ids)} DICOM series; put each series in its own folder "
            "and open that folder.")
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0])
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError:
        raise CorruptFileError(f"the DICOM series in {folder} could not be read (damaged slices?).") from None
    modality = ""
    try:
        if reader.HasMetaDataKey(0, "0008|0060"):
            modality = reader.GetMetaData(0, "0008|0060").strip().upper()
    except RuntimeError:
        pass
    return image, {"CT": "CT", "MR": "MR"}.get(modality, "unknown")


def _to_scalar_3d(image: sitk.Image, path: Path) -> tuple[sitk.Image, list[str]]:
    notes: list[str] = []
    if image.GetNumberOfComponentsPerPixel() > 1:
        image, note = _grey_from_colour(image, path)
        notes.append(note)
    dim = image.GetDimension()
    if dim == 4:
        size = image.GetSize()
        if size[3] != 1:
            raise UnsupportedFormatError(
                f"{path.name} is a 4D image ({size[3]} volumes of {' × '.join(map(str, size[:3]))}); "
                "SegLoop annotates one 3D volume at a time: split the series first.")
        image = image[:, :, :, 0]
        notes.append("4D image with a single time point: opened as 3D.")
    elif dim not in (2, 3):
        raise UnsupportedFormatError(f"{path.name} has {dim} dimensions; SegLoop opens 2D and 3D images.")
    return image, notes


def _grey_from_colour(image: sitk.Image, path: Path) -> tuple[sitk.Image, str]:
    """Accept a colour file only when it is a grey picture stored as RGB(A): real colour is refused."""
    array = sitk.GetArrayViewFromImage(image)
    channels = array[..., :3]
    if channels.shape[-1] < 3 or not (np.array_equal(channels[..., 0], channels[..., 1])
                                      and np.array_equal(channels[..., 0], channels[..., 2])):
        raise UnsupportedFormatError(
            f"{path.name} is a colour image; SegLoop annotates single-channel (greyscale) scans. "
            "Export the scan in greyscale and open that file.")
    grey = sitk.GetImageFromArray(np.ascontiguousarray(channels[..., 0]))
    grey.CopyInformation(sitk.VectorIndexSelectionCast(image, 0))
    return grey, "greyscale image stored as RGB: opened as one grey channel."


def _check_values(volume: Volume, path: Path) -> None:
    array = volume.array
    if array.size < 2:
        raise InputError(f"{path.name} holds a single voxel; there is nothing to annotate.")
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            bad = int(array.size - np.count_nonzero(finite))
            if bad == array.size:
                raise CorruptFileError(f"{path.name} holds no finite voxel values (all NaN/Inf).")
            fill = float(np.min(array[finite]))
            volume.array = np.where(finite, array, fill).astype(array.dtype, copy=False)
            volume.notes.append(f"{bad} NaN/Inf voxels replaced by the minimum value {fill:g}.")
    if array.dtype == np.bool_:
        volume.array = array.astype(np.uint8)


def read_label(path: str | os.PathLike, reference: Volume) -> Volume:
    """Read a label map that must lie on `reference`'s grid; values become uint8 classes."""
    label = read_volume(path)
    if not label.same_grid(reference):
        raise GridMismatchError(
            f"the label {Path(path).name} ({label.grid_description()}) does not lie on the grid of "
            f"its image {reference.name} ({reference.grid_description()}), or its origin/direction "
            "differ; it was not loaded.")
    array = label.array
    if array.dtype.kind == "f":
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{Path(path).name} holds fractional values; a label map holds whole class numbers.")
    if array.min() < 0 or array.max() > 255:
        raise InputError(
            f"{Path(path).name} holds values {array.min():g}..{array.max():g}; label classes must be 0–255.")
    # Store the label on the reference's exact numbers so writing it back is bit-exact.
    return reference.with_array(array.astype(np.uint8), path=Path(path))


def write_volume(volume: Volume, path: str | os.PathLike) -> Path:
    """Write atomically: a crash mid-write leaves the old file or the complete new one."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in LABEL_SUFFIXES + _PHOTO_SUFFIXES:
        raise UnsupportedFormatError(f"cannot write '{suffix}': use .nii.gz, .nii, .nrrd, .mha or .mhd.")
    if suffix == ".mhd":
        # A MetaImage header points at a separate .raw file: no single-file atomic rename exists.
        _write_sitk(volume.to_sitk(), path)
        return path
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(handle)
        _write_sitk(volume.to_sitk(), Path(temp), shown=path.name)
        os.replace(temp, path)
    except OSError as error:
        # A full disk, a read-only folder, a vanished drive: the old file is untouched.
        raise InputError(f"could not write {path.name} in {path.parent} "
                         f"({error.strerror or error}).") from None
    finally:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
    return path


def _write_sitk(image: sitk.Image, path: Path, shown: str | None = None) -> None:
    try:
        sitk.WriteImage(image, str(path), useCompression=str(path).endswith((".gz", ".nrrd", ".mha")))
    except RuntimeError as error:
        # `shown`: the name the user asked for, not the temp file actually being written
        raise InputError(f"could not write {shown or path.name}: "
                         f"{str(error).strip().splitlines()[-1]}") from None


def write_label(array: np.ndarray, reference: Volume, path: str | os.PathLike) -> Path:
    """Write a label map on the exact grid of the image it belongs to."""
    if array.shape != reference.shape:
        raise GridMismatchError(
            f"label array {array.shape} does not match the image grid {reference.shape} (z, y, x).")
    return write_volume(reference.with_array(np.ascontiguousarray(array, dtype=np.uint8)), path)
