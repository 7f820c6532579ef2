"""Batch pre-labelling: bad files reported without stopping the batch, statuses, cancel and rerun."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from app.core import batch
from app.core.batch import BatchCase, format_duration, prelabel_job
from app.core.case_discovery import discover_cases
from app.core.case_store import CaseStore
from app.core.errors import ModelFileError
from app.core.jobs import CancelToken, run_job
from app.core.segmentation import segment_volume
from app.core.volume_io import read_label, read_volume

MODEL = "unet"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_image(path: Path, seed: int, shape=(4, 40, 48), spacing=(0.8, 0.8, 3.0)) -> Path:
    """A small MR-like volume with a bright blob, so the model has something to look at."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    blob = ((y - shape[1] / 2) ** 2 + (x - shape[2] / 2 - seed) ** 2) < (6 + seed) ** 2
    array = (200 + 40 * rng.standard_normal(shape) + 600 * blob).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin((seed * 1.5, -10.0, 4.0))
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


@pytest.fixture
def folder(tmp_path):
    data = tmp_path / "cases"
    data.mkdir()
    for i, name in enumerate(("alpha", "bravo", "delta")):
        make_image(data / f"{name}.nii.gz", seed=i)
    # a download cut short: a real gzip NIfTI truncated to half its bytes
    whole = make_image(data / "charlie.nii.gz", seed=3).read_bytes()
    (data / "charlie.nii.gz").write_bytes(whole[: len(whole) // 2])
    return data


@pytest.fixture
def store(tmp_path):
    with CaseStore(tmp_path / "results" / "segloop.db") as s:
        yield s


def test_one_corrupt_file_is_reported_and_the_others_are_prelabelled(folder, store, tmp_path):
    records = store.add_cases(discover_cases(folder))
    out = tmp_path / "out"
    summary = run_job(prelabel_job(records, MODEL, out, store=store, device="cpu"))

    assert summary.done == ["alpha", "bravo", "delta"]
    assert [case for case, _ in summary.failed] == ["charlie"]
    assert "charlie.nii.gz" in summary.failed[0][1]
    assert summary.skipped == [] and not summary.cancelled
    assert sorted(p.name for p in out.iterdir()) == ["alpha.nii.gz", "bravo.nii.gz", "delta.nii.gz"]

    by_name = {r.name: r for r in store.list_cases()}
    for name in ("alpha", "bravo", "delta"):
        assert by_name[name].status == "pre-labelled"
        assert by_name[name].label_path == (out / f"{name}.nii.gz").resolve()
        assert by_name[name].model_used == MODEL
    assert by_name["charlie"].status == "new" and by_name["charlie"].label_path is None

    # the file is the model's proposal, on the image's exact grid
    volume = read_volume(folder / "bravo.nii.gz")
    written = read_label(out / "bravo.nii.gz", volume)
    direct = segment_volume(volume, MODEL, device="cpu").label.array
    assert np.array_equal(written.array, direct)
    raw = sitk.ReadImage(str(out / "bravo.nii.gz"))
    assert raw.GetSpacing() == pytest.approx(volume.spacing) and raw.GetOrigin() == pytest.approx(volume.origin)


def test_cancel_mid_batch_then_rerun_finishes_the_rest_and_skips_the_finished(folder, tmp_path):
    (folder / "charlie.nii.gz").unlink()
    cases = discover_cases(folder)
    out, token = tmp_path / "out", CancelToken()
    job = prelabel_job(cases, MODEL, out, device="cpu", cancel=token)
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            first = stop.value
            break
        if progress.message.startswith("case 2 of 3"):
            token.cancel()  # the user presses Cancel while the second case starts
    assert first.cancelled and first.done == ["alpha"]
    assert first.not_started == ["bravo", "delta"]
    assert [p.name for p in out.iterdir()] == ["alpha.nii.gz"]
    finished = (out / "alpha.nii.gz").stat().st_mtime_ns

    second = run_job(prelabel_job(cases, MODEL, out, device="cpu"))
    assert second.done == ["bravo", "delta"] and second.failed == []
    assert [case for case, _ in second.skipped] == ["alpha"]
    assert (out / "alpha.nii.gz").stat().st_mtime_ns == finished
    assert sorted(p.name for p in out.iterdir()) == ["alpha.nii.gz", "bravo.nii.gz", "delta.nii.gz"]


def test_cancel_inside_a_case_writes_nothing_for_it(folder, tmp_path):
    token, out = CancelToken(), tmp_path / "out"
    job = prelabel_job([("alpha", folder / "alpha.nii.gz")], MODEL, out, device="cpu", cancel=token)
    messages = []
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            summary = stop.value
            break
        messages.append(progress.message)
        if "slice" in progress.message:
            token.cancel()
    assert any("case 1 of 1: alpha" in m and "slice" in m for m in messages)
    assert summary.cancelled and summary.done == [] and summary.not_started == ["alpha"]
    assert list(out.iterdir()) == []


def test_a_damaged_or_misplaced_earlier_result_is_redone(folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "alpha.nii.gz").write_bytes(b"truncated")
    wrong = sitk.GetImageFromArray(np.zeros((2, 5, 5), np.uint8))  # another grid
    sitk.WriteImage(wrong, str(out / "bravo.nii.gz"))
    cases = [("alpha", folder / "alpha.nii.gz"), ("bravo", folder / "bravo.nii.gz")]
    summary = run_job(prelabel_job(cases, MODEL, out, device="cpu"))
    assert summary.done == ["alpha", "bravo"] and summary.skipped == []
    for name in ("alpha", "bravo"):
        assert read_label(out / f"{name}.nii.gz", read_volume(folder / f"{name}.nii.gz")).shape == (4, 40, 48)


def test_unexpected_error_in_one_case_is_reported_short_and_logged(folder, tmp_path, monkeypatch, caplog):
    from app.core import segmentation

    real = segmentation.segment_volume_job

    def flaky(volume, *args, **kwargs):
        if volume.name == "bravo":
            raise RuntimeError("CUDA error: device-side assert\nlong trace")
        return real(volume, *args, **kwargs)

    monkeypatch.setattr(segmentation, "segment_volume_job", flaky)
    cases = [(n, folder / f"{n}.nii.gz") for n in ("alpha", "bravo", "delta")]
    with caplog.at_level(logging.ERROR, logger="app.core.batch"):
        summary = run_job(prelabel_job(cases, MODEL, tmp_path / "out", device="cpu"))
    assert summary.done == ["alpha", "delta"]
    assert summary.failed[0][0] == "bravo"
    reason = summary.failed[0][1]
    assert "RuntimeError" in reason and "\n" not in reason
    assert any("bravo" in r.getMessage() for r in caplog.records)


def test_annotated_cases_are_skipped_and_keep_their_label(folder, store, tmp_path):
    alpha = store.add_case(folder / "alpha.nii.gz")
    bravo = store.add_case(folder / "bravo.nii.gz")
    mine = tmp_path / "mine.nii.gz"
    store.set_label(alpha.id, mine, status="done")
    store.set_status(bravo.id, "in progress")
    summary = run_job(prelabel_job([alpha, bravo], MODEL, tmp_path / "out", store=store, device="cpu"))
    assert summary.done == [] and [c for c, _ in summary.skipped] == ["alpha", "bravo"]
    assert store.get(alpha.id).label_path == mine.resolve() and store.get(alpha.id).status == "done"
    assert store.get(bravo.id).status == "in progress"
    assert not (tmp_path / "out" / "alpha.nii.gz").exists()


def test_a_rerun_marks_an_already_written_case_in_the_store(folder, store, tmp_path):
    out = tmp_path / "out"
    run_job(prelabel_job([("alpha", folder / "alpha.nii.gz")], MODEL, out, device="cpu"))
    record = store.add_case(folder / "alpha.nii.gz")
    summary = run_job(prelabel_job([record], MODEL, out, store=store, device="cpu"))
    assert [c for c, _ in summary.skipped] == ["alpha"]
    assert store.get(record.id).status == "pre-labelled"
    assert store.get(record.id).label_path == (out / "alpha.nii.gz").resolve()


def test_results_never_overwrite_the_images_or_each_other(folder, tmp_path):
    cases = [BatchCase("alpha", folder / "alpha.nii.gz"),
             BatchCase("twin", folder / "bravo.nii.gz"), BatchCase("twin", folder / "delta.nii.gz")]
    before = (folder / "alpha.nii.gz").read_bytes()
    summary = run_job(prelabel_job(cases, MODEL, folder, device="cpu"))  # out = the images' folder
    assert summary.done == []
    reasons = dict(summary.failed)
    assert "overwrite the image" in reasons["alpha"]
    assert "named 'twin'" in reasons["twin"] and len(summary.failed) == 3
    assert (folder / "alpha.nii.gz").read_bytes() == before


def test_an_unknown_model_fails_once_before_any_case(folder, tmp_path):
    with pytest.raises(ModelFileError):
        run_job(prelabel_job([("alpha", folder / "alpha.nii.gz")], "no-such-model", tmp_path / "o"))


def test_progress_counts_cases_and_gives_time_left(folder, tmp_path):
    (folder / "charlie.nii.gz").unlink()
    seen = []
    run_job(prelabel_job(discover_cases(folder), MODEL, tmp_path / "out", device="cpu"), seen.append)
    assert {p.total for p in seen} == {3}
    assert [p.done for p in seen] == sorted(p.done for p in seen) and seen[-1].done == 3
    assert any(p.message.startswith("case 3 of 3: delta") and "ETA" in p.message for p in seen)
    assert not any("ETA" in p.message for p in seen if p.message.startswith("case 1 of 3"))


def test_gui_selections_and_default_folder(folder, store, tmp_path):
    a, b, c = (store.add_case(folder / f"{n}.nii.gz") for n in ("alpha", "bravo", "delta"))
    store.set_status(b.id, "done")
    assert [r.name for r in batch.select_cases(store, "all")] == ["alpha", "bravo", "delta"]
    assert [r.name for r in batch.select_cases(store, "not done")] == ["alpha", "delta"]
    assert [r.name for r in batch.select_cases(store, "selection", [c, b.id])] == ["delta", "bravo"]
    assert batch.default_out_dir(tmp_path, "unet") == tmp_path / "prelabels" / "unet"
    assert batch.default_out_dir(tmp_path, "/w/my model.pt") == tmp_path / "prelabels" / "my_model"


def test_format_duration():
    assert format_duration(4.4) == "4 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(3 * 3600 + 61) == "3 h 01 min"
    assert batch.output_path("x", "c1") == Path("x") / "c1.nii.gz"
