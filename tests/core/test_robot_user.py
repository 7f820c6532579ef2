"""The robot clicker of PROTOCOLS.md section 1 and its metrics."""
import numpy as np
import pytest

from app.core.refine import Refiner, get_refiner
from app.core.robot_user import (MAX_CLICKS, Click, dice, evaluation_slices, next_click,
                                 run_session)


def disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def test_first_click_from_zero_is_the_centre_of_the_object():
    gt = disk((64, 64), (30, 34), 10)
    click = next_click(gt, np.zeros_like(gt), np.zeros_like(gt))
    assert click == Click(30, 34, True)


def test_false_positive_blob_larger_than_any_miss_gets_a_background_click():
    gt = disk((80, 80), (20, 20), 8)
    pred = gt | disk((80, 80), (55, 55), 12)
    click = next_click(gt, pred, np.zeros_like(gt))
    assert click == Click(55, 55, False)


def test_image_border_counts_as_an_edge_and_clicked_pixels_are_skipped():
    gt = np.zeros((40, 40), bool)
    gt[:, :9] = True                               # a strip touching the left border
    click = next_click(gt, np.zeros_like(gt), np.zeros_like(gt))
    assert click.x == 4                            # padded EDT: centre of the strip, not x=8
    clicked = np.zeros_like(gt)
    clicked[click.y, click.x] = True
    again = next_click(gt, np.zeros_like(gt), clicked)
    assert (again.y, again.x) != (click.y, click.x) and gt[again.y, again.x]


def test_noisy_clicker_lands_in_the_inner_half_and_is_reproducible():
    gt = disk((64, 64), (32, 32), 12)
    pred = np.zeros_like(gt)
    clicks = [next_click(gt, pred, pred, "noisy", np.random.default_rng(s)) for s in range(20)]
    for c in clicks:
        assert c.foreground and (c.y - 32) ** 2 + (c.x - 32) ** 2 <= 7 ** 2   # EDT >= half of 13
    assert len({(c.y, c.x) for c in clicks}) > 3
    again = next_click(gt, pred, pred, "noisy", np.random.default_rng(0))
    assert again == clicks[0]
    with pytest.raises(ValueError, match="seeded"):
        next_click(gt, pred, pred, "noisy")


def test_nothing_left_to_fix_gives_no_click():
    gt = disk((32, 32), (16, 16), 5)
    assert next_click(gt, gt, np.zeros_like(gt)) is None


class Oracle(Refiner):
    """Answers every click with the ground truth: NoC must be exactly 1."""
    name = "oracle"

    def __init__(self, gt):
        self.gt = gt

    def _refine(self, request, checked):
        h, w = self.gt.shape
        return self.gt.astype(np.uint8), (0, h, 0, w), {}


def test_session_metrics_with_an_oracle_and_with_no_refinement():
    gt = disk((64, 64), (32, 32), 12)
    image = np.where(gt, 200.0, 50.0).astype(np.float32)
    zero = np.zeros(gt.shape, np.uint8)
    oracle = run_session(Oracle(gt), image, gt, zero)
    assert oracle.dices[0] == 0.0 and oracle.dices[1] == 1.0
    assert oracle.noc(0.85) == 1 and oracle.noc(0.90) == 1
    assert oracle.dice_after(10) == 1.0 and len(oracle.seconds) == 1   # nothing left to click

    none = run_session(get_refiner("none"), image, gt, zero, stop_at=None)
    assert len(none.seconds) == MAX_CLICKS and none.noc(0.90) == MAX_CLICKS
    assert set(none.dices) == {0.0}
    assert len({(c.y, c.x) for c in none.clicks}) == MAX_CLICKS      # never the same pixel twice


def test_start_already_good_counts_zero_clicks():
    gt = disk((64, 64), (32, 32), 12)
    image = np.where(gt, 200.0, 50.0).astype(np.float32)
    result = run_session(get_refiner("none"), image, gt, gt.astype(np.uint8))
    assert result.noc(0.90) == 0 and result.seconds == []


def test_geodesic_crf_session_on_an_easy_slice():
    gt = disk((96, 96), (48, 48), 16)
    rng = np.random.default_rng(0)
    image = (np.where(gt, 300.0, 100.0) + rng.normal(0, 15, gt.shape)).astype(np.float32)
    result = run_session(get_refiner("geodesic-crf"), image, gt, np.zeros(gt.shape, np.uint8))
    assert result.noc(0.90) <= 3 and result.dice_after(5) > 0.9


def test_evaluation_slices_largest_plus_every_kth():
    label = np.zeros((10, 8, 8), np.uint8)
    label[2:9, 2:4, 2:4] = 1
    label[7, :, :] = 1                             # slice 7 has the largest area
    assert evaluation_slices(label, 3) == [3, 6, 7]          # fg 2..8: phase 1, plus largest 7
    assert evaluation_slices(label, 1) == [2, 3, 4, 5, 6, 7, 8]
    assert evaluation_slices(np.zeros((4, 4, 4)), 2) == []


def test_dice():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    assert dice(a, a) == 1.0 and dice(a, ~a) == 0.0 and dice(~a & a, ~a & a) == 1.0


def test_3d_robot_clicks_the_largest_error_component_and_refines_that_slice():
    from app.core.robot_user import area_under_dice, next_click_3d, run_session_3d

    n = 32
    zz, yy, xx = np.mgrid[:n, :n, :n]
    gt = (zz - 16) ** 2 + (yy - 16) ** 2 + (xx - 16) ** 2 <= 64
    small = np.zeros_like(gt)
    small[2:4, 2:4, 2:4] = True                    # a small false positive far away
    pred = np.zeros_like(gt) | small
    click = next_click_3d(gt, pred, np.zeros_like(gt))
    assert (click.z, click.y, click.x, click.foreground) == (16, 16, 16, True)

    volume = np.where(gt, 300.0, 100.0).astype(np.float32)
    result = run_session_3d(get_refiner("geodesic-crf"), volume, gt, pred.astype(np.uint8),
                            max_clicks=3)
    assert len(result.dices) == 4 and result.dices[1] > result.dices[0]
    assert 0 < area_under_dice(result, 3) <= 4.0


def test_3d_robot_with_propagation_carries_each_corrected_slice_to_its_neighbours():
    from app.core.robot_user import run_session_3d

    n = 32
    zz, yy, xx = np.mgrid[:n, :n, :n]
    gt = ((yy - 16) ** 2 + (xx - 16) ** 2 <= 36) & (zz >= 6) & (zz < 26)    # a 20-slice cylinder
    noise = np.random.default_rng(0).normal(0, 10, gt.shape)                 # as a scan has
    volume = (np.where(gt, 300.0, 100.0) + noise).astype(np.float32)
    empty = np.zeros(gt.shape, np.uint8)
    plain = run_session_3d(get_refiner("geodesic-crf"), volume, gt, empty, max_clicks=1)
    spread = run_session_3d(get_refiner("geodesic-crf"), volume, gt, empty, max_clicks=1,
                            propagate=True)
    assert plain.dices[1] < 0.15                  # one slice of twenty
    assert spread.dices[1] > 0.9                  # the click's slice carried along the cylinder
    assert len(spread.seconds) == 1
