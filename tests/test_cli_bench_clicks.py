"""`python main.py bench-clicks` end to end on a small MSD-layout folder written by the test:
the per-slice CSV has the issue's columns, the engines differ as they should, and candidate
correction weights / patch sizes reach the engines."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.msd_folder import write_msd_case

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["case", "slice", "engine", "start", "clicker", "noc85", "noc90", "dice_0", "dice_1",
           "dice_3", "dice_5", "dice_10", "ms_median", "ms_p95"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:64, :64]
    label = np.zeros((4, 64, 64), np.uint8)
    for z in (1, 2):
        label[z] = (yy - 30) ** 2 + (xx - 34) ** 2 <= 14 ** 2
    image = rng.normal(100, 6, label.shape).astype(np.float32) + 120 * label
    write_msd_case(root, "Ts", "sts001_mr", image, label)
    return root


def _bench(dataset, out, *extra):
    return subprocess.run([sys.executable, str(REPO / "main.py"), "bench-clicks", "--data",
                           str(dataset), "--start", "zero", "--clicker", "exact,noisy",
                           "--every-k", "1", "--max-clicks", "6", "--out", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def test_rows_have_the_issue_columns_and_engines_are_told_apart(dataset, tmp_path):
    out = tmp_path / "rows.csv"
    result = _bench(dataset, out, "--engine", "none,geodesic-crf")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert set(COLUMNS) <= set(rows[0])
    assert len(rows) == 2 * 2 * 2                 # slices x engines x clickers
    none = [r for r in rows if r["engine"] == "none"]
    geo = [r for r in rows if r["engine"] == "geodesic-crf"]
    assert all(float(r["dice_5"]) == 0.0 and r["noc90"] == "20" for r in none)
    # a bright disk on a flat background: the geodesic engine gets there in a few clicks
    assert all(float(r["dice_5"]) > 0.9 for r in geo)
    assert "geodesic-crf" in result.stdout and "NoC90" in result.stdout


def test_candidate_weights_and_patch_size_reach_the_network_engines(dataset, tmp_path):
    out = tmp_path / "rows.csv"
    foreign = tmp_path / "not_ours.pt"
    foreign.write_bytes(b"not a checkpoint")
    refused = _bench(dataset, out, "--engine", "combined", "--correction-weights", str(foreign))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "correction network cannot be used" in refused.stderr
    small = _bench(dataset, out, "--engine", "correction-net", "--patch", "32")
    assert small.returncode == 0, small.stderr


def test_paired_difference_counts_slices_and_brackets_the_mean():
    from app.cli.bench_clicks import paired_difference

    base = [{"case": "a", "slice": str(z), "noc90": 3} for z in range(40)]
    # one slice that stops failing moves the mean a lot; the counts say it is one slice
    one = [dict(r, noc90=(r["noc90"] - 17 if r["slice"] == "0" else r["noc90"])) for r in base]
    d = paired_difference(base, one)
    assert (d["n"], d["better"], d["worse"], d["equal"]) == (40, 1, 0, 39)
    assert d["mean"] == pytest.approx(-17 / 40) and d["low"] <= d["mean"] <= d["high"] <= 0
    # every slice one click better: a tight interval at -1
    every = [dict(r, noc90=2) for r in base]
    d = paired_difference(base, every)
    assert d["better"] == 40 and d["low"] == d["high"] == pytest.approx(-1.0)
    # slices of the other run that the base does not hold are ignored
    assert paired_difference(base, [{"case": "b", "slice": "0", "noc90": 1}])["n"] == 0
