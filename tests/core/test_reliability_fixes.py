"""Regressions found by the reliability sweep: thin slices, a full disk while logging, live logs."""
from __future__ import annotations

import errno
import subprocess
import sys

import numpy as np
import pytest

from app.core.autosave import find_recoverable
from app.core.errors import SegLoopError
from app.core.interaction_log import LogWriter
from app.core.session import AnnotationSession
from app.core.volume import Volume


@pytest.mark.parametrize("engine", ["geodesic-crf", "geodesic-nearest"])
def test_clicks_in_the_side_views_of_a_one_slice_image(engine):
    # A PNG opens as one slice: its coronal and sagittal planes are one pixel thick.
    session = AnnotationSession(Volume(np.random.default_rng(0).random((1, 20, 30)).astype(np.float32)),
                                engine=engine)
    session.click(1, 10, (0, 15), True)
    assert session.label[0, 10, 15] == 1
    session.click(2, 5, (0, 12), False)
    assert session.label[0, 12, 5] == 0


def test_a_full_disk_while_logging_is_our_clear_error(tmp_path, monkeypatch):
    writer = LogWriter(tmp_path / "log-20260101-000000-1.jsonl", header={"format": 1})

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("app.core.interaction_log.os.fsync", no_space)
    with pytest.raises(SegLoopError, match="not yet saved"):
        writer.write({"type": "click"})


def test_a_log_still_being_written_by_another_instance_is_not_offered(tmp_path):
    volume = Volume(np.random.default_rng(0).random((4, 16, 16)).astype(np.float32),
                    path=tmp_path / "case.nii.gz")
    session = AnnotationSession(volume, autosave_dir=tmp_path / "autosave")
    session.click(0, 2, (8, 8), True)
    [found] = find_recoverable(tmp_path / "autosave")
    # Pretend another live Python process owns the log: rename it to that process's pid.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = found.log_path.with_name(f"log-20260101-000000-{other.pid}.jsonl")
        found.log_path.rename(live)
        state_file = found.folder / "state.json"
        state_file.write_text(state_file.read_text(encoding="utf-8").replace(
            found.log_path.name, live.name), encoding="utf-8")
        assert find_recoverable(tmp_path / "autosave") == []
    finally:
        other.kill()
        other.wait()
    assert len(find_recoverable(tmp_path / "autosave")) == 1  # its writer is gone: offer it
