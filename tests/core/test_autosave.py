"""Autosave and crash recovery: a session killed with SIGKILL is restored exactly (label, seeds, undo)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.core.autosave import discard, find_recoverable, read_state, restore
from app.core.session import AnnotationSession
from app.core.volume_io import read_label, read_volume

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "data_source" / "sts002_mr.nii.gz"
LABEL = REPO / "data_source" / "sts002_mr_label.nii.gz"
ENGINE = "geodesic-nearest"

# (method, args): the same list drives the killed child and the reference run in the test.
ACTIONS_BEFORE_PAUSE = [
    ("click", [0, 17, [45, 57], True]),
    ("click", [0, 17, [30, 20], False]),
    ("brush", [1, 45, [[10, 50], [14, 60]], 2.0, False]),
    ("undo", []),
    ("scribble", [2, 57, [[15, 40], [19, 50]], True]),
]
ACTIONS_AFTER_PAUSE = [
    ("click", [0, 18, [47, 60], True]),
    ("set_active_value", [2]),
    ("brush", [0, 18, [[10, 10]], 3.0, False]),
    ("set_active_value", [1]),
    ("click", [1, 45, [16, 55], False]),
    ("undo", []),
    ("clear_seeds", [0, 17]),
]

CHILD = """
import json, os, signal, sys, time
sys.path.insert(0, {repo!r})
from app.core.volume_io import read_label, read_volume
from app.core.session import AnnotationSession

def wait_for_snapshot(step, limit_s=120):
    # Poll rather than sleep a fixed time: on a slow machine the write may take longer.
    import glob
    deadline = time.time() + limit_s
    while time.time() < deadline:
        for state in glob.glob(os.path.join({root!r}, "*", "state.json")):
            try:
                if json.load(open(state)).get("snapshot_step") == step:
                    return
            except (OSError, ValueError):
                pass
        time.sleep(0.05)
    raise SystemExit("no snapshot in " + str(limit_s) + " s")

def main():
    volume = read_volume({image!r})
    proposal = read_label({label!r}, volume).array.copy()
    proposal[::3] = 0
    session = AnnotationSession(volume, label=proposal, engine={engine!r}, log_path={log!r},
                                autosave_dir={root!r})
    phases = json.loads(sys.argv[1])
    for number, phase in enumerate(phases):
        for name, args in phase:
            getattr(session, name)(*args)
        if number < len(phases) - 1:
            wait_for_snapshot(session.step)   # a pause between phases: the snapshot lands on disk
    print(session.checksum, session.step, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    main()
"""


def _proposal(volume):
    label = read_label(LABEL, volume).array.copy()
    label[::3] = 0
    return label


def _run(session, actions):
    for name, args in actions:
        getattr(session, name)(*args)


def _kill_child_after(tmp_path, phases):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=str(REPO), image=str(IMAGE), label=str(LABEL), engine=ENGINE,
                                   log=str(tmp_path / "logs" / "case.jsonl"), root=str(tmp_path / "autosave")),
                      encoding="utf-8")
    # The child pauses between phases and is killed right after the last one.
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(phases)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            start_new_session=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    return out.split()


def test_crash_recovery_after_sigkill_is_bit_exact(tmp_path):
    # The child runs phase 1, pauses (snapshot written), runs phase 2 and is killed at once, so the
    # restore uses the snapshot for phase 1 and replays phase 2 from the log.
    checksum, steps = _kill_child_after(tmp_path, [ACTIONS_BEFORE_PAUSE, ACTIONS_AFTER_PAUSE])
    volume = read_volume(IMAGE)
    expected = AnnotationSession(volume, label=_proposal(volume), engine=ENGINE)
    _run(expected, ACTIONS_BEFORE_PAUSE + ACTIONS_AFTER_PAUSE)
    assert expected.checksum == checksum and expected.step == int(steps)

    (found,) = find_recoverable(tmp_path / "autosave")
    assert found.image_path == IMAGE.resolve() and found.n_actions == expected.step
    state = read_state(found.folder)
    assert 0 < state["snapshot_step"] < expected.step      # snapshot after phase 1 only
    replayed_steps = []
    restored = restore(found, on_step=replayed_steps.append)
    assert [e["step"] for e in replayed_steps] == list(range(state["snapshot_step"] + 1, expected.step + 1))
    assert np.array_equal(restored.label, expected.label)
    assert restored.seeds.to_json() == expected.seeds.to_json()
    assert restored.step == expected.step
    while expected.undo() is not None:                    # the undo history came back too
        assert restored.undo() is not None
        assert np.array_equal(restored.label, expected.label)
    assert restored.undo() is None
    assert np.array_equal(restored.label, _proposal(volume))
    restored.close()


def test_recovery_without_any_snapshot_replays_the_whole_log(tmp_path):
    checksum, _ = _kill_child_after(tmp_path, [ACTIONS_BEFORE_PAUSE])
    (found,) = find_recoverable(tmp_path / "autosave")
    (found.folder / "snapshot.npz").unlink(missing_ok=True)
    restored = restore(found)
    assert restored.checksum == checksum
    restored.close()


def test_a_snapshot_that_disagrees_with_the_log_is_ignored(tmp_path):
    volume = read_volume(IMAGE)
    root, log = tmp_path / "autosave", tmp_path / "case.jsonl"
    s = AnnotationSession(volume, label=_proposal(volume), engine=ENGINE, log_path=log, autosave_dir=root)
    _run(s, ACTIONS_BEFORE_PAUSE)
    s.autosave.flush()
    s.label[...] = 0                                   # corrupt the in-memory state, then snapshot it
    s.autosave.write_snapshot()
    expected = AnnotationSession(volume, label=_proposal(volume), engine=ENGINE)
    _run(expected, ACTIONS_BEFORE_PAUSE)
    s.autosave.lock.release()                          # as the crash this stands for would
    restored = restore(find_recoverable(root)[0])
    assert np.array_equal(restored.label, expected.label)
    restored.close()
    s.close()


def test_edits_reach_the_log_at_once_and_a_snapshot_within_the_deadline(tmp_path):
    volume = read_volume(IMAGE)
    s = AnnotationSession(volume, engine=ENGINE, log_path=tmp_path / "c.jsonl", autosave_dir=tmp_path / "a")
    assert s.autosave.max_delay_s <= 1.0
    for i in range(3):
        s.click(0, 17, (45, 50 + i), True)
    assert find_recoverable(tmp_path / "a")[0].n_actions == 3     # durable before click() returned
    folder = s.autosave.folder
    deadline = time.monotonic() + 10                               # generous: not a speed claim
    while read_state(folder)["snapshot_step"] != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read_state(folder)["snapshot_step"] == 3
    assert s.autosave.writes == 1 and s.autosave.error is None      # three quick clicks, one snapshot
    s.close()


def test_clean_save_consumes_the_autosave(tmp_path):
    volume = read_volume(IMAGE)
    root = tmp_path / "autosave"
    s = AnnotationSession(volume, engine=ENGINE, log_path=tmp_path / "c.jsonl", autosave_dir=root)
    s.click(0, 17, (45, 57), True)
    out = s.save(tmp_path / "done.nii.gz")
    assert np.array_equal(read_label(out, volume).array, s.label)
    assert find_recoverable(root) == []
    s.click(0, 17, (30, 20), False)
    (found,) = find_recoverable(root)
    assert found.unsaved_actions == 1 and found.n_actions == 2
    s.close()
    discard(found)
    assert find_recoverable(root) == []


def test_restored_session_keeps_logging_to_the_same_log(tmp_path):
    volume = read_volume(IMAGE)
    root, log = tmp_path / "autosave", tmp_path / "case.jsonl"
    s = AnnotationSession(volume, engine=ENGINE, log_path=log, autosave_dir=root)
    s.click(0, 17, (45, 57), True)
    s.close()
    restored = restore(find_recoverable(root)[0])
    restored.click(0, 17, (30, 20), False)
    restored.close()
    from app.core.replay import open_log_session, replay

    r, _h, actions = open_log_session(log)
    assert [a["step"] for a in actions] == [1, 2]
    replay(r, actions, log)
    assert np.array_equal(r.label, restored.label)


@pytest.mark.parametrize("n", [0])
def test_nothing_to_recover_in_an_empty_or_missing_folder(tmp_path, n):
    assert find_recoverable(tmp_path / "none") == []
    os.makedirs(tmp_path / "a" / "junk")
    (tmp_path / "a" / "junk" / "state.json").write_text("{not json", encoding="utf-8")
    assert find_recoverable(tmp_path / "a") == []
