"""Segment (Ctrl+G) hands the network's prior to the session with its proposal: the next click's
engine sees the U-Net probability, not a uniform prior (as benchmarks/clicks.py measures it)."""
from __future__ import annotations

import numpy as np
import pytest
from PyQt5.QtCore import Qt

from tests.gui.helpers import REPO, choose_model, cropped_case, wait_for_models, wait_for_volume_job

pytestmark = pytest.mark.skipif(not (REPO / "models" / "weights" / "unet.pt").exists(),
                                reason="the shipped U-Net weights are missing")


def test_segment_gives_the_session_the_networks_prior(window, volumes, qtbot, tmp_path):
    assert window.open_file(cropped_case(tmp_path, volumes)), window.last_error
    wait_for_models(qtbot, window)
    choose_model(window, "unet")
    qtbot.keyClick(window, Qt.Key_G, Qt.ControlModifier)
    wait_for_volume_job(qtbot, window)
    assert window.last_error is None, window.last_error

    result = window.annotation.jobs.last_result
    session = window.annotation.controller.session
    assert result is not None and session.prior is not None
    np.testing.assert_array_equal(result.prior, result.prob)          # U-Net: its probability
    rounded = (np.rint(result.prior * 255.0) / np.float32(255.0)).astype(np.float32)
    np.testing.assert_array_equal(session.prior, rounded)
    assert 0.01 < float(rounded.mean()) < 0.99                        # not a constant map
    z = int(np.argmax(session.label.sum(axis=(1, 2))))
    plan = session.prepare_click(0, z, (10, 10), True)
    np.testing.assert_array_equal(plan.request.prior, rounded[z])

    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)              # undo the proposal: prior stays
    assert session.can_redo and not np.array_equal(session.label, result.label.array)
    np.testing.assert_array_equal(session.prior, rounded)
