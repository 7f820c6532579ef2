"""Crash recovery in the GUI: a window whose session dies without closing leaves autosaved work; the
next window offers it, and Restore brings back the label, the seeds and the undo history."""
from __future__ import annotations

import numpy as np
from PyQt5.QtCore import Qt

from app.core.autosave import find_recoverable
from app.gui.application import build_main_window
from app.gui.overlay import label_rgba
from tests.gui.helpers import DATA, assert_same, click, drag, open_case, viewport_pos, wait_for_clicks

CASE = "sts002_mr"


def crash_after_edits(window, volumes, qtbot) -> dict:
    """Two clicks and a brush stroke on sts002_mr, autosaved; then the session is dropped unclosed."""
    open_case(window, CASE)
    view, controller = window.slice_view, window.annotation.controller
    ref = volumes[CASE][1].array
    z = view.state.slice_index
    ys, xs = np.nonzero(ref[z])
    click(view, viewport_pos(view, z, int(ys.mean()), int(xs.max()) - 2), Qt.RightButton)
    wait_for_clicks(qtbot, window, 1)
    click(view, viewport_pos(view, z, 80, 20), Qt.LeftButton)
    wait_for_clicks(qtbot, window, 2)
    before_last = view.label.copy()
    controller.brush.set_mode("paint")
    drag(view, viewport_pos(view, z, 5, 5), viewport_pos(view, z, 5, 30), Qt.LeftButton)
    controller.brush.set_mode(None)
    session = controller.session
    assert session.step == 3 and session.history.undo_stack[-1].kind == "brush"
    session.autosave.flush()
    state = {"z": z, "label": view.label.copy(), "before_last": before_last,
             "seeds": session.seeds.all(), "undo": [e.kind for e in session.history.undo_stack]}
    # The crash: the writer threads stop as a dying process would leave them, nothing is saved.
    session.autosave.close()
    session.log.close()
    controller.session = None
    return state


def test_restore_brings_back_label_seeds_and_undo_history(window, volumes, qtbot):
    crashed = crash_after_edits(window, volumes, qtbot)
    second = build_main_window(DATA, window.store.path.parent)
    qtbot.addWidget(second)
    second.resize(1280, 800)
    second.show()
    try:
        dialog = second.annotation.recovery_dialog
        assert dialog is not None and dialog.isVisible()
        (item,) = dialog.items()
        assert item.image_path.name == f"{CASE}.nii.gz" and item.unsaved_actions == 3
        assert "3 unsaved actions" in dialog.list.item(0).text()
        qtbot.mouseClick(dialog.restore_button, Qt.LeftButton)
        assert second.last_error is None, second.last_error
        assert not dialog.isVisible()
        view, session = second.slice_view, second.annotation.controller.session
        assert second.case.name == CASE and session.step == 3
        np.testing.assert_array_equal(view.label, crashed["label"])
        assert session.seeds.all() == crashed["seeds"]
        assert [e.kind for e in session.history.undo_stack] == crashed["undo"]
        view.set_slice(crashed["z"])
        assert_same(view.displayed_overlay, label_rgba(crashed["label"][crashed["z"]], view.state.overlay_opacity))
        assert second.annotation.controller.seeds_overlay.displayed("bg_click")
        second.activateWindow()  # two main windows in one test: make the restarted one take the keys
        qtbot.waitUntil(second.isActiveWindow)
        qtbot.keyClick(second, Qt.Key_Z, Qt.ControlModifier)  # the brush stroke, undone after the restart
        np.testing.assert_array_equal(view.label, crashed["before_last"])
    finally:
        second.close()  # saves the restored work: nothing is left to recover
        second.store.close()
    assert find_recoverable(window.store.path.parent / "autosave") == []


def test_discard_forgets_the_work_and_later_keeps_the_case_read_only(window, volumes, qtbot):
    crash_after_edits(window, volumes, qtbot)
    second = build_main_window(DATA, window.store.path.parent)
    qtbot.addWidget(second)
    second.show()
    try:
        dialog = second.annotation.recovery_dialog
        dialog.reject()  # "Later": the work stays on disk, and the case cannot be edited over it
        open_case(second, CASE)
        view = second.slice_view
        z = view.state.slice_index
        click(view, viewport_pos(view, z, 80, 20), Qt.LeftButton)
        assert "unsaved work from an earlier session" in second.last_error
        assert second.annotation.controller.session is None

        dialog = second.annotation.offer_recovery()  # File > Recover unsaved work…
        qtbot.mouseClick(dialog.discard_button, Qt.LeftButton)
        assert not dialog.isVisible()
        assert find_recoverable(second.store.path.parent / "autosave") == []
        second.last_error = None
        click(view, viewport_pos(view, z, 80, 20), Qt.LeftButton)
        wait_for_clicks(qtbot, second, 1)
        assert view.label[z, 80, 20] == 1
    finally:
        second.close()
        second.store.close()
