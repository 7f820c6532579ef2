"""`prelabel` and `export` from the command line (subprocesses, as a user runs them)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from app.core.case_store import CaseStore
from app.core.volume_io import read_label, read_volume, write_label

REPO = Path(__file__).resolve().parents[1]


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, str(REPO / "main.py"), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def _image(path: Path, seed: int, shape=(3, 32, 36)) -> Path:
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray(rng.integers(0, 800, shape).astype(np.int16))
    image.SetSpacing((0.9, 0.9, 2.5))
    image.SetOrigin((float(seed), 0.0, 0.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


def test_prelabel_writes_the_good_cases_and_exits_nonzero_when_one_failed(tmp_path):
    data = tmp_path / "msd"
    for i, case in enumerate(("case_a", "case_b")):
        _image(data / "imagesTr" / f"{case}_0000.nii.gz", i)
    (data / "imagesTs").mkdir()
    (data / "imagesTs" / "case_c_0000.nii.gz").write_bytes(b"not an image at all")
    out = tmp_path / "pre"
    result = _run("prelabel", data, "--model", "unet", "--out", out, "--device", "cpu")
    assert result.returncode == 1, result.stderr
    assert "failed case_c" in result.stderr and "Traceback" not in result.stderr
    assert "2 pre-labelled, 1 failed" in result.stdout
    # case = file name without extension and without the trailing _0000
    assert sorted(p.name for p in out.iterdir()) == ["case_a.nii.gz", "case_b.nii.gz"]
    for case in ("case_a", "case_b"):
        image = read_volume(data / "imagesTr" / f"{case}_0000.nii.gz")
        assert read_label(out / f"{case}.nii.gz", image).shape == image.shape

    (data / "imagesTs" / "case_c_0000.nii.gz").unlink()
    again = _run("prelabel", data, "--model", "unet", "--out", out, "--device", "cpu")
    assert again.returncode == 0, again.stderr
    assert "0 pre-labelled, 0 failed, 2 skipped" in again.stdout


def test_export_refuses_an_existing_folder_unless_overwrite(tmp_path):
    results, out = tmp_path / "results", tmp_path / "Dataset7_Cli"
    image = _image(tmp_path / "src" / "one.nii.gz", 0)
    with CaseStore(results / "segloop.db") as store:
        record = store.add_case(image)
        label = np.zeros((3, 32, 36), np.uint8)
        label[1, 10:20, 10:20] = 1
        write_label(label, read_volume(image), results / "labels" / "one.nii.gz")
        store.set_label(record.id, results / "labels" / "one.nii.gz", status="done")

    first = _run("export", "--out", out, "--results", results)
    assert first.returncode == 0, first.stderr
    assert "exported 1 cases" in first.stdout
    data = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    assert data["numTraining"] == 1 and data["labels"] == {"background": 0, "tumour": 1}

    (out / "marker.txt").write_text("old export", encoding="utf-8")
    refused = _run("export", "--out", out, "--results", results)
    assert refused.returncode != 0 and "--overwrite" in refused.stderr
    assert refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
    assert (out / "marker.txt").exists()

    replaced = _run("--results", results, "export", "--out", out, "--overwrite")  # option before too
    assert replaced.returncode == 0, replaced.stderr
    assert not (out / "marker.txt").exists() and (out / "labelsTr" / "one.nii.gz").exists()


def test_export_without_a_case_database_says_so(tmp_path):
    result = _run("export", "--out", tmp_path / "x", "--results", tmp_path / "nothing")
    assert result.returncode != 0 and "no case database" in result.stderr
    assert not (tmp_path / "nothing").exists() and not (tmp_path / "x").exists()
