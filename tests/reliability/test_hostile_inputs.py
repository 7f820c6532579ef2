"""One corpus of hostile files through the core readers and through the GUI's open path: each bad
file gives our error with a sentence naming the problem, odd-but-valid files open, and the app
keeps working afterwards (the next good file opens)."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk

from app.core.errors import SegLoopError
from app.core.volume_io import read_label, read_volume
from tests.reliability.corpus import IMAGE_CORPUS, LABEL_CORPUS, SAMPLE, label_file


@pytest.mark.parametrize("kind", list(IMAGE_CORPUS))
def test_read_volume_on_the_corpus(tmp_path, kind):
    build, error, phrase = IMAGE_CORPUS[kind]
    path = build(tmp_path)
    if error is None:
        volume = read_volume(path)
        assert volume.array.size >= 2 and np.isfinite(volume.array.astype(np.float64)).all()
        assert not phrase or any(phrase in note for note in volume.notes)
        return
    with pytest.raises(error) as caught:
        read_volume(path)
    message = str(caught.value)
    assert phrase in message and "Traceback" not in message and len(message.splitlines()) == 1


def test_huge_declared_sizes_are_refused_without_allocating(tmp_path):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for kind in ("huge dims, tiny .nii", "huge dims, tiny .nii.gz", "huge dims, tiny .mha", "huge dims, tiny .nrrd"):
        build, error, _ = IMAGE_CORPUS[kind]
        folder = tmp_path / kind.replace(" ", "_").replace(",", "")
        folder.mkdir()
        with pytest.raises(error):
            read_volume(build(folder))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"peak RSS grew {grown_mb:.0f} MB reading 4 tiny files"


def test_nan_in_nifti_reaches_us_as_zero(tmp_path):
    # Documented limit: ITK's NIfTI reader maps NaN to 0 itself, so there is nothing left to report.
    array = np.full((3, 4, 5), np.nan, np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "nan.nii.gz"))
    raw = gzip.decompress((tmp_path / "nan.nii.gz").read_bytes())
    assert np.isnan(np.frombuffer(raw[352:372], np.float32)).all()      # the file holds NaN
    volume = read_volume(tmp_path / "nan.nii.gz")
    assert np.isfinite(volume.array).all()


def test_16bit_and_2_voxel_values_survive(tmp_path):
    deep = read_volume(IMAGE_CORPUS["16-bit PNG"][0](tmp_path))
    assert deep.array.dtype == np.uint16 and int(deep.array.max()) == (16 * 20 - 1) * 181
    two = read_volume(IMAGE_CORPUS["2-voxel volume"][0](tmp_path))
    assert two.array.ravel().tolist() == [10, 20]


@pytest.mark.parametrize("kind", list(LABEL_CORPUS))
def test_read_label_on_the_corpus(tmp_path, kind):
    image = read_volume(SAMPLE)
    path = label_file(tmp_path, image, kind)
    _, error, phrase = LABEL_CORPUS[kind]
    if error is None:
        label = read_label(path, image)
        assert label.array.dtype == np.uint8 and label.same_grid(image)
        return
    with pytest.raises(error, match=phrase):
        read_label(path, image)


# --- the same corpus through the GUI: message shown, app alive, next file opens -------------------
GUI_KINDS = [k for k in IMAGE_CORPUS if k not in ("huge dims, tiny .nrrd", "truncated raw .mha",
                                                   "wrong NRRD magic", "empty folder")]


def test_gui_open_file_on_the_corpus(window, tmp_path):
    results = {}
    for number, kind in enumerate(GUI_KINDS):
        build, error, phrase = IMAGE_CORPUS[kind]
        folder = tmp_path / f"k{number}"
        folder.mkdir()
        window.last_error = None
        opened = window.open_file(build(folder))
        results[kind] = (opened, window.last_error)
        if error is None:
            assert opened, (kind, window.last_error)
            assert window.case is not None and window.case.image.path.parent == folder
        else:
            assert opened is False, kind
            assert phrase in (window.last_error or ""), (kind, window.last_error)
            assert "Traceback" not in window.last_error
        assert window.isVisible()
    # after all of that, a good case still opens and the store still answers
    window.last_error = None
    assert window.open_file(SAMPLE), window.last_error
    assert window.case.name == "sts002_mr"
    assert window.store.find_by_image(SAMPLE) is not None


def test_gui_label_outside_the_table_and_bad_labels(window, tmp_path):
    assert window.open_file(SAMPLE), window.last_error
    image = window.case.image
    for kind, (_, error, phrase) in LABEL_CORPUS.items():
        folder = tmp_path / kind.split()[-1].strip("()")
        folder.mkdir(exist_ok=True)
        window.last_error = None
        shown = window.open_label(label_file(folder, image, kind))
        if error is None:
            assert shown, window.last_error
            assert int(window.slice_view.displayed_overlay.max()) > 0 or window.last_error is None
        else:
            assert shown is False and phrase in window.last_error, (kind, window.last_error)
    assert window.isVisible() and window.case.name == "sts002_mr"
