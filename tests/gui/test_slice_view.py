"""The slice view in a real main window: what it displays after each user action.

Assertions compare the arrays the image and overlay items hold with slices computed here from the
volume read independently, so a wrong axis, flip, window or colour fails.
"""
from __future__ import annotations

import numpy as np
import pytest
from PyQt5.QtCore import QPoint, Qt

from app.core.intensity import CT_PRESETS, Window, apply_window, percentile_window
from app.core.view_state import drag_window
from app.gui.overlay import LABEL_COLOURS, label_rgba
from tests.gui.helpers import (CASES, assert_same, click, drag, open_case, send_mouse, send_wheel,
                               viewport_pos)


def expected_slice(array, orientation, index):
    """The displayed orientation convention, written out independently of view_state."""
    if orientation == "axial":
        return array[index]
    if orientation == "coronal":
        return np.flipud(array[:, index, :])
    return np.flipud(array[:, :, index])


def assert_shows(window, image, orientation, index):
    state = window.slice_view.state
    assert (state.orientation.value, state.slice_index) == (orientation, index)
    expected = apply_window(expected_slice(image.array, orientation, index), state.window)
    assert_same(window.slice_view.displayed_image, expected)


def centre_pos(window):
    view, state = window.slice_view, window.slice_view.state
    return viewport_pos(view, *state.cursor)


def test_start_lists_the_bundled_cases_with_their_status(window):
    assert window.case_list.row_texts() == [f"{name}   [new]" for name in CASES]
    assert [r.name for r in window.store.list_cases()] == list(CASES)


@pytest.mark.parametrize("name", CASES)
def test_each_case_opens_on_its_label_with_the_modality_window(window, volumes, name):
    open_case(window, name)
    image, label = volumes[name]
    state = window.slice_view.state
    expected_window = CT_PRESETS["Soft tissue"] if name.endswith("_ct") else percentile_window(image.array)
    assert state.window == expected_window
    assert window.case.label_source == "reference"
    # Opens on the axial slice where the label is largest.
    assert state.slice_index == int(np.argmax((label.array != 0).sum(axis=(1, 2))))
    assert_shows(window, image, "axial", state.slice_index)
    overlay = window.slice_view.displayed_overlay
    label_slice = label.array[state.slice_index]
    assert_same(overlay, label_rgba(label_slice, state.overlay_opacity))
    assert ((overlay[..., 3] > 0) == (label_slice > 0)).all() and label_slice.any()
    assert name in window.windowTitle()


def test_wheel_and_page_keys_scroll_slices(window, volumes, qtbot):
    open_case(window, "sts002_ct")
    image = volumes["sts002_ct"][0]
    view = window.slice_view
    start = view.state.slice_index
    send_wheel(view, centre_pos(window), 1)
    assert_shows(window, image, "axial", start + 1)
    send_wheel(view, centre_pos(window), -3)
    assert_shows(window, image, "axial", start - 2)
    qtbot.keyClick(window, Qt.Key_PageUp)
    assert_shows(window, image, "axial", start - 1)
    qtbot.keyClick(window, Qt.Key_PageDown)
    qtbot.keyClick(window, Qt.Key_PageDown)
    assert_shows(window, image, "axial", start - 3)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key_Up)
    assert_shows(window, image, "axial", start - 2)
    qtbot.keyClick(view, Qt.Key_Down)
    assert_shows(window, image, "axial", start - 3)
    # Scrolling stops at the last slice instead of wrapping or failing.
    send_wheel(view, centre_pos(window), 200)
    assert_shows(window, image, "axial", image.shape[0] - 1)
    assert window.slice_label.text() == f"axial  slice {image.shape[0]} / {image.shape[0]}"


@pytest.mark.parametrize("key, orientation, shape_axes, mm_axes", [
    (Qt.Key_2, "coronal", (0, 2), (2, 0)),
    (Qt.Key_3, "sagittal", (0, 1), (2, 1)),
    (Qt.Key_1, "axial", (1, 2), (1, 0)),
])
def test_orientation_keys_show_the_slice_at_physical_aspect(window, volumes, qtbot, key, orientation,
                                                            shape_axes, mm_axes):
    open_case(window, "sts002_ct")
    image = volumes["sts002_ct"][0]
    if orientation == "axial":
        qtbot.keyClick(window, Qt.Key_3)
    cursor = list(window.slice_view.state.cursor)
    qtbot.keyClick(window, key)
    axis = {"axial": 0, "coronal": 1, "sagittal": 2}[orientation]
    assert_shows(window, image, orientation, cursor[axis])
    rows, cols = (image.shape[a] for a in shape_axes)
    assert window.slice_view.displayed_image.shape == (rows, cols)
    # On screen, one displayed pixel is (row spacing) tall and (column spacing) wide, in one scale.
    row_mm, col_mm = (image.spacing[a] for a in mm_axes)
    on_screen = window.slice_view.image_item.sceneBoundingRect()
    assert on_screen.height() / on_screen.width() == pytest.approx((rows * row_mm) / (cols * col_mm), rel=1e-3)
    assert window.view_controls.orientation_combo.currentData() == orientation


def test_coronal_slices_of_anisotropic_ct_are_stretched_3_3_times(window, qtbot):
    open_case(window, "sts002_ct")
    qtbot.keyClick(window, Qt.Key_2)
    view = window.slice_view
    z, y, x = view.state.cursor
    a, b, c = (viewport_pos(view, z, y, x), viewport_pos(view, z + 1, y, x), viewport_pos(view, z, y, x + 1))
    pixel_height, pixel_width = abs(b.y() - a.y()), abs(c.x() - a.x())
    assert b.y() < a.y()  # higher z is drawn higher up
    assert pixel_height / pixel_width == pytest.approx(3.27 / 0.9766, rel=0.15)


def test_orientation_combo_switches_view(window, volumes):
    open_case(window, "lits117_ct")
    combo = window.view_controls.orientation_combo
    combo.activated.emit(combo.findData("sagittal"))
    assert_shows(window, volumes["lits117_ct"][0], "sagittal", window.slice_view.state.cursor[2])
    assert window.actions["sagittal"].isChecked()


def test_window_presets_and_middle_drag_change_displayed_values(window, volumes):
    open_case(window, "sts002_ct")
    image, view = volumes["sts002_ct"][0], window.slice_view
    index = view.state.slice_index
    window.window_level.choose_preset("Lung")
    assert view.state.window == Window(1500, -600)
    assert_shows(window, image, "axial", index)
    window.window_level.choose_preset("Bone")
    assert_same(view.displayed_image, apply_window(image.array[index], Window(2500, 480)))
    start = centre_pos(window)
    drag(view, start, start + QPoint(60, 30), Qt.MiddleButton)
    expected = drag_window(Window(2500, 480), 60, 30)
    assert view.state.window == expected
    assert_shows(window, image, "axial", index)
    assert window.window_level.preset_combo.currentData() == "Custom"
    assert window.window_level.width_spin.value() == pytest.approx(expected.width, abs=0.06)
    # Ctrl+left drag does the same for touchpads; plain left drag does not touch the window.
    drag(view, start, start + QPoint(-60, 0), Qt.LeftButton, Qt.ControlModifier)
    assert view.state.window.width == pytest.approx(2500)
    drag(view, start, start + QPoint(80, 80), Qt.LeftButton)
    assert view.state.window.width == pytest.approx(2500)


def test_mr_auto_window_is_percentile_and_spin_boxes_apply(window, volumes):
    open_case(window, "sts002_mr")
    image = volumes["sts002_mr"][0]
    window.window_level.choose_preset("Soft tissue")
    window.window_level.choose_preset("Auto (1–99 %)")
    assert window.slice_view.state.window == percentile_window(image.array)
    window.window_level.width_spin.setValue(300)
    window.window_level.level_spin.setValue(150)
    window.window_level.level_spin.editingFinished.emit()
    assert window.slice_view.state.window == Window(300, 150)
    assert_shows(window, image, "axial", window.slice_view.state.slice_index)


def test_overlay_toggle_contours_and_opacity(window, volumes, qtbot):
    open_case(window, "sts002_ct")
    label = volumes["sts002_ct"][1].array
    view = window.slice_view
    label_slice = label[view.state.slice_index]
    filled = view.displayed_overlay
    qtbot.keyClick(window, Qt.Key_O)
    assert view.displayed_overlay is None and not window.view_controls.overlay_check.isChecked()
    qtbot.keyClick(window, Qt.Key_O)
    assert_same(view.displayed_overlay, filled)
    qtbot.keyClick(window, Qt.Key_C)
    contour = view.displayed_overlay
    assert_same(contour, label_rgba(label_slice, view.state.overlay_opacity, contours=True))
    drawn = contour[..., 3] > 0
    assert 0 < drawn.sum() < (label_slice > 0).sum() / 3
    assert (label_slice[drawn] > 0).all()
    assert window.actions["toggle_contours"].isChecked() and window.view_controls.contour_check.isChecked()
    window.view_controls.contour_check.setChecked(False)
    window.view_controls.opacity_slider.setValue(100)
    assert set(np.unique(view.displayed_overlay[..., 3])) == {0, 255}
    window.view_controls.opacity_slider.setValue(0)
    assert not view.displayed_overlay[..., 3].any()


def test_lits_shows_liver_and_tumour_in_two_colours(window, volumes):
    open_case(window, "lits117_ct")
    label = volumes["lits117_ct"][1].array
    both = [z for z in range(label.shape[0]) if {1, 2} <= set(np.unique(label[z]))]
    window.slice_view.set_slice(both[len(both) // 2])
    overlay = window.slice_view.displayed_overlay
    shown = overlay[..., 3] > 0
    colours = {tuple(c) for c in overlay[shown][:, :3]}
    assert colours == {tuple(LABEL_COLOURS[1]), tuple(LABEL_COLOURS[2])}
    assert tuple(LABEL_COLOURS[1]) != tuple(LABEL_COLOURS[2])
    tumour = label[window.slice_view.state.slice_index] == 2
    assert (overlay[tumour][:, :3] == LABEL_COLOURS[2]).all()


def test_status_bar_shows_voxel_mm_and_value_under_the_mouse(window, volumes, qtbot):
    open_case(window, "sts002_ct")
    qtbot.keyClick(window, Qt.Key_3)  # sagittal: rows are flipped z, columns are y
    image, label = volumes["sts002_ct"]
    view = window.slice_view
    z, y, x = 30, 50, view.state.cursor[2]
    send_mouse(view, "move", viewport_pos(view, z, y, x))
    wx, wy, wz = image.index_to_world(z, y, x)
    text = window.cursor_label.text()
    assert f"({x}, {y}, {z})" in text
    assert f"({wx:.1f}, {wy:.1f}, {wz:.1f}) mm" in text
    assert f"value {int(image.array[z, y, x])}" in text
    assert f"label {int(label.array[z, y, x])}" in text
    qtbot.wait(15)  # pyqtgraph drops moves that follow each other within 1/mouseRateLimit s
    send_mouse(view, "move", QPoint(2, 2))  # outside the image (view corner)
    assert window.cursor_label.text() == ""


def test_clicks_report_the_voxel_and_button(window, qtbot):
    open_case(window, "sts002_ct")
    qtbot.keyClick(window, Qt.Key_2)
    view = window.slice_view
    z, y, x = 10, view.state.cursor[1], 100
    for button in (Qt.LeftButton, Qt.RightButton):
        with qtbot.waitSignal(view.voxelClicked, timeout=1000) as blocker:
            click(view, viewport_pos(view, z, y, x), button)
        assert blocker.args == [z, y, x, int(button)]


def test_zoom_keys_and_ctrl_wheel_zoom_and_shift_drag_pans(window, qtbot):
    open_case(window, "btp10_pre_t1c")
    view = window.slice_view

    def width():
        (x0, x1), _ = view.view_box.viewRange()
        return x1 - x0

    fit = width()
    qtbot.keyClick(window, Qt.Key_Plus)
    assert width() == pytest.approx(fit / 1.25, rel=0.02)
    qtbot.keyClick(window, Qt.Key_Minus)
    qtbot.keyClick(window, Qt.Key_Minus)
    assert width() == pytest.approx(fit * 1.25, rel=0.02)
    qtbot.keyClick(window, Qt.Key_0)
    assert width() == pytest.approx(fit, rel=0.02)
    index = view.state.slice_index
    send_wheel(view, centre_pos(window), 2, Qt.ControlModifier)
    assert width() < fit * 0.95 and view.state.slice_index == index
    before = view.view_box.viewRange()[0][0]
    start = centre_pos(window)
    drag(view, start, start + QPoint(50, 0), Qt.LeftButton, Qt.ShiftModifier)
    assert view.view_box.viewRange()[0][0] < before - 1  # the image moved right with the mouse


def test_shortcuts_dialog_shows_the_shared_table(window):
    from app.gui.shortcuts import keyboard_shortcuts

    dialog = window.show_shortcuts()
    table = dialog.table
    rows = [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())]
    assert rows == keyboard_shortcuts()
    assert any("Window/level" in text for _, text in rows)
    dialog.close()
