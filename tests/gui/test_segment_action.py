"""Segment (Ctrl+G): the shipped U-Net's proposal becomes the editable label, with its heat map, the
reference outline and the Dice; Cancel and Undo leave the previous label exactly as it was."""
from __future__ import annotations

import numpy as np
import pytest
from PyQt5.QtCore import Qt

from app.core.segmentation import segment_volume
from app.core.volume_io import read_label, read_volume
from app.gui.annotation_controller import REFERENCE_LAYER
from app.gui.map_layers import heat_rgba, reference_contour_rgba
from app.gui.overlay import label_rgba
from app.gui.volume_jobs import HEAT_LAYER
from tests.gui.helpers import (REPO, activate, assert_same, choose_model, cropped_case, open_case, wait_for_models,
                               wait_for_volume_job)

pytestmark = pytest.mark.skipif(not (REPO / "models" / "weights" / "unet.pt").exists(),
                                reason="the shipped U-Net weights are missing")


def _dice(a, b):
    a, b = a > 0, b > 0
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_segment_shows_the_proposal_heat_map_reference_and_dice(window, volumes, qtbot, tmp_path):
    path = cropped_case(tmp_path, volumes)
    assert window.open_file(path), window.last_error
    view = window.slice_view
    z0 = view.state.slice_index
    before = view.displayed_overlay.copy()  # the case opens on its reference label
    wait_for_models(qtbot, window)
    choose_model(window, "unet")
    qtbot.keyClick(window, Qt.Key_G, Qt.ControlModifier)
    wait_for_volume_job(qtbot, window)
    assert window.last_error is None, window.last_error

    image = read_volume(path)
    reference = read_label(path.with_name(path.name.replace(".nii.gz", "_label.nii.gz")), image).array
    expected = segment_volume(image, "unet")  # the same model run outside the GUI
    label = view.label
    assert expected.label.array.any(), "the U-Net found nothing on this crop: pick another one"
    np.testing.assert_array_equal(label, expected.label.array)
    state = view.state
    for z in (state.slice_index, int(np.argmax(label.sum(axis=(1, 2))))):
        view.set_slice(z)
        assert_same(view.displayed_overlay, label_rgba(label[z], state.overlay_opacity))
        # U-Net has no CAM: the heat map shows its foreground probability.
        assert_same(view.displayed_layer(HEAT_LAYER), heat_rgba(expected.prob[z]))
        assert_same(view.displayed_layer(REFERENCE_LAYER), reference_contour_rgba(reference[z]))

    text = window.annotation.dice_label.text()
    assert text == f"volume Dice {_dice(label, reference):.3f}"
    record = window.store.find_by_image(path)
    assert record.status == "pre-labelled" and record.model_used == "unet"
    assert "[pre-labelled]" in " ".join(window.case_list.row_texts())

    activate(qtbot, window)
    qtbot.keyClick(window, Qt.Key_H)  # heat map off and on again
    assert view.displayed_layer(HEAT_LAYER) is None
    qtbot.keyClick(window, Qt.Key_H)
    assert view.displayed_layer(HEAT_LAYER) is not None
    qtbot.keyClick(window, Qt.Key_R)  # reference outline off
    assert view.displayed_layer(REFERENCE_LAYER) is None

    # The proposal is one undoable step: Ctrl+Z gives back the label the case opened with.
    view.set_slice(z0)
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    assert window.annotation.controller.session.step == 2  # set_label, then its undo
    np.testing.assert_array_equal(view.label, reference)
    assert_same(view.displayed_overlay, before)


def test_cancel_leaves_the_previous_label_untouched(window, volumes, qtbot):
    open_case(window, "lits117_ct")  # 128 slices: far from done when Cancel arrives
    view = window.slice_view
    label_before = view.label.copy()
    overlay_before = view.displayed_overlay.copy()
    wait_for_models(qtbot, window)
    choose_model(window, "unet")
    runner = window.annotation.segment()
    assert runner is not None and window.annotation.jobs.running
    runner.cancel()  # what the progress dialog's Cancel button calls
    wait_for_volume_job(qtbot, window)
    assert not runner.finished_ok
    assert "cancelled" in window.last_message and window.last_error is None
    np.testing.assert_array_equal(view.label, label_before)
    assert_same(view.displayed_overlay, overlay_before)
    assert not view.has_layer(HEAT_LAYER)
    record = window.store.get(window.case.case_id)
    assert record.status == "new" and record.model_used is None


def test_segment_without_a_model_says_so(window, qtbot):
    open_case(window, "sts002_mr")
    window.annotation.jobs.segment("")
    assert "No segmentation model" in window.last_error
    assert not window.annotation.jobs.running


def test_closing_the_window_mid_segmentation_cancels_it_cleanly(window, qtbot):
    open_case(window, "lits117_ct")
    wait_for_models(qtbot, window)
    choose_model(window, "unet")
    runner = window.annotation.segment()
    assert runner.running
    window.close()  # must stop the job's thread before the window goes (else Qt aborts)
    assert not runner.running and not runner.finished_ok
    assert window.annotation.jobs.runner is None
