"""Iterative-training data: robot sessions recorded with an engine in the loop."""
import numpy as np
import pytest

from app.core.robot_user import next_click
from models.correction.data import robot_click
from models.correction.inputs import PATCH, crop, patch_box
from models.correction.session_data import (SessionSlice, record_session, session_patches,
                                            session_score)


def _disk(shape, cy, cx, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _item(start_radius=12):
    gt = _disk((96, 96), 48, 48, 20)
    image = np.where(gt, 200.0, 50.0).astype(np.float32)
    return SessionSlice("case", image, gt, {"small": _disk((96, 96), 48, 48, start_radius)},
                        (1.0, 1.0))


def perfect_step(gt):
    return lambda image, mask, fg, bg, newest, is_fg, spacing: gt.copy()


def idle_step(image, mask, fg, bg, newest, is_fg, spacing):
    return mask


@pytest.mark.parametrize("seed", range(6))
def test_training_clicks_follow_the_benchmark_robot(seed):
    """The sessions must click where benchmarks/clicks.py's robot clicks, or the net trains on
    another user than the one it is measured with."""
    rng = np.random.default_rng(seed)
    gt = _disk((64, 64), *rng.integers(20, 44, 2), int(rng.integers(6, 15)))
    mask = _disk((64, 64), *rng.integers(20, 44, 2), int(rng.integers(6, 15)))
    clicked = np.zeros(gt.shape, bool)
    for _ in range(5):
        ours = robot_click(gt, mask, clicked)
        theirs = next_click(gt, mask, clicked, "exact")
        if theirs is None:
            assert ours is None
            break
        assert ours == ((theirs.y, theirs.x), theirs.foreground)
        clicked[theirs.y, theirs.x] = True


def test_noisy_click_lies_in_the_inner_half_of_the_error():
    gt = _disk((80, 80), 40, 40, 25)
    mask = np.zeros_like(gt)
    rng = np.random.default_rng(0)
    for _ in range(20):
        (y, x), is_fg = robot_click(gt, mask, None, rng)
        assert is_fg and (y - 40) ** 2 + (x - 40) ** 2 <= 13 ** 2


def test_a_session_records_what_the_net_was_given_before_each_click():
    item = _item()
    out = record_session(idle_step, item, item.starts["small"], np.random.default_rng(0),
                         max_clicks=4)
    assert len(out) == 4                       # nothing fixed, so every click is recorded
    (cy, cx), _ = robot_click(item.gt, item.starts["small"])
    box = patch_box(item.gt.shape, (cy, cx), PATCH)
    for img, rest, target in out:
        assert img.shape == (1, PATCH, PATCH) and rest.shape == (3, PATCH, PATCH)
        assert rest[1, PATCH // 2, PATCH // 2] == pytest.approx(1.0)    # newest: a fg click
        assert not rest[2].any()                                        # no bg click
        assert target.max() == 1.0 and target.min() == 0.0
    # the first patch holds the start mask and the ground truth around the first click
    np.testing.assert_array_equal(out[0][1][0], crop(item.starts["small"].astype(np.float32), box))
    np.testing.assert_array_equal(out[0][2][0], crop(item.gt.astype(np.float32), box))
    # every click is a new pixel, so the click maps grow
    sums = [float(rest[1].sum()) for _, rest, _ in out]
    assert sums == sorted(sums) and sums[-1] > sums[0]


def test_a_session_stops_once_the_engine_has_fixed_the_slice():
    item = _item()
    out = record_session(perfect_step(item.gt), item, item.starts["small"],
                         np.random.default_rng(0), max_clicks=10)
    assert len(out) == 1


def test_session_score_measures_dice_over_clicks():
    item = _item()
    start_dice = 2 * (item.starts["small"] & item.gt).sum() / (item.starts["small"].sum() + item.gt.sum())
    perfect = session_score(perfect_step(item.gt), [item], clicks=5)
    idle = session_score(idle_step, [item], clicks=5)
    assert perfect == {"dice_auc": 1.0, "noc90": 1.0, "sessions": 1}
    assert idle["noc90"] == 6.0 and idle["dice_auc"] == pytest.approx(start_dice)


def test_session_patches_stack_as_float16_arrays():
    item = _item()
    arrays = session_patches(idle_step, [item, item], np.random.default_rng(0), max_clicks=3)
    assert [a.dtype for a in arrays] == [np.float16] * 3
    assert len(arrays[0]) == 6 and arrays[1].shape[1:] == (3, PATCH, PATCH)


def test_synthetic_validation_slices_tell_a_grabbing_engine_from_a_timid_one():
    from models.correction.session_data import synthetic_slices

    items = synthetic_slices(np.random.default_rng(0), count=6)
    assert len(items) == 6 and all(set(i.starts) == {"zero"} for i in items)
    assert {bool(i.image[i.gt].mean() > i.image[~i.gt].mean()) for i in items} == {True, False}

    def timid(image, mask, fg, bg, newest, is_fg, spacing):   # takes only the clicked pixels
        out = mask.copy()
        for y, x in fg:
            out[y, x] = True
        for y, x in bg:
            out[y, x] = False
        return out

    assert session_score(perfect_step_for(items), items)["dice_auc"] == 1.0
    assert session_score(timid, items)["dice_auc"] < 0.2


def perfect_step_for(items):
    by_id = {id(i.image): i.gt for i in items}
    return lambda image, mask, fg, bg, newest, is_fg, spacing: by_id[id(image)].copy()
