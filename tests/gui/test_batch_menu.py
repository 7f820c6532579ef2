"""Batch > Pre-label cases…: two small cases, statuses in the case list, the summary, Cancel."""
from __future__ import annotations

import pytest

from tests.gui.helpers import cropped_case, wait_for_models


@pytest.fixture
def two_case_window(qtbot, tmp_path, volumes):
    from app.gui.application import build_main_window

    for name in ("sts002_mr", "sts002_ct"):
        cropped_case(tmp_path, volumes, name, 14, 20)  # 6 slices each: seconds to segment
    win = build_main_window(tmp_path / "crop", tmp_path / "results")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    wait_for_models(qtbot, win)
    yield win
    win.close()
    win.store.close()


def _statuses(window) -> dict[str, str]:
    return {t.split()[0]: t.split("[")[1].rstrip("]") for t in window.case_list.row_texts()}


def _wait_done(qtbot, batch, timeout=120000):
    qtbot.waitUntil(lambda: batch.runner is not None and not batch.runner.running and
                    (batch.summary is not None or batch.window.last_error is not None), timeout=timeout)
    assert batch.window.last_error is None, batch.window.last_error


def test_prelabel_updates_statuses_and_shows_a_summary(two_case_window, qtbot, tmp_path):
    window, batch = two_case_window, two_case_window.loop.batch
    assert set(_statuses(window).values()) == {"new"}
    dialog = batch.ask()
    model = dialog.model()
    assert model == window.annotation.model_combo.currentData()
    for button in dialog.group.buttons():
        if button.property("which") == "all":
            button.setChecked(True)
    dialog.accept()
    _wait_done(qtbot, batch)

    assert _statuses(window) == {"sts002_mr_crop": "pre-labelled", "sts002_ct_crop": "pre-labelled"}
    box = batch.summary_box
    assert box.isVisible() and box.windowTitle() == "Pre-labelling finished"
    assert box.text() == "2 pre-labelled, 0 failed, 0 skipped"
    out = tmp_path / "results" / "prelabels" / model
    assert sorted(p.name for p in out.iterdir()) == ["sts002_ct_crop.nii.gz", "sts002_mr_crop.nii.gz"]

    # a second run skips both (their files are there) and says why
    batch.start("all", model)
    _wait_done(qtbot, batch)
    assert batch.summary_box.text() == "0 pre-labelled, 0 failed, 2 skipped"
    assert "already pre-labelled" in batch.summary_box.informativeText()


def test_cancel_mid_batch_keeps_finished_cases_only(two_case_window, qtbot, monkeypatch):
    """The second case's segmentation waits until Cancel: the first is kept, the second is not
    started (a real segmentation of these crops is faster than a person's Cancel)."""
    import time

    from app.core import segmentation
    from app.core.jobs import Progress

    real, calls = segmentation.segment_volume_job, []

    def first_real_then_slow(volume, model_name, device=None, cancel=None, **kwargs):
        calls.append(model_name)
        if len(calls) == 1:
            return (yield from real(volume, model_name, device, cancel, **kwargs))
        while True:
            cancel.raise_if_cancelled()
            yield Progress(0, 1, "waiting for Cancel")
            time.sleep(0.05)

    monkeypatch.setattr(segmentation, "segment_volume_job", first_real_then_slow)
    window, batch = two_case_window, two_case_window.loop.batch
    runner = batch.start("not done", window.annotation.model_combo.currentData())
    qtbot.waitUntil(lambda: runner.last_progress is not None and "case 2 of 2" in runner.last_progress.message,
                    timeout=60000)
    from PyQt5.QtWidgets import QPushButton

    runner.dialog.findChild(QPushButton).click()  # the progress dialog's Cancel button
    _wait_done(qtbot, batch)

    summary = batch.summary
    assert summary.cancelled and len(summary.done) == 1 and len(summary.not_started) == 1
    assert batch.summary_box.windowTitle() == "Pre-labelling cancelled"
    assert batch.summary_box.text() == "1 pre-labelled, 0 failed, 0 skipped, cancelled with 1 not started"
    statuses = _statuses(window)
    assert statuses[summary.done[0]] == "pre-labelled"
    assert statuses[summary.not_started[0]] == "new"
