"""AnnotationSession: clicks, brush, seeds, undo/redo (bit for bit), multi-class, plans and staleness."""
from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import SegLoopError
from app.core.refine.base import ClickOutsideImageError, Refiner
from app.core.seeds import plane_to_voxel, voxel_to_plane
from app.core.session import AnnotationSession, SessionError
from app.core.session_plans import EngineError
from app.core.volume import Volume

ENGINE = "geodesic-nearest"


def blob_volume(shape=(12, 40, 48), seed=0):
    """A bright ellipsoid on a noisy dark background, anisotropic spacing (x, y, z)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:shape[0], :shape[1], :shape[2]]
    inside = ((z - shape[0] / 2) / (shape[0] / 3)) ** 2 + ((y - shape[1] / 2) / 10) ** 2 \
        + ((x - shape[2] / 2) / 12) ** 2 <= 1
    array = (inside * 200 + rng.normal(0, 10, shape)).astype(np.int16)
    return Volume(array, spacing=(0.8, 0.8, 2.5)), inside.astype(np.uint8)


@pytest.fixture
def case():
    return blob_volume()


def test_click_changes_only_the_reported_region_and_undo_is_exact(case):
    volume, truth = case
    s = AnnotationSession(volume, engine=ENGINE)
    before = s.label.copy()
    record = s.click(0, 6, (20, 24), foreground=True)
    assert s.label[6, 20, 24] == 1
    z0, z1, y0, y1, x0, x1 = record.box
    outside = np.ones(s.label.shape, bool)
    outside[z0:z1, y0:y1, x0:x1] = False
    assert np.array_equal(s.label[outside], before[outside])
    assert (z0, z1) == (6, 7)  # an axial click edits one axial slice
    after = s.label.copy()
    assert s.undo() is not None
    assert np.array_equal(s.label, before) and len(s.seeds) == 0
    assert s.redo() is not None
    assert np.array_equal(s.label, after) and len(s.seeds) == 1


def test_seeds_are_respected_and_stored_in_voxel_space(case):
    volume, truth = case
    s = AnnotationSession(volume, label=truth, engine=ENGINE)
    s.click(1, 20, (6, 24), foreground=False)           # coronal slice y=20, inside the blob
    s.click(2, 24, (6, 30), foreground=True)            # sagittal slice x=24
    seeds = s.seeds.all()
    assert [sd.points[0] for sd in seeds] == [(6, 20, 24), (6, 30, 24)]
    assert s.label[6, 20, 24] == 0 and s.label[6, 30, 24] == 1
    assert voxel_to_plane(1, (6, 20, 24)) == (20, (6, 24))
    assert plane_to_voxel(2, 24, (6, 30)) == (6, 30, 24)


def test_every_action_undoes_bit_for_bit_and_redo_reapplies(case):
    volume, truth = case
    rng = np.random.default_rng(3)
    start = truth.copy()
    start[rng.random(start.shape) < 0.02] = 2            # speckle of another class
    s = AnnotationSession(volume, label=start, engine=ENGINE)
    states = [s.label.copy()]
    s.click(0, 6, (20, 24), False); states.append(s.label.copy())
    s.scribble(0, 5, [(2, 2), (2, 12)], True); states.append(s.label.copy())
    s.brush(1, 20, [(2, 5), (8, 40)], 2.0); states.append(s.label.copy())
    s.brush(1, 20, [(4, 10)], 3.0, erase=True); states.append(s.label.copy())
    proposal = np.zeros_like(start); proposal[3:9, 10:30, 10:40] = 1
    s.set_label(proposal, "proposal"); states.append(s.label.copy())
    s.clear_seeds(0, 6); states.append(s.label.copy())
    assert all(not np.array_equal(a, b) for a, b in zip(states[:-2], states[1:-1]))
    for expected in reversed(states[:-1]):
        assert s.undo() is not None
        assert np.array_equal(s.label, expected)
    assert s.undo() is None and np.array_equal(s.label, start)
    for expected in states[1:]:
        s.redo()
        assert np.array_equal(s.label, expected)
    assert s.redo() is None


def test_new_action_after_undo_clears_redo(case):
    volume, _ = case
    s = AnnotationSession(volume, engine=ENGINE)
    s.click(0, 6, (20, 24), True)
    s.undo()
    assert s.can_redo
    s.brush(0, 6, [(5, 5)], 2)
    assert not s.can_redo and s.redo() is None


def test_editing_class_2_leaves_class_1_untouched(case):
    volume, truth = case
    label = truth.copy()                                  # class 1: the blob
    label[6, 2:6, 2:6] = 2                                # class 2: a corner patch
    s = AnnotationSession(volume, label=label, engine=ENGINE, active_value=2)
    s.click(0, 6, (20, 24), foreground=False)             # background click for class 2 in the blob
    s.brush(0, 6, [(3, 3)], 1.0, erase=True)
    s.brush(0, 7, [(20, 24)], 2.0, erase=True)            # erasing class 2 where there is class 1
    assert np.array_equal(s.label == 1, label == 1)       # not one class-1 voxel lost
    assert s.label[6, 3, 3] == 0 and (s.label == 2).sum() < (label == 2).sum()
    s.click(0, 4, (20, 24), foreground=True)              # class 2 grows inside class 1 (tumour in liver)
    assert s.label[4, 20, 24] == 2
    grown = (s.label == 2) & (label == 1)
    assert np.array_equal(s.label == 1, (label == 1) & ~grown)
    while s.undo():
        pass
    assert np.array_equal(s.label, label)


def test_click_outside_the_image_is_a_clear_error(case):
    volume, _ = case
    s = AnnotationSession(volume, engine=ENGINE)
    with pytest.raises(ClickOutsideImageError, match="outside the 40x48 axial slice"):
        s.click(0, 3, (40, 2), True)
    with pytest.raises(ClickOutsideImageError, match="slices 0–11"):
        s.click(0, 12, (3, 3), True)
    with pytest.raises(ClickOutsideImageError):
        s.scribble(2, 3, [(1, 1), (12, 5)], True)         # sagittal planes are 12 rows (z) high
    assert s.step == 0 and len(s.seeds) == 0 and not s.can_undo


def test_bad_inputs_are_segloop_errors(case):
    volume, _ = case
    with pytest.raises(EngineError, match="unknown refinement engine"):
        AnnotationSession(volume, engine="no-such-engine")
    s = AnnotationSession(volume, engine=ENGINE)
    with pytest.raises(SessionError):
        s.brush(0, 3, [(2, 2)], -1)
    with pytest.raises(SegLoopError, match="shape"):
        s.set_label(np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(SegLoopError, match="0–255"):
        s.set_label(np.full(volume.shape, 300))
    assert s.brush(0, 3, [(-50, -50)], 2) is None          # a stroke entirely off the slice paints nothing


def test_stale_result_is_refused_and_replan_applies(case):
    volume, _ = case
    s = AnnotationSession(volume, engine=ENGINE)
    plan = s.prepare_click(0, 6, (20, 24), True)
    result = plan.compute()                               # e.g. on a worker thread
    s.brush(0, 2, [(5, 5)], 2)                            # the label changed meanwhile
    label = s.label.copy()
    assert s.apply(plan, result) is None
    assert np.array_equal(s.label, label) and len(s.seeds) == 0
    fresh = s.replan(plan)
    assert s.apply(fresh, fresh.compute()) is not None and len(s.seeds) == 1


def test_plan_compute_does_not_touch_the_session(case):
    volume, _ = case
    s = AnnotationSession(volume, engine=ENGINE)
    plan = s.prepare_click(0, 6, (20, 24), True)
    version, label = s.version, s.label.copy()
    plan.compute()
    assert s.version == version and np.array_equal(s.label, label) and len(s.seeds) == 0


class _BadEngine(Refiner):
    name = "bad"

    def _refine(self, request, checked):
        return checked.mask, (0, 999, 0, 999), {}


def test_engine_returning_a_region_off_the_slice_is_refused(case):
    volume, _ = case
    s = AnnotationSession(volume, engine=_BadEngine())
    with pytest.raises(SessionError, match="does not fit"):
        s.click(0, 6, (20, 24), True)
    assert s.step == 0


def test_events_name_the_changed_box(case):
    volume, _ = case
    s = AnnotationSession(volume, engine=ENGINE)
    events = []
    s.subscribe(events.append)
    s.click(0, 6, (20, 24), True)
    s.undo()
    assert [e.kind for e in events] == ["click", "undo"]
    assert events[0].box is not None and events[0].seeds_changed
    assert events[1].version == s.version


def test_history_cap_drops_oldest_steps(case):
    volume, _ = case
    s = AnnotationSession(volume, engine=ENGINE, history_bytes=1)
    s.brush(0, 1, [(5, 5)], 2)
    s.brush(0, 2, [(5, 5)], 2)
    assert len(s.history.undo_stack) == 1 and s.history.dropped == 1
    s.undo()
    assert s.label[2].sum() == 0 and s.label[1].sum() > 0 and s.undo() is None


def test_editing_liver_never_removes_tumour_and_policy_none_protects_every_class(case):
    volume, truth = case
    label = truth.copy()
    label[6, 18:23, 22:27] = 2                            # tumour inside the liver
    s = AnnotationSession(volume, label=label, engine=ENGINE, active_value=1)
    s.click(0, 6, (20, 24), foreground=False)             # background for liver on the tumour
    s.brush(0, 6, [(20, 20), (20, 28)], 3.0, erase=True)
    s.brush(0, 6, [(20, 20), (20, 28)], 3.0)
    assert np.array_equal(s.label == 2, label == 2)
    before = s.label.copy()
    s.set_overwrite("none")
    s.set_active_value(2)
    s.click(0, 6, (20, 30), foreground=True)              # tumour grows only into background
    s.brush(0, 7, [(20, 24)], 4.0)
    s.brush(0, 6, [(20, 24)], 2.0, erase=True)
    assert np.all(s.label[before == 1] == 1)             # no liver voxel changed
    assert (s.label == 2).sum() != (before == 2).sum()
    with pytest.raises(SegLoopError, match="overwrite policy"):
        s.set_overwrite("sometimes")


def _ball_volume():
    z, y, x = np.mgrid[:16, :24, :20]
    inside = ((z - 8) / 6.0) ** 2 + ((y - 12) / 7.0) ** 2 + ((x - 10) / 6.0) ** 2 <= 1
    rng = np.random.default_rng(1)
    return Volume((inside * 300 + rng.normal(0, 5, inside.shape)).astype(np.float32),
                  spacing=(1.0, 1.0, 1.5)), inside.astype(np.uint8)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_propagation_from_one_slice_is_one_undoable_step(axis):
    volume, ball = _ball_volume()
    label = np.zeros_like(ball)
    centre = (8, 12, 10)[axis]
    index = [slice(None)] * 3
    index[axis] = centre
    label[tuple(index)] = ball[tuple(index)]              # only the middle slice is labelled
    label[0, 0, 0] = 2                                    # another class, far away
    s = AnnotationSession(volume, label=label, reference=ball, engine=ENGINE)
    progress = []
    record = s.propagate(axis, centre, on_progress=progress.append)
    assert record is not None and progress and progress[-1].done == progress[-1].total
    assert record.entry["dice"]["1"] > 0.8                # the ball is found along that axis
    assert s.label[0, 0, 0] == 2
    lo, hi = record.box[2 * axis], record.box[2 * axis + 1]
    assert lo < centre < hi - 1
    after = s.label.copy()
    s.undo()
    assert np.array_equal(s.label, label)
    s.redo()
    assert np.array_equal(s.label, after)


def test_propagation_plan_runs_as_a_job_and_goes_stale(tmp_path):
    volume, ball = _ball_volume()
    label = np.zeros_like(ball)
    label[8] = ball[8]
    s = AnnotationSession(volume, label=label, engine=ENGINE)
    plan = s.prepare_propagation(0, 8)
    job = plan.job()                                      # what the GUI worker iterates
    from app.core.jobs import run_job

    result = run_job(job)
    s.brush(0, 0, [(1, 1)], 1)
    assert s.apply(plan, result) is None                 # stale: the label changed meanwhile
    with pytest.raises(SessionError, match="nothing to propagate"):
        s.propagate(0, 2)
    with pytest.raises(ClickOutsideImageError):
        s.propagate(2, 20)
