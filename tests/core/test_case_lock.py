"""One annotating process per case: a second session on the same case is refused and writes nothing;
the lock dies with its process (kill -9 leaves no stale lock)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.autosave import case_key
from app.core.case_lock import CaseInUseError, CaseLock
from app.core.session import AnnotationSession
from app.core.volume_io import read_volume

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "data_source" / "sts002_mr.nii.gz"
ENGINE = "geodesic-nearest"


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")} if folder.exists() else set()


def _open_with_a_click(root: Path):
    """A session holding the bundled case, with one click autosaved: (volume, session)."""
    volume = read_volume(IMAGE)
    session = AnnotationSession(volume, engine=ENGINE, autosave_dir=root)
    session.click(0, 17, (45, 57), True)
    assert session.autosave.flush()
    return volume, session


def test_second_session_on_a_case_is_refused_and_writes_nothing(tmp_path):
    root = tmp_path / "autosave"
    volume, first = _open_with_a_click(root)
    folder = root / case_key(volume.path)
    before = _files(folder)
    with pytest.raises(CaseInUseError, match="another SegLoop window"):
        AnnotationSession(volume, engine=ENGINE, autosave_dir=root)
    assert _files(folder) == before                  # no second log, first snapshot kept
    first.close()
    again = AnnotationSession(volume, engine=ENGINE, autosave_dir=root)   # free once closed
    again.close()


def test_other_cases_and_sessions_without_autosave_are_not_blocked(tmp_path):
    volume = read_volume(IMAGE)
    root = tmp_path / "autosave"
    with AnnotationSession(volume, engine=ENGINE, autosave_dir=root):
        AnnotationSession(volume, engine=ENGINE).close()             # no autosave: no lock
        other = read_volume(REPO / "data_source" / "sts002_ct.nii.gz")
        AnnotationSession(other, engine=ENGINE, autosave_dir=root).close()


_HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
from app.core.case_lock import CaseLock
lock = CaseLock(Path({folder!r}))
print("locked", flush=True)
time.sleep(120)
"""


def test_lock_held_by_another_process_names_it_and_dies_with_it(tmp_path):
    volume = read_volume(IMAGE)
    root = tmp_path / "autosave"
    folder = root / case_key(volume.path)
    child = subprocess.Popen([sys.executable, "-c", _HOLDER.format(repo=str(REPO), folder=str(folder))],
                             stdout=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(CaseInUseError, match=f"process {child.pid}"):
            AnnotationSession(volume, engine=ENGINE, autosave_dir=root)
        assert not any(p.name.startswith("log-") for p in folder.iterdir())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    deadline = time.monotonic() + 10
    while True:                                  # the OS frees the lock with the process
        try:
            AnnotationSession(volume, engine=ENGINE, autosave_dir=root).close()
            break
        except CaseInUseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_released_lock_can_be_taken_again(tmp_path):
    lock = CaseLock(tmp_path)
    assert lock.held
    with pytest.raises(CaseInUseError):
        CaseLock(tmp_path)
    lock.release()
    assert not lock.held
    CaseLock(tmp_path).release()


def test_restore_is_refused_while_another_session_holds_the_case(tmp_path):
    from app.core.autosave import find_recoverable, restore

    root = tmp_path / "autosave"
    _, live = _open_with_a_click(root)
    (item,) = find_recoverable(root)
    with pytest.raises(CaseInUseError):
        restore(item)
    live.close()
    restore(find_recoverable(root)[0]).close()       # free once the first window is closed
