"""The command line: subcommands listed, errors are one clear line on stderr with a non-zero exit."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args, cwd=REPO):
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=cwd,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


def test_help_lists_subcommands():
    result = _run("--help")
    assert result.returncode == 0
    assert "info" in result.stdout


def test_info_reads_a_bundled_case():
    result = _run("info", str(REPO / "data_source" / "sts002_ct.nii.gz"))
    assert result.returncode == 0, result.stderr
    assert "161 × 143 × 48 voxels" in result.stdout
    assert "CT" in result.stdout


def test_bad_file_is_one_clear_line_and_nonzero_exit(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    result = _run("info", str(bad))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "broken.nii.gz" in lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_subcommand_fails_cleanly():
    result = _run("frobnicate")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_combine_correction_writes_an_ensemble_or_says_why_not(tmp_path):
    shipped = REPO / "models" / "weights" / "correction_net.pt"
    # the shipped file is itself an ensemble: combining it again is one clear line
    result = _run("combine-correction", str(shipped), str(shipped), "--out", str(tmp_path / "e.pt"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "e.pt").exists()


def test_training_cannot_continue_an_ensemble_and_says_so_before_any_work(tmp_path):
    shipped = REPO / "models" / "weights" / "correction_net.pt"
    result = _run("train-correction", "--init", str(shipped), "--out", str(tmp_path / "w.pt"),
                  "--data", str(tmp_path))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "ensemble of 2 networks" in last
    assert not (tmp_path / "w.pt").exists()
