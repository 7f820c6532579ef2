"""Export for retraining: exact geometry read back, a valid nnU-Net v2 dataset.json, logs and CSV,
never overwriting silently, and a crash leaving the old export (or nothing) in place."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from app.core import export as export_module
from app.core.case_store import CaseStore
from app.core.consensus import majority_vote
from app.core.dataset_json import LabelTableError, channel_name, label_names, parse_label_table
from app.core.errors import JobCancelled
from app.core.export import ExportError, export_job
from app.core.export_folder import ExportExistsError, recover_interrupted
from app.core.interaction_log import LogWriter
from app.core.jobs import CancelToken, run_job
from app.core.volume_io import read_label, read_volume
from models.training.dataset import list_cases, load_case, read_array

DATA = Path(__file__).resolve().parents[2] / "data_source"
# 30 degrees about z, then 10 about x: a direction no axis-aligned shortcut gets right
_C, _S, _c, _s = np.cos(np.pi / 6), np.sin(np.pi / 6), np.cos(np.pi / 18), np.sin(np.pi / 18)
ROTATED = tuple((np.array([[_C, -_S, 0], [_S, _C, 0], [0, 0, 1]])
                 @ np.array([[1, 0, 0], [0, _c, -_s], [0, _s, _c]])).ravel())


def write_image(path: Path, array, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=None):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    sitk.WriteImage(image, str(path), useCompression=str(path).endswith((".gz", ".nrrd")))
    return path


def blob(shape, centre, radius, value=1):
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    inside = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 < radius ** 2
    return (inside * value).astype(np.uint8)


@pytest.fixture
def setup(tmp_path):
    """A results folder whose store holds three done cases (one generated anisotropic + rotated,
    one NRRD, one bundled with only its reference label) and one new case."""
    src, results = tmp_path / "src", tmp_path / "results"
    src.mkdir()
    rng = np.random.default_rng(0)
    shape = (6, 20, 24)
    aniso = write_image(src / "aniso.nii.gz", rng.integers(-900, 900, shape).astype(np.int16),
                        spacing=(0.7, 0.9, 3.3), origin=(10.5, -20.25, 5.0), direction=ROTATED)
    aniso_label = blob(shape, (3, 10, 12), 5)
    nrrd = write_image(src / "mr scan.nrrd", rng.integers(0, 500, (5, 16, 18)).astype(np.int16),
                       spacing=(1.2, 1.2, 4.0), origin=(-3.0, 2.0, 1.0))
    nrrd_label = blob((5, 16, 18), (2, 8, 9), 4)
    store = CaseStore(results / "segloop.db")
    labels = results / "labels"
    labels.mkdir()
    a = store.add_case(aniso)
    write_label_file(labels / "aniso.nii.gz", aniso_label, aniso)
    store.set_label(a.id, labels / "aniso.nii.gz", status="done")
    store.record_work(a.id, clicks=7, seconds=42.5, model_used="unet", annotator="dr_a")
    b = store.add_case(nrrd)
    write_label_file(labels / "mr scan.nii.gz", nrrd_label, nrrd)
    store.set_label(b.id, labels / "mr scan.nii.gz", status="done")
    c = store.add_case(DATA / "sts002_mr.nii.gz", DATA / "sts002_mr_label.nii.gz")
    store.set_status(c.id, "done")
    store.add_case(DATA / "btp10_pre_t1c.nii.gz")  # status new: not exported
    yield {"store": store, "results": results, "out": tmp_path / "Dataset501_Test", "src": src,
           "labels": {"aniso": aniso_label, "mr_scan": nrrd_label,
                      "sts002_mr": read_label(DATA / "sts002_mr_label.nii.gz",
                                              read_volume(DATA / "sts002_mr.nii.gz")).array},
           "images": {"aniso": aniso, "mr_scan": nrrd, "sts002_mr": DATA / "sts002_mr.nii.gz"}}
    store.close()


def write_label_file(path, array, image_path):
    from app.core.volume_io import write_label

    write_label(array, read_volume(image_path), path)


def test_exported_dataset_reads_back_with_identical_arrays_and_geometry(setup):
    summary = run_job(export_job(setup["store"], setup["out"]))
    out = setup["out"]
    assert summary.exported == ["aniso", "mr_scan", "sts002_mr"] and summary.skipped == []
    for case, source in setup["images"].items():
        original = read_volume(source)
        image = read_volume(out / "imagesTr" / f"{case}_0000.nii.gz")
        label = read_label(out / "labelsTr" / f"{case}.nii.gz", image)
        assert np.array_equal(image.array, original.array) and image.array.dtype == original.array.dtype
        if source.name.endswith(".nii.gz"):  # copied: bit-exact geometry
            assert image.spacing == original.spacing and image.origin == original.origin
            assert image.direction == original.direction
        else:  # NRRD re-written as NIfTI, whose header stores float32 geometry
            assert image.spacing == pytest.approx(original.spacing, rel=1e-7)
            assert image.origin == pytest.approx(original.origin, rel=1e-7)
            assert image.direction == pytest.approx(original.direction, abs=1e-7)
            assert image.spacing != original.spacing  # proves this branch really re-wrote the file
        assert np.array_equal(label.array, setup["labels"][case])
        raw_label = sitk.ReadImage(str(out / "labelsTr" / f"{case}.nii.gz"))
        assert raw_label.GetDirection() == pytest.approx(original.direction, abs=1e-6)
        assert raw_label.GetOrigin() == pytest.approx(original.origin, abs=1e-5)
    aniso = read_volume(out / "imagesTr" / "aniso_0000.nii.gz")
    assert aniso.spacing == pytest.approx((0.7, 0.9, 3.3), rel=1e-6)
    assert aniso.direction == pytest.approx(ROTATED, abs=1e-6)
    # and through the training reader (models/training) that `train` uses
    cases = list_cases(out)
    assert [c[0] for c in cases] == ["aniso", "mr_scan", "sts002_mr"]
    for name, image_path, label_path in cases:
        assert np.array_equal(read_array(label_path), setup["labels"][name])
        assert np.array_equal(read_array(image_path), read_volume(setup["images"][name]).array)
    loaded = load_case("sts002_mr", cases[2][1], cases[2][2], input_size=32)
    assert loaded.tags.sum() == int(setup["labels"]["sts002_mr"].reshape(35, -1).any(axis=1).sum())


def test_dataset_json_is_what_nnunet_v2_expects(setup):
    run_job(export_job(setup["store"], setup["out"]))
    data = json.loads((setup["out"] / "dataset.json").read_text(encoding="utf-8"))
    assert {"channel_names", "labels", "numTraining", "file_ending"} <= set(data)
    modalities = {read_volume(p).modality for p in setup["images"].values()}
    assert modalities == {"CT", "MR"}  # HU-like generated image + MR: nnU-Net must z-score them
    assert data["channel_names"] == {"0": "mixed"}
    assert data["labels"] == {"background": 0, "tumour": 1}
    assert isinstance(data["numTraining"], int) and not isinstance(data["numTraining"], bool)
    images = sorted((setup["out"] / "imagesTr").iterdir())
    labels = sorted((setup["out"] / "labelsTr").iterdir())
    assert data["numTraining"] == len(images) == len(labels) == 3
    assert data["file_ending"] == ".nii.gz"
    assert all(p.name.endswith("_0000" + data["file_ending"]) for p in images)
    assert [p.name[: -len("_0000.nii.gz")] for p in images] == [p.name[: -len(".nii.gz")] for p in labels]
    for p in labels:  # every label value is declared, as nnU-Net's integrity check demands
        assert set(np.unique(read_array(p))) <= set(data["labels"].values())


def test_summary_csv_and_interaction_logs_come_along(setup):
    image = setup["images"]["aniso"].resolve()
    session = setup["results"] / "sessions" / "aniso-1234"
    log = LogWriter(session / "log-1.jsonl", header={"image": str(image), "format": 1})
    log.write({"type": "action", "step": 1, "kind": "click"})
    log.close()
    (session / "log-1.initial.nii.gz").write_bytes(b"sidecar")
    (session / "log-1.blobs").mkdir()
    (session / "log-1.blobs" / "step-000001.npz").write_bytes(b"blob")
    (session / "state.json").write_text("{}", encoding="utf-8")  # autosave state: not a log
    other = LogWriter(setup["results"] / "x.jsonl", header={"image": "/elsewhere/other.nii.gz"})
    other.close()

    summary = run_job(export_job(setup["store"], setup["out"]))
    logs = setup["out"] / "logs"
    assert summary.logs_copied == 1
    assert sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*")) == [
        "aniso", "aniso/log-1.blobs", "aniso/log-1.blobs/step-000001.npz", "aniso/log-1.initial.nii.gz",
        "aniso/log-1.jsonl"]
    with open(setup["out"] / "summary.csv", encoding="utf-8", newline="") as stream:
        rows = {r["case"]: r for r in csv.DictReader(stream)}
    assert set(rows) == {"aniso", "mr_scan", "sts002_mr"}
    assert rows["aniso"]["annotator"] == "dr_a" and rows["aniso"]["clicks"] == "7"
    assert float(rows["aniso"]["seconds_spent"]) == 42.5 and rows["aniso"]["model_used"] == "unet"
    assert rows["aniso"]["status"] == "done" and rows["aniso"]["label_source"] == "annotated"
    assert rows["sts002_mr"]["label_source"] == "reference"
    assert rows["mr_scan"]["source_name"] == "mr scan"


def test_an_existing_export_is_not_overwritten_without_overwrite(setup):
    store, out = setup["store"], setup["out"]
    run_job(export_job(store, out))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ExportExistsError, match="--overwrite"):
        run_job(export_job(store, out))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # with overwrite: the new content replaces the old, nothing of the old remains
    case = next(r for r in store.list_cases() if r.name == "aniso")
    store.set_status(case.id, "in progress")
    run_job(export_job(store, out, overwrite=True))
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["mr_scan.nii.gz", "sts002_mr.nii.gz"]
    assert json.loads((out / "dataset.json").read_text(encoding="utf-8"))["numTraining"] == 2
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("had_old_export", [True, False])
def test_a_crash_mid_export_leaves_the_old_export_and_no_half_written_one(setup, monkeypatch, had_old_export):
    store, out = setup["store"], setup["out"]
    if had_old_export:
        run_job(export_job(store, out))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real, calls = export_module._export_case, []

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # after the first case is written, the second one crashes
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, "_export_case", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_job(export_job(store, out, overwrite=True))
    assert len(calls) == 2
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert out.exists() == had_old_export
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_cancel_leaves_nothing(setup):
    token = CancelToken()
    job = export_job(setup["store"], setup["out"], cancel=token)
    next(job)
    token.cancel()
    with pytest.raises(JobCancelled):
        run_job(job)
    assert list(setup["out"].parent.glob("*Dataset501*")) == []
    assert not any(p.name.startswith(".") for p in setup["out"].parent.iterdir())


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_export_is_cleaned_up_and_a_half_swapped_one_restored(tmp_path):
    out, pid = tmp_path / "Dataset1_X", _dead_pid()
    old = tmp_path / f".Dataset1_X.old-{pid}-abcd"
    (old / "imagesTr").mkdir(parents=True)
    (old / "dataset.json").write_text("{}", encoding="utf-8")
    partial = tmp_path / f".Dataset1_X.partial-{pid}-efgh"
    partial.mkdir()
    (partial / "junk").write_bytes(b"half")
    recover_interrupted(out)
    assert (out / "dataset.json").read_text(encoding="utf-8") == "{}"
    assert not old.exists() and not partial.exists()


def test_a_label_on_another_grid_is_reported_clearly_and_nothing_is_exported(setup):
    store = setup["store"]
    case = next(r for r in store.list_cases() if r.name == "mr scan")
    wrong = setup["src"] / "wrong.nii.gz"
    write_image(wrong, np.zeros((5, 16, 18), np.uint8), spacing=(1.0, 1.0, 1.0))
    store.set_label(case.id, wrong)
    with pytest.raises(ExportError) as error:
        run_job(export_job(store, setup["out"]))
    message = str(error.value)
    assert "mr scan" in message and "grid" in message and "--skip-invalid" in message
    assert not setup["out"].exists()
    summary = run_job(export_job(store, setup["out"], skip_invalid=True))
    assert summary.exported == ["aniso", "sts002_mr"] and summary.skipped[0][0] == "mr scan"
    assert json.loads((setup["out"] / "dataset.json").read_text(encoding="utf-8"))["numTraining"] == 2


def test_consensus_of_annotators_and_a_label_table(setup, tmp_path):
    store = setup["store"]
    image = setup["images"]["aniso"]
    volume = read_volume(image)
    masks = [blob(volume.shape, (3, 10, 12), r) + blob(volume.shape, (3, 10, 12), 2) for r in (4, 5, 6)]
    case = next(r for r in store.list_cases() if r.name == "aniso")
    store.set_label(case.id, None)
    for i, mask in enumerate(masks):
        write_label_file(tmp_path / f"ann{i}.nii.gz", mask, image)
        store.add_annotation(case.id, f"reader{i}", tmp_path / f"ann{i}.nii.gz")
    with pytest.raises(ExportError, match="consensus"):
        run_job(export_job(store, setup["out"], cases=[store.get(case.id)]))
    summary = run_job(export_job(store, setup["out"], cases=[store.get(case.id)], consensus="majority",
                                 label_table={1: "liver", 2: "tumour"}))
    exported = read_label(setup["out"] / "labelsTr" / "aniso.nii.gz", volume).array
    assert np.array_equal(exported, majority_vote(masks)) and set(np.unique(exported)) == {0, 1, 2}
    assert summary.labels == {"background": 0, "liver": 1, "tumour": 2}
    with open(setup["out"] / "summary.csv", encoding="utf-8") as stream:
        row = next(csv.DictReader(stream))
    assert row["annotator"] == "reader0+reader1+reader2" and row["label_source"] == "majority of 3 annotators"


def test_nrrd_labels_for_slicer(setup):
    run_job(export_job(setup["store"], setup["out"], label_format="nrrd"))
    out = setup["out"]
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["aniso.nrrd", "mr_scan.nrrd", "sts002_mr.nrrd"]
    data = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    assert data["file_ending"] == ".nii.gz" and data["label_file_ending"] == ".nrrd"
    image = read_volume(out / "imagesTr" / "aniso_0000.nii.gz")
    assert np.array_equal(read_label(out / "labelsTr" / "aniso.nrrd", image).array, setup["labels"]["aniso"])


def test_label_names_fill_gaps_and_check_tables():
    assert label_names({0, 1}) == {"background": 0, "tumour": 1}
    assert label_names({0, 2}) == {"background": 0, "class_1": 1, "class_2": 2}  # no gap for nnU-Net
    assert label_names({0, 1, 2}, parse_label_table("1=liver, 2=tumour")) == \
        {"background": 0, "liver": 1, "tumour": 2}
    with pytest.raises(LabelTableError, match="missing: 2"):
        label_names({0, 1, 2}, {1: "liver"})
    assert [channel_name(m) for m in (["CT", "CT"], ["MR"], ["CT", "MR"], ["unknown"])] == \
        ["CT", "MR", "mixed", "mixed"]
    for bad in ("liver", "1=liver,1=kidney", "0=air", "300=x", "1=a,2=a"):
        with pytest.raises(LabelTableError):
            parse_label_table(bad)


def test_nothing_to_export_is_a_clear_error(tmp_path):
    with CaseStore(tmp_path / "segloop.db") as store:
        with pytest.raises(ExportError, match="no cases with status 'done'"):
            run_job(export_job(store, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
