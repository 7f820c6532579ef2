"""Property tests on the loaders: whatever bytes, headers or arrays land in a file, read_volume and
read_label either succeed with a sane volume or raise one of our errors (SegLoopError); never a
SimpleITK RuntimeError, a numpy error or a crash."""
from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.errors import SegLoopError
from app.core.volume import Volume
from app.core.volume_io import MAX_VOXELS, read_label, read_volume, write_volume

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd", ".png", ".jpg"]


def _read_or_our_error(path: Path):
    try:
        volume = read_volume(path)
    except SegLoopError as error:
        assert str(error).strip(), "an error without a message"
        return None
    assert volume.array.ndim == 3 and volume.array.size >= 2
    assert volume.array.size <= MAX_VOXELS
    if volume.array.dtype.kind == "f":
        assert np.isfinite(volume.array).all()
    return volume


def _tiny_nii(compressed: bool = False) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("t.nii.gz" if compressed else "t.nii")
        write_volume(Volume(np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)), path)
        return path.read_bytes()


TINY_NII = _tiny_nii()


@SETTINGS
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_under_any_image_name(data, suffix):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"scan{suffix}"
        path.write_bytes(data)
        _read_or_our_error(path)


@SETTINGS
@given(edits=st.lists(st.tuples(st.integers(0, 351), st.integers(0, 255)), min_size=1, max_size=12),
       cut=st.integers(0, 400), compress=st.booleans())
def test_damaged_nifti_headers(edits, cut, compress):
    raw = bytearray(TINY_NII)
    for offset, value in edits:
        raw[offset] = value
    raw = bytes(raw[: len(raw) - cut]) if cut < len(raw) else bytes(raw)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("t.nii.gz" if compress else "t.nii")
        path.write_bytes(gzip.compress(raw) if compress else raw)
        _read_or_our_error(path)


@SETTINGS
@given(dims=st.lists(st.integers(-3, 70000), min_size=1, max_size=7),
       datatype=st.sampled_from([2, 4, 8, 16, 64, 128, 256, 512, 768, 1024, 2304, 0, 7, 4095]))
def test_nifti_header_fields_claiming_anything(dims, datatype):
    raw = bytearray(TINY_NII)
    struct.pack_into("<8h", raw, 40, len(dims), *(dims + [1] * (7 - len(dims)))) if all(
        -32768 <= x <= 32767 for x in dims) else struct.pack_into("<h", raw, 40, len(dims))
    struct.pack_into("<h", raw, 70, datatype)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "t.nii").write_bytes(bytes(raw))
        _read_or_our_error(Path(d) / "t.nii")


@SETTINGS
@given(sizes=st.lists(st.integers(-5, 10 ** 7), min_size=1, max_size=5),
       element=st.sampled_from(["MET_SHORT", "MET_UCHAR", "MET_FLOAT", "MET_DOUBLE", "MET_BOGUS"]),
       channels=st.integers(0, 5), payload=st.integers(0, 300))
def test_metaimage_headers_claiming_anything(sizes, element, channels, payload):
    header = (f"ObjectType = Image\nNDims = {len(sizes)}\nDimSize = {' '.join(map(str, sizes))}\n"
              f"ElementNumberOfChannels = {channels}\nElementType = {element}\nElementDataFile = LOCAL\n")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.mha"
        path.write_bytes(header.encode("ascii") + bytes(payload))
        _read_or_our_error(path)


ARRAY_DTYPES = [np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64]


@SETTINGS
@given(shape=st.lists(st.integers(1, 6), min_size=2, max_size=4),
       dtype=st.sampled_from(ARRAY_DTYPES), suffix=st.sampled_from([".nii.gz", ".nrrd", ".mha"]),
       specials=st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30]), max_size=4),
       seed=st.integers(0, 2 ** 16))
def test_random_arrays_written_by_sitk(shape, dtype, suffix, specials, seed):
    rng = np.random.default_rng(seed)
    array = (rng.normal(0, 100, shape)).astype(dtype) if np.dtype(dtype).kind == "f" else \
        rng.integers(0, 200, shape).astype(dtype)
    if np.dtype(dtype).kind == "f":
        flat = array.reshape(-1)
        for k, value in enumerate(specials[: flat.size]):
            flat[k] = value
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"a{suffix}"
        sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
        volume = _read_or_our_error(path)
        if volume is not None:
            # the one path that may succeed on a 4D array is a single time point
            assert volume.array.size == array.size
            try:
                label = read_label(path, volume)
            except SegLoopError:
                return
            assert label.array.dtype == np.uint8 and label.array.shape == volume.array.shape
