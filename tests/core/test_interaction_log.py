"""The interaction log: one durable line per action, and `main.py replay` reproduces the label bit for bit."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.interaction_log import LogError, read_log, sidecar
from app.core.label_digest import label_checksum
from app.core.replay import ReplayError, open_log_session, replay
from app.core.session import AnnotationSession, SessionError
from app.core.volume import Volume
from app.core.volume_io import read_label, read_volume, write_volume

REPO = Path(__file__).resolve().parents[2]
ENGINE = "geodesic-nearest"


def _image(tmp_path, name="case.nii.gz", seed=0, shape=(10, 36, 40)):
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:shape[0], :shape[1], :shape[2]]
    inside = ((y - 18) / 9.0) ** 2 + ((x - 20) / 11.0) ** 2 + ((z - 5) / 4.0) ** 2 <= 1
    array = (inside * 150 + rng.normal(0, 8, shape)).astype(np.int16)
    path = write_volume(Volume(array, spacing=(0.9, 0.9, 2.0)), tmp_path / name)
    return read_volume(path), inside.astype(np.uint8)


def _session(tmp_path, log_name="s.jsonl", **kwargs):
    volume, inside = _image(tmp_path)
    initial = inside.copy()
    initial[5] = 0                                   # a proposal that missed one slice
    initial[2, 3:6, 3:6] = 2
    prior = np.clip(inside * 0.7 + 0.1, 0, 1).astype(np.float32)
    s = AnnotationSession(volume, label=initial, prior=prior, reference=inside, engine=ENGINE,
                          log_path=tmp_path / log_name, **kwargs)
    return s, initial


def _edit(s):
    s.click(0, 5, (18, 20), True)
    s.click(0, 5, (18, 30), False)
    s.scribble(1, 18, [(4, 10), (6, 28)], True)
    s.brush(2, 20, [(1, 5), (3, 9)], 1.5)
    s.undo()
    s.redo()
    s.undo()
    s.set_active_value(2)
    s.click(0, 2, (4, 4), False)
    s.set_active_value(1)
    s.clear_seeds(1, 18)
    proposal = s.label.copy()
    proposal[8] = 1
    proposal[6:8] = 0          # gaps for propagation to fill (it stops at slices already labelled)
    s.set_label(proposal, "proposal")
    assert s.propagate(0, 5) is not None
    s.click(2, 25, (7, 18), True)


def test_each_action_is_one_durable_line_with_what_replay_needs(tmp_path):
    s, initial = _session(tmp_path)
    header, actions = read_log(s.log.path)             # readable while the session is open
    assert actions == []
    assert header["initial_checksum"] == label_checksum(initial)
    assert header["engine"] == ENGINE and header["image"].endswith("case.nii.gz")
    assert len(header["image_sha256"]) == 64 and header["git_commit"]
    assert sidecar(s.log.path, ".initial.nii.gz").exists() and sidecar(s.log.path, ".prior.npz").exists()
    s.click(0, 5, (18, 20), True)
    _, actions = read_log(s.log.path)                  # on disk before click() returned
    (entry,) = actions
    assert entry["kind"] == "click" and entry["fg"] is True and entry["points"] == [[5, 18, 20]]
    assert entry["axis"] == 0 and entry["slice"] == 5 and entry["value"] == 1
    assert entry["checksum"] == label_checksum(s.label) == s.checksum
    assert set(entry["dice"]) == {"1"} and 0 < entry["dice"]["1"] <= 1
    expected = 2 * ((s.label == 1) & (s.reference == 1)).sum() / ((s.label == 1).sum() + (s.reference == 1).sum())
    assert entry["dice"]["1"] == pytest.approx(expected, abs=1e-6)
    assert entry["latency_ms"] >= entry["compute_ms"] >= 0 and entry["t"] >= 0
    assert entry["options"]["seed_radius_mm"] == s.options.seed_radius_mm
    s.close()


def test_replay_cli_reproduces_the_label_bit_for_bit(tmp_path):
    s, _ = _session(tmp_path)
    _edit(s)
    final, steps = s.label.copy(), s.step
    s.close()
    out = tmp_path / "replayed.nii.gz"
    result = subprocess.run([sys.executable, str(REPO / "main.py"), "replay", str(s.log.path), "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"replayed {steps} actions" in result.stdout
    replayed = read_label(out, s.volume).array
    assert np.array_equal(replayed, final)


def test_replay_in_process_rebuilds_seeds_and_history(tmp_path):
    s, _ = _session(tmp_path)
    _edit(s)
    r, _header, actions = open_log_session(s.log.path)   # the log is complete while s is open
    replay(r, actions, s.log.path)
    assert np.array_equal(r.label, s.label)
    assert r.seeds.to_json() == s.seeds.to_json()
    while s.undo():
        assert r.undo() is not None and np.array_equal(r.label, s.label)
        assert r.seeds.to_json() == s.seeds.to_json()
    assert r.undo() is None
    s.close()
    with pytest.raises(SessionError, match="closed"):
        s.redo()


def test_replay_against_another_image_fails_clearly(tmp_path):
    s, _ = _session(tmp_path)
    s.click(0, 5, (18, 20), True)
    s.close()
    other, _ = _image(tmp_path, "other.nii.gz", seed=1)
    result = subprocess.run([sys.executable, str(REPO / "main.py"), "replay", str(s.log.path),
                             "--out", str(tmp_path / "x.nii.gz"), "--image", str(other.path)],
                            cwd=REPO, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not the image" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "x.nii.gz").exists()


def test_a_diverging_step_is_named(tmp_path):
    s, _ = _session(tmp_path)
    _edit(s)
    s.close()
    lines = s.log.path.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[3])
    entry["points"] = [[entry["points"][0][0], 1, 1]]       # the scribble went elsewhere
    lines[3] = json.dumps(entry)
    s.log.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r, _h, actions = open_log_session(s.log.path)
    with pytest.raises(ReplayError, match="step 3 .*diverges"):
        replay(r, actions, s.log.path)


def test_missing_initial_label_is_a_clear_error(tmp_path):
    s, _ = _session(tmp_path)
    s.close()
    sidecar(s.log.path, ".initial.nii.gz").unlink()
    with pytest.raises(ReplayError, match="initial label .* is missing"):
        open_log_session(s.log.path)


def test_half_written_last_line_is_ignored_and_cut_before_appending(tmp_path):
    s, _ = _session(tmp_path)
    s.click(0, 5, (18, 20), True)
    s.close()
    with open(s.log.path, "a", encoding="utf-8") as stream:
        stream.write('{"type": "action", "step": 2, "kin')      # killed mid-write
    _, actions = read_log(s.log.path)
    assert len(actions) == 1
    from app.core.interaction_log import LogWriter

    writer = LogWriter(s.log.path)
    writer.write({"type": "action", "step": 2, "kind": "undo"})
    writer.close()
    _, actions = read_log(s.log.path)
    assert [a["step"] for a in actions] == [1, 2]


def test_a_new_session_refuses_to_overwrite_a_log(tmp_path):
    s, _ = _session(tmp_path)
    s.click(0, 5, (18, 20), True)
    s.close()
    with pytest.raises(LogError, match="already exists"):
        _session(tmp_path)


def test_empty_initial_label_writes_no_sidecar(tmp_path):
    volume, _ = _image(tmp_path)
    s = AnnotationSession(volume, engine=ENGINE, log_path=tmp_path / "e.jsonl")
    s.click(0, 5, (18, 20), True)
    s.close()
    assert not sidecar(s.log.path, ".initial.nii.gz").exists()
    r, header, actions = open_log_session(s.log.path)
    assert header["initial_label"] is None
    replay(r, actions, s.log.path)
    assert np.array_equal(r.label, s.label)
