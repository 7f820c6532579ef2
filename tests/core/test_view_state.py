"""View geometry without a display: slicing per orientation, index mapping, aspect, clamping."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.intensity import Window
from app.core.view_state import (Orientation, ViewState, display_flips, display_to_voxel, drag_window,
                                 extract_slice, focus_cursor, pixel_size_mm, voxel_to_display)
from app.core.volume import Volume

SHAPE = (5, 7, 9)
VOLUME = np.arange(np.prod(SHAPE)).reshape(SHAPE)


def test_slices_are_oriented_head_up():
    assert extract_slice(VOLUME, Orientation.AXIAL, 2).shape == (7, 9)
    coronal = extract_slice(VOLUME, Orientation.CORONAL, 3)
    sagittal = extract_slice(VOLUME, Orientation.SAGITTAL, 4)
    assert coronal.shape == (5, 9) and sagittal.shape == (5, 7)
    assert coronal[0, 0] == VOLUME[4, 3, 0] and coronal[-1, 0] == VOLUME[0, 3, 0]
    assert sagittal[0, 6] == VOLUME[4, 6, 4]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Orientation)), st.integers(0, 4), st.integers(0, 6), st.integers(0, 8),
       st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_display_position_and_voxel_index_are_inverse(orientation, z, y, x, flips):
    index, row, column = voxel_to_display(SHAPE, orientation, z, y, x, flips)
    assert display_to_voxel(SHAPE, orientation, index, row + 0.5, column + 0.99, flips) == (z, y, x)
    assert extract_slice(VOLUME, orientation, index, flips)[row, column] == VOLUME[z, y, x]


def test_flips_follow_the_direction_so_anatomy_is_shown_the_same_way():
    assert display_flips((1, 0, 0, 0, 1, 0, 0, 0, 1)) == (True, False, False)
    # RAS-stored NIfTI as ITK reads it: x and y run the other way, so they are reversed for display.
    assert display_flips((-1, 0, 0, 0, -1, 0, 0, 0, 1)) == (True, True, True)
    assert display_flips((1, 0, 0, 0, 1, 0, 0, 0, -1)) == (False, False, False)
    lps = Volume(VOLUME.copy(), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
    ras = Volume(VOLUME[:, ::-1, ::-1].copy(), direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    for orientation in Orientation:
        shown = []
        for volume in (lps, ras):
            state = ViewState.for_volume(volume, Window(1, 0), orientation=orientation)
            shown.append(state.slice_of(volume.array))
        np.testing.assert_array_equal(shown[0], shown[1])


def test_positions_outside_the_slice_are_none():
    for row, column in ((-0.01, 0), (0, -0.5), (7, 0), (0, 9)):
        assert display_to_voxel(SHAPE, Orientation.AXIAL, 0, row, column) is None


def test_pixel_size_follows_the_anisotropic_spacing():
    spacing = (0.98, 0.98, 3.3)
    assert pixel_size_mm(spacing, Orientation.AXIAL) == (0.98, 0.98)
    assert pixel_size_mm(spacing, Orientation.CORONAL) == (3.3, 0.98)
    assert pixel_size_mm(spacing, Orientation.SAGITTAL) == (3.3, 0.98)
    state = ViewState(SHAPE, (0.5, 0.7, 3.0), Window(100, 0), orientation="sagittal")
    assert state.extent_mm == pytest.approx((5 * 3.0, 7 * 0.7))


def test_slice_index_is_clamped_and_kept_per_axis():
    state = ViewState(SHAPE, (1, 1, 1), Window(100, 0))
    assert state.cursor == [2, 3, 4] and state.slice_index == 2
    assert state.step(10) and state.slice_index == 4
    assert not state.step(1)
    state.set_orientation(Orientation.SAGITTAL)
    assert state.slice_count == 9 and state.slice_index == 4
    state.set_slice(-3)
    assert state.slice_index == 0
    state.set_orientation("axial")
    assert state.slice_index == 4  # the axial position survived the detour
    np.testing.assert_array_equal(state.slice_of(VOLUME), VOLUME[4])
    with pytest.raises(ValueError):
        state.slice_of(np.zeros((1, 2, 3)))


def test_display_image_is_the_windowed_slice():
    state = ViewState(SHAPE, (1, 1, 1), Window(40, 150))  # 130..170; the slice holds 126..188
    shown = state.display_image(VOLUME)
    assert shown.dtype == np.float32 and shown.min() == 0 and shown.max() == 1
    assert VOLUME[2, 2, 6] == 150 and shown[2, 6] == pytest.approx(0.5)


def test_drag_window_scales_width_and_shifts_level():
    start = Window(400, 40)
    assert drag_window(start, 200, 0) == Window(800, 40)
    assert drag_window(start, -200, 0) == Window(200, 40)
    assert drag_window(start, 0, -100) == Window(400, 240)
    assert drag_window(Window(1e-3, 0), -1000, 0).width >= 1e-3


def test_focus_cursor_finds_the_largest_label_slices():
    label = np.zeros(SHAPE, np.uint8)
    label[1, 2:5, 3:8] = 1
    label[3, 2, 3] = 2
    assert focus_cursor(label) == [1, 2, 3]
    assert focus_cursor(np.zeros(SHAPE, np.uint8)) is None
