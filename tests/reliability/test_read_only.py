"""A read-only results/ folder, at start-up and while working. Simulated (the tests may run as root,
for whom permissions do not apply): os.access says no at start-up, and writes fail with EROFS later.
The user gets one clear sentence; work in progress stays in the autosave."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from app.core import case_store, volume_io
from app.core.autosave import find_recoverable
from app.core.case_store import ReadOnlyStoreError
from tests.reliability.corpus import DATA


def test_a_read_only_results_folder_at_start_up(tmp_path, monkeypatch, qapp):
    from app.gui.application import build_main_window

    results = tmp_path / "results"
    results.mkdir()
    real_access = os.access
    monkeypatch.setattr(case_store.os, "access",
                        lambda p, mode: False if Path(p) == results else real_access(p, mode))
    with pytest.raises(ReadOnlyStoreError, match="read-only") as caught:
        build_main_window(DATA, results)
    assert len(str(caught.value).splitlines()) == 1
    assert list(results.iterdir()) == []                       # nothing was written there


def _erofs(*_args, **_kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


def test_results_turning_read_only_while_working(window, qtbot, monkeypatch):
    assert window.open_file(DATA / "sts002_mr.nii.gz"), window.last_error
    controller = window.annotation.controller
    window.slice_view.set_slice(17)
    controller.on_click(17, 45, 57, 2)                           # right button: background click
    qtbot.waitUntil(lambda: controller.session is not None and controller.session.step == 1, timeout=30000)
    edited = controller.session.label.copy()
    monkeypatch.setattr(volume_io.tempfile, "mkstemp", _erofs)
    assert window.annotation.save() is None
    assert "could not be saved" in window.last_error and "read-only" in window.last_error.lower()
    controller.session.autosave.flush()
    autosave_root = window.store.path.parent / "autosave"
    assert [r.unsaved_actions for r in find_recoverable(autosave_root)] == [1]   # the work is kept
    monkeypatch.undo()
    written = window.annotation.save()                            # writable again: saved as edited
    assert written is not None and np.array_equal(volume_io.read_label(written, window.case.image).array, edited)
    assert find_recoverable(autosave_root) == []
