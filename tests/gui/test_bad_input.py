"""Bad input in the GUI: the user gets the core's sentence, the app stays up, the open case stays open."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PyQt5.QtWidgets import QMessageBox

from app.core.volume import Volume
from app.core.volume_io import write_volume
from tests.gui.helpers import DATA, assert_same, open_case, sample_copy


def _zero_byte(tmp_path: Path) -> Path:
    path = tmp_path / "empty.nii.gz"
    path.write_bytes(b"")
    return path


def _truncated_gz(tmp_path: Path) -> Path:
    data = (DATA / "sts002_mr.nii.gz").read_bytes()
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def _text_as_nii(tmp_path: Path) -> Path:
    path = tmp_path / "notes.nii"
    path.write_text("patient list\nnot an image at all\n" * 20, encoding="utf-8")
    return path


def _colour_png(tmp_path: Path) -> Path:
    rgb = np.zeros((32, 48, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, np.arange(48, dtype=np.uint8)[None, :], 30
    path = tmp_path / "photo.png"
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(path))
    return path


def _four_d(tmp_path: Path) -> Path:
    frames = [sitk.GetImageFromArray(np.full((4, 5, 6), t, dtype=np.int16)) for t in range(3)]
    path = tmp_path / "series4d.nii.gz"
    sitk.WriteImage(sitk.JoinSeries(frames), str(path))
    return path


def _label_on_other_grid(tmp_path: Path) -> Path:
    image = Volume(np.zeros((6, 20, 20), np.int16), spacing=(1.0, 1.0, 2.0))
    write_volume(image, tmp_path / "mismatch.nii.gz")
    label = Volume(np.ones((6, 20, 21), np.uint8), spacing=(1.0, 1.0, 2.0))
    write_volume(label, tmp_path / "mismatch_label.nii.gz")
    return tmp_path / "mismatch.nii.gz"


BAD_FILES = {
    "zero-byte file": (_zero_byte, "is empty (0 bytes)"),
    "truncated .nii.gz": (_truncated_gz, "not a complete gzip file"),
    "text file renamed .nii": (_text_as_nii, "is not a readable .nii image"),
    "colour PNG": (_colour_png, "is a colour image"),
    "4D NIfTI": (_four_d, "is a 4D image"),
    "label on another grid": (_label_on_other_grid, "does not lie on the grid"),
}


@pytest.fixture
def open_sts(window):
    open_case(window, "sts002_ct")
    return window, window.slice_view.displayed_image.copy(), window.slice_view.displayed_overlay.copy()


def _assert_still_showing(window, image_before, overlay_before, cases_before):
    assert window.case.name == "sts002_ct"
    assert_same(window.slice_view.displayed_image, image_before)
    assert_same(window.slice_view.displayed_overlay, overlay_before)
    assert window.case_list.row_texts() == cases_before
    assert window.case_list.currentItem().text().startswith("sts002_ct")
    assert window.isVisible()


def _error_boxes(window):
    return [w for w in window.findChildren(QMessageBox) if w.isVisible()]


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_file_shows_its_message_and_keeps_the_open_case(open_sts, tmp_path, kind):
    window, image_before, overlay_before = open_sts
    cases_before = window.case_list.row_texts()
    make, expected = BAD_FILES[kind]
    assert window.open_file(make(tmp_path)) is False
    assert expected in window.last_error
    boxes = _error_boxes(window)
    assert boxes and boxes[-1].text() == window.last_error and not boxes[-1].isModal()
    assert "Traceback" not in window.last_error
    _assert_still_showing(window, image_before, overlay_before, cases_before)


def test_label_file_on_another_grid_is_refused_and_the_overlay_kept(open_sts, tmp_path):
    window, image_before, overlay_before = open_sts
    other = Volume(np.ones((48, 143, 160), np.uint8), spacing=(0.977, 0.977, 3.27))
    path = write_volume(other, tmp_path / "wrong_label.nii.gz")
    assert window.open_label(path) is False
    assert "does not lie on the grid" in window.last_error
    _assert_still_showing(window, image_before, overlay_before, window.case_list.row_texts())


def test_unreadable_folder_is_reported(open_sts, tmp_path, monkeypatch):
    window, image_before, overlay_before = open_sts
    cases_before = window.case_list.row_texts()
    locked = tmp_path / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path="."):  # chmod 000 does not stop root, so refuse the way the OS would
        if Path(path) == locked.resolve():
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert window.open_folder(locked) is False
    assert "cannot be read (permission denied)" in window.last_error
    _assert_still_showing(window, image_before, overlay_before, cases_before)


def test_missing_and_empty_folders_are_reported(open_sts, tmp_path):
    window, image_before, overlay_before = open_sts
    assert window.open_folder(tmp_path / "nowhere") is False
    assert "does not exist" in window.last_error
    assert window.open_folder(tmp_path) is False
    assert "holds no image" in window.last_error
    _assert_still_showing(window, image_before, overlay_before, window.case_list.row_texts())


def test_a_case_that_broke_on_disk_keeps_the_previous_case_and_highlight(open_sts, tmp_path):
    window, image_before, overlay_before = open_sts
    image_path = sample_copy(tmp_path)
    assert window.open_folder(tmp_path)  # adds and opens the copy of sts002_mr
    open_case(window, "sts002_ct")
    with gzip.open(image_path, "rb") as f:
        payload = f.read()
    image_path.write_bytes(gzip.compress(payload)[:100])
    copy_id = next(r.id for r in window.store.list_cases() if r.image_path == image_path.resolve())
    window.case_list.select_case(copy_id)
    assert "not a complete gzip file" in window.last_error
    _assert_still_showing(window, image_before, overlay_before, window.case_list.row_texts())


def test_good_file_and_folder_are_added_to_the_list_and_store(window, tmp_path):
    image_path = sample_copy(tmp_path)
    assert window.open_file(image_path)
    assert window.case.label_source == "reference"  # its _label file was paired
    record = window.store.find_by_image(image_path)
    assert record is not None and record.reference_label_path == (tmp_path / "sts002_mr_label.nii.gz").resolve()
    assert window.case_list.current_case_id() == record.id
    assert len(window.case_list.row_texts()) == 5


def test_opening_a_file_that_is_already_a_case_selects_that_case(window):
    before = window.case_list.row_texts()
    assert window.open_file(DATA / "lits117_ct.nii.gz")
    assert window.case.name == "lits117_ct" and window.case.label_source == "reference"
    assert window.case_list.row_texts() == before
    assert window.case_list.currentItem().text().startswith("lits117_ct")
