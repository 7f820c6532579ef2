"""Clicks, scribbles, brush, undo, propagation and save in a real window, through real mouse events.

The start label is sts002_mr's reference with a strip cut away on one slice (a missed region) and a
blob added beside the tumour (an over-segmented region); the checks read the arrays on screen.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PyQt5.QtCore import QPoint, Qt
from app.core.refine import DEFAULT_REFINER
from PyQt5.QtWidgets import QApplication, QMessageBox
from scipy import ndimage

from app.core.refine import REFINERS, Refiner
from app.core.volume_io import read_label, write_label
from app.gui.overlay import label_rgba
from app.gui.shortcuts import shortcuts_markdown
from tests.gui.helpers import (DATA, REPO, activate, assert_same, click, drag, open_case, viewport_pos,
                               wait_for_clicks, wait_for_volume_job)

CASE = "sts002_mr"


def _centre(region: np.ndarray) -> tuple[int, int]:
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    return tuple(int(v) for v in np.unravel_index(int(dist.argmax()), dist.shape))


@pytest.fixture
def imperfect(window, volumes, tmp_path, qtbot):
    """sts002_mr open with a start label that misses a strip and over-segments a blob on slice z."""
    image, reference = volumes[CASE]
    ref = reference.array
    z = int(np.argmax(ref.sum(axis=(1, 2))))
    tumour = ref[z] > 0
    ys, xs = np.nonzero(tumour)
    missed = tumour & (np.arange(tumour.shape[1])[None, :] > xs.mean() + 10)
    yy, xx = np.mgrid[:tumour.shape[0], :tumour.shape[1]]
    blob = ((yy - (ys.min() - 10)) ** 2 + (xx - xs.mean()) ** 2 <= 36) & ~tumour
    start = ref.copy()
    start[z][missed] = 0
    start[z][blob] = 1
    open_case(window, CASE)
    write_label(start, image, tmp_path / "start.nii.gz")
    assert window.open_label(tmp_path / "start.nii.gz"), window.last_error
    window.slice_view.set_slice(z)
    activate(qtbot, window)
    return {"z": z, "missed": missed, "blob": blob, "start": start, "reference": ref}


def shown_matches_label(window) -> None:
    view = window.slice_view
    assert_same(view.displayed_overlay, label_rgba(view.state.slice_of(view.label), view.state.overlay_opacity))


def test_left_click_adds_the_missed_region_right_click_removes_the_blob_undo_restores(window, imperfect, qtbot):
    view, z = window.slice_view, imperfect["z"]
    session = window.annotation.controller.session
    before = view.displayed_overlay.copy()
    fy, fx = _centre(imperfect["missed"])
    click(view, viewport_pos(view, z, fy, fx), Qt.LeftButton)
    wait_for_clicks(qtbot, window, 1)
    label = view.label
    assert label[z, fy, fx] == 1
    assert (label[z][imperfect["missed"]] > 0).mean() > 0.6
    others = np.ones(label.shape[0], bool)
    others[z] = False
    np.testing.assert_array_equal(label[others], imperfect["start"][others])  # one slice only
    shown_matches_label(window)
    assert window.annotation.controller.seeds_overlay.displayed("fg_click") == {
        tuple(view.state.display_position(z, fy, fx)[1:])}
    after_click = view.displayed_overlay.copy()

    by, bx = _centre(imperfect["blob"])
    click(view, viewport_pos(view, z, by, bx), Qt.RightButton)
    wait_for_clicks(qtbot, window, 2)
    assert label[z, by, bx] == 0
    assert (label[z][imperfect["blob"]] == 0).mean() > 0.6
    shown_matches_label(window)
    dice = session.dice()["1"]
    assert dice > 0.99 and window.annotation.dice_label.text() == f"volume Dice {dice:.3f}"
    assert "screen" in window.annotation.latency_label.text()
    timing = window.annotation.controller.probe.last
    assert timing.engine == DEFAULT_REFINER and timing.total_ms >= timing.compute_ms > 0

    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    assert_same(view.displayed_overlay, after_click)
    assert window.annotation.controller.seeds_overlay.displayed("bg_click") == set()
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    assert_same(view.displayed_overlay, before)
    np.testing.assert_array_equal(view.label, imperfect["start"])
    qtbot.keyClick(window, Qt.Key_Z, Qt.ShiftModifier | Qt.ControlModifier)
    assert_same(view.displayed_overlay, after_click)


def test_a_click_on_a_seed_dot_is_a_new_seed(window, imperfect, qtbot):
    view, z = window.slice_view, imperfect["z"]
    fy, fx = _centre(imperfect["missed"])
    click(view, viewport_pos(view, z, fy, fx), Qt.LeftButton)
    wait_for_clicks(qtbot, window, 1)
    # On a small zoom, neighbouring voxels lie under a seed's dot: the dot must not swallow the click.
    click(view, viewport_pos(view, z, fy, fx), Qt.LeftButton)
    wait_for_clicks(qtbot, window, 2)
    assert len(window.annotation.controller.session.seeds) == 2


def test_seeds_show_in_every_view_through_them(window, imperfect, qtbot):
    view, z = window.slice_view, imperfect["z"]
    fy, fx = _centre(imperfect["missed"])
    click(view, viewport_pos(view, z, fy, fx), Qt.LeftButton)
    wait_for_clicks(qtbot, window, 1)
    seeds = window.annotation.controller.seeds_overlay
    view.set_slice(z + 1)
    assert seeds.displayed("fg_click") == set()  # not on the next axial slice
    view.set_orientation("coronal")
    view.set_slice(fy)
    assert seeds.displayed("fg_click") == {tuple(view.state.display_position(z, fy, fx)[1:])}
    shown_matches_label(window)
    view.set_orientation("sagittal")
    view.set_slice(fx)
    assert seeds.displayed("fg_click") == {tuple(view.state.display_position(z, fy, fx)[1:])}


def test_right_drag_is_a_background_scribble(window, imperfect, qtbot):
    view, z = window.slice_view, imperfect["z"]
    ys, xs = np.nonzero(imperfect["blob"])
    y = int(ys.mean())
    drag(view, viewport_pos(view, z, y, int(xs.min()) + 1), viewport_pos(view, z, y, int(xs.max()) - 1),
         Qt.RightButton)
    wait_for_clicks(qtbot, window, 1)
    (seed,) = window.annotation.controller.session.seeds.all()
    assert seed.kind == "scribble" and not seed.foreground and len(seed.points) >= 2
    assert all(p[0] == z for p in seed.points)
    assert (view.label[z][imperfect["blob"]] == 0).mean() > 0.6
    assert window.annotation.controller.seeds_overlay.displayed("bg_scribble")
    shown_matches_label(window)


def test_brush_paints_eraser_erases_and_clicks_do_not_refine_in_paint_mode(window, imperfect, qtbot):
    view, z = window.slice_view, imperfect["z"]
    controller = window.annotation.controller
    label = view.label
    qtbot.keyClick(window, Qt.Key_B)
    assert controller.brush.mode == "paint" and window.actions["paint"].isChecked()
    qtbot.keyClick(window, Qt.Key_BracketRight)
    assert controller.brush.radius_px == 4 and window.annotation.radius_spin.value() == 4
    y, x0, x1 = 80, 20, 40  # background, far from the tumour
    assert not label[z, y - 5:y + 6, x0 - 5:x1 + 6].any()
    drag(view, viewport_pos(view, z, y, x0), viewport_pos(view, z, y, x1), Qt.LeftButton)
    painted = label[z, y, x0:x1 + 1]
    assert painted.all() and label[z, y + 4, (x0 + x1) // 2] == 1 and label[z, y + 6, (x0 + x1) // 2] == 0
    shown_matches_label(window)
    click(view, viewport_pos(view, z, 10, 100), Qt.LeftButton)  # a click paints a dab, no refinement
    assert label[z, 10, 100] == 1 and not controller.pending and controller.probe.last is None
    assert len(controller.session.seeds) == 0

    qtbot.keyClick(window, Qt.Key_E)
    assert controller.brush.mode == "erase" and not window.actions["paint"].isChecked()
    drag(view, viewport_pos(view, z, y, x0), viewport_pos(view, z, y, x1), Qt.LeftButton)
    assert not label[z, y - 5:y + 6, x0 - 5:x1 + 6].any()
    qtbot.keyClick(window, Qt.Key_Escape)
    assert controller.brush.mode is None
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)  # undo the erase: the stroke is back
    assert label[z, y, x0:x1 + 1].all()


def test_clear_seeds_of_a_slice_keeps_the_label(window, imperfect, qtbot):
    view, z = window.slice_view, imperfect["z"]
    fy, fx = _centre(imperfect["missed"])
    click(view, viewport_pos(view, z, fy, fx), Qt.LeftButton)
    wait_for_clicks(qtbot, window, 1)
    label = view.label.copy()
    qtbot.keyClick(window, Qt.Key_Delete, Qt.ControlModifier)
    assert len(window.annotation.controller.session.seeds) == 0
    assert window.annotation.controller.seeds_overlay.displayed("fg_click") == set()
    np.testing.assert_array_equal(view.label, label)
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    assert len(window.annotation.controller.session.seeds) == 1


def _click_on_an_idle_worker(window, imperfect, qtbot, extra_clicks: int = 0):
    """Wait for the warm-up job, then left-click the missed strip (plus extra clicks beside it,
    which queue behind the first), and paint a brush dab before any result can arrive (results
    need the event loop). Returns (view, z, controller, (fy, fx))."""
    view, z = window.slice_view, imperfect["z"]
    controller = window.annotation.controller
    # A click queued behind the warm-up job would be planned after the dab: never stale.
    qtbot.waitUntil(lambda: controller.worker.busy is None, timeout=20000)
    fy, fx = _centre(imperfect["missed"])
    for dx in range(extra_clicks + 1):
        click(view, viewport_pos(view, z, fy, fx + dx), Qt.LeftButton)
    assert controller.worker.busy is not None and len(controller.pending) == extra_clicks
    controller.brush.set_mode("paint")
    controller.on_click(z, 80, 30, int(Qt.LeftButton))
    controller.brush.set_mode(None)
    return view, z, controller, (fy, fx)


def test_a_stale_result_is_computed_again_on_the_new_state(window, imperfect, qtbot):
    view, z, controller, (fy, fx) = _click_on_an_idle_worker(window, imperfect, qtbot)
    wait_for_clicks(qtbot, window, 1)
    assert controller.probe.last.recomputed == 1
    assert view.label[z, 80, 30] == 1 and view.label[z, fy, fx] == 1  # both kept
    kinds = [e.kind for e in controller.session.history.undo_stack]
    assert kinds[-2:] == ["brush", "click"]


def test_a_click_waiting_behind_another_job_is_planned_on_the_state_it_meets(window, imperfect, qtbot):
    view, z, controller, _ = _click_on_an_idle_worker(window, imperfect, qtbot, extra_clicks=1)
    wait_for_clicks(qtbot, window, 2)
    # the first was computed before the dab (stale once), the second planned after it (never stale)
    assert [t.recomputed for t in controller.probe.samples[-2:]] == [1, 0]
    assert view.label[z, 80, 30] == 1
    kinds = [e.kind for e in controller.session.history.undo_stack]
    assert kinds[-3:] == ["brush", "click", "click"]


def test_outside_click_and_broken_engine_give_messages_not_tracebacks(window, imperfect, qtbot, monkeypatch):
    view, z = window.slice_view, imperfect["z"]
    corner = viewport_pos(view, z, 0, 0)
    click(view, QPoint(corner.x() - 30, corner.y() + 30), Qt.LeftButton)  # in the black margin
    assert "outside the image" in window.last_message

    class BrokenRefiner(Refiner):
        name = "broken"

        def _refine(self, request, checked):
            raise RuntimeError("engine exploded")

    monkeypatch.setitem(REFINERS, "broken", BrokenRefiner)
    window.annotation.controller.set_engine("broken")
    label = view.label.copy()
    fy, fx = _centre(imperfect["missed"])
    click(view, viewport_pos(view, z, fy, fx), Qt.LeftButton)
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=10000)
    assert "broken engine could not refine" in window.last_error and "RuntimeError" in window.last_error
    assert "Traceback" not in window.last_error and "label is unchanged" in window.last_error
    np.testing.assert_array_equal(view.label, label)
    for box in [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]:
        box.close()


def test_propagation_is_undoable_and_refuses_clicks_while_it_runs(window, volumes, qtbot, tmp_path):
    image, reference = volumes[CASE]
    ref = reference.array
    z = int(np.argmax(ref.sum(axis=(1, 2))))
    one_slice = np.zeros_like(ref)
    one_slice[z] = ref[z]
    open_case(window, CASE)
    write_label(one_slice, image, tmp_path / "one.nii.gz")
    assert window.open_label(tmp_path / "one.nii.gz")
    view = window.slice_view
    view.set_slice(z)
    activate(qtbot, window)
    qtbot.keyClick(window, Qt.Key_P)
    assert window.annotation.jobs.running
    click(view, viewport_pos(view, z, 40, 50), Qt.LeftButton)
    assert "propagation is running" in window.last_message
    wait_for_volume_job(qtbot, window)
    assert window.last_error is None, window.last_error
    label = view.label
    assert label[z - 1].any() and label[z + 1].any()
    np.testing.assert_array_equal(label[z], ref[z])
    assert "Propagated to slices" in window.last_message
    view.set_slice(z + 1)
    shown_matches_label(window)
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    np.testing.assert_array_equal(view.label, one_slice)
    shown_matches_label(window)


def test_save_writes_the_label_on_the_image_grid_and_moves_the_status(window, imperfect, volumes, qtbot):
    view, z = window.slice_view, imperfect["z"]
    fy, fx = _centre(imperfect["missed"])
    click(view, viewport_pos(view, z, fy, fx), Qt.LeftButton)
    wait_for_clicks(qtbot, window, 1)
    qtbot.keyClick(window, Qt.Key_S, Qt.ControlModifier)
    path = window.store.path.parent / "labels" / f"{CASE}.nii.gz"
    assert path.is_file(), window.last_error
    image = volumes[CASE][0]
    saved = read_label(path, image)  # raises if size, spacing, origin or direction differ
    np.testing.assert_array_equal(saved.array, view.label)
    record = window.store.get(window.case.case_id)
    assert record.status == "in progress" and record.label_path == path.resolve()
    assert record.clicks == 1 and record.seconds_spent > 0
    assert f"{CASE}   [in progress]" in window.case_list.row_texts()
    qtbot.keyClick(window, Qt.Key_D, Qt.ControlModifier)
    assert window.store.get(window.case.case_id).status == "done"
    assert not window.annotation.controller.has_unsaved_work


def test_clicks_on_a_case_without_any_label_start_from_empty(window, volumes, qtbot, tmp_path):
    shutil.copy(DATA / f"{CASE}.nii.gz", tmp_path / "bare.nii.gz")
    assert window.open_file(tmp_path / "bare.nii.gz"), window.last_error
    assert window.case.label is None
    ref = volumes[CASE][1].array
    z = int(np.argmax(ref.sum(axis=(1, 2))))
    view = window.slice_view
    view.set_slice(z)
    cy, cx = _centre(ref[z] > 0)
    click(view, viewport_pos(view, z, cy, cx), Qt.LeftButton)
    wait_for_clicks(qtbot, window, 1)
    label = view.label
    assert label[z, cy, cx] == 1 and label.sum() == label[z].sum() > 20
    assert window.annotation.dice_label.text() == ""  # no reference, no Dice
    shown_matches_label(window)


def test_readme_and_help_show_every_shortcut(window):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for row in shortcuts_markdown().splitlines():
        assert row in readme, f"README.md lacks the shortcut row {row!r}"
    dialog = window.show_shortcuts()
    texts = {dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert "Foreground seed: add the missed region there (refined by the chosen engine)" in texts
    dialog.close()
