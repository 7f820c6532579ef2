"""A full disk (ENOSPC, simulated) during every kind of write: the previous file survives intact,
the error is one of ours with a clear sentence, and writing works again once space is back."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from app.core import interaction_log, volume_io
from app.core.case_discovery import DiscoveredCase
from app.core.case_store import CaseStore, StoreError
from app.core.errors import SegLoopError
from app.core.session import AnnotationSession
from app.core.volume_io import read_label, read_volume, write_label
from tests.reliability.corpus import SAMPLE

ENGINE = "geodesic-nearest"


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(scope="module")
def image():
    return read_volume(SAMPLE)


def _label(image, value):
    label = np.zeros(image.shape, np.uint8)
    label[:, 10:20, 10:20] = value
    return label


@pytest.mark.parametrize("where", ["replace", "write"])
def test_write_label_on_a_full_disk_keeps_the_old_file(tmp_path, image, monkeypatch, where):
    target = tmp_path / "labels" / "case.nii.gz"
    write_label(_label(image, 1), image, target)
    before = target.read_bytes()
    if where == "replace":
        monkeypatch.setattr(volume_io.os, "replace", _enospc)
    else:  # ITK reports a failed write as a RuntimeError naming the cause
        def failing_write(*_a, **_k):
            raise RuntimeError("itk::ERROR: ImageFileWriter: No space left on device")
        monkeypatch.setattr(volume_io.sitk, "WriteImage", failing_write)
    with pytest.raises(SegLoopError) as caught:
        write_label(_label(image, 2), image, target)
    message = str(caught.value)
    assert "space" in message.lower() and "could not write case.nii.gz" in message
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["case.nii.gz"]   # no temp file left behind
    write_label(_label(image, 2), image, target)                         # space is back
    assert (read_label(target, image).array == _label(image, 2)).all()


def test_session_save_on_a_full_disk_keeps_the_old_label_and_the_work(tmp_path, image, monkeypatch):
    session = AnnotationSession(image, label=_label(image, 1), engine=ENGINE,
                                log_path=tmp_path / "logs" / "case.jsonl", autosave_dir=tmp_path / "autosave")
    target = tmp_path / "labels" / "case.nii.gz"
    session.save(target)
    before = target.read_bytes()
    session.brush(0, 5, [[30, 30]], 3.0)
    monkeypatch.setattr(volume_io.os, "replace", _enospc)
    with pytest.raises(SegLoopError, match="(?i)space"):
        session.save(target)
    monkeypatch.undo()
    assert target.read_bytes() == before
    from app.core.autosave import find_recoverable
    session.autosave.flush()
    assert [r.unsaved_actions for r in find_recoverable(tmp_path / "autosave")] == [1]  # work not consumed
    session.save(target)
    assert (read_label(target, image).array == session.label).all()
    session.close()


def test_autosave_snapshot_on_a_full_disk_keeps_the_previous_snapshot(tmp_path, image, monkeypatch):
    session = AnnotationSession(image, label=_label(image, 1), engine=ENGINE,
                                log_path=tmp_path / "logs" / "case.jsonl", autosave_dir=tmp_path / "autosave")
    session.brush(0, 5, [[30, 30]], 3.0)
    assert session.autosave.flush()
    snapshot = session.autosave.folder / "snapshot.npz"
    before = snapshot.read_bytes()
    monkeypatch.setattr(interaction_log.os, "replace", _enospc)
    session.brush(0, 6, [[30, 30]], 3.0)
    session.autosave.flush()
    error = session.autosave.error
    monkeypatch.undo()
    assert isinstance(error, OSError)                        # kept for the GUI; the log has the edit
    assert snapshot.read_bytes() == before
    assert not [p for p in session.autosave.folder.iterdir() if p.name.startswith(".")]
    session.brush(0, 7, [[30, 30]], 3.0)              # space is back: snapshots resume
    assert session.autosave.flush() and snapshot.read_bytes() != before
    session.close()


def test_store_on_a_full_disk_rolls_back_and_recovers(tmp_path):
    store = CaseStore(tmp_path / "results" / "segloop.db")
    first = store.add_case(tmp_path / "a.nii.gz")
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    # SQLITE_FULL for real: the database may not grow by one more page
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError, match="(?i)full"):
        store.add_cases([DiscoveredCase(f"case{k:04d}", tmp_path / f"case{k:04d}.nii.gz", None)
                         for k in range(3000)])
    assert [c.id for c in store.list_cases()] == [first.id]    # the whole batch rolled back
    assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    store.add_case(tmp_path / "b.nii.gz")
    assert len(store.list_cases()) == 2
    store.close()
    with CaseStore(tmp_path / "results" / "segloop.db") as again:
        assert len(again.list_cases()) == 2
