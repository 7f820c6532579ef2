"""Propagation carries one corrected slice through a synthetic sphere and stops where it ends."""
import numpy as np
import pytest

from app.core.errors import JobCancelled
from app.core.jobs import CancelToken, Progress
from app.core.propagation import propagate, propagate_job


def sphere(n=40, radius=12.0, seed=0):
    zz, yy, xx = np.mgrid[:n, :n, :n]
    truth = (zz - n / 2) ** 2 + (yy - n / 2) ** 2 + (xx - n / 2) ** 2 <= radius ** 2
    rng = np.random.default_rng(seed)
    image = 200.0 + 300.0 * truth + rng.normal(0, 40.0, truth.shape)
    return image.astype(np.float32), truth


def dice(a, b):
    return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def test_one_slice_grows_into_the_sphere_and_stops_at_its_ends():
    image, truth = sphere()
    label = np.zeros(truth.shape, np.uint8)
    label[20] = truth[20]
    result = propagate(image, label, 20)
    out = result.label.astype(bool)
    assert dice(out, truth) > 0.9
    # Nothing beyond the sphere's poles (slices 8..32 hold it), and the start slice is untouched.
    assert not out[:7].any() and not out[34:].any()
    assert np.array_equal(out[20], truth[20])
    assert "object ended" in result.stopped["down"] and "object ended" in result.stopped["up"]


def test_locked_slices_are_kept_and_stop_propagation():
    image, truth = sphere()
    label = np.zeros(truth.shape, np.uint8)
    label[20] = truth[20]
    label[24] = 0                      # the user cleared slice 24 on purpose and locked it
    result = propagate(image, label, 20, locked={24})
    assert not result.label[24].any() and not result.label[25:].any()
    assert result.label[23].any()
    assert result.stopped["up"] == "locked slice 24"


def test_job_reports_progress_and_cancels():
    image, truth = sphere(n=24, radius=7)
    label = np.zeros(truth.shape, np.uint8)
    label[12] = truth[12]
    token = CancelToken()
    job = propagate_job(image, label, 12, cancel=token)
    first = next(job)
    assert isinstance(first, Progress) and first.total == 23
    token.cancel()
    with pytest.raises(JobCancelled):
        for _ in job:
            pass


# --- Propagation adds to slices where the object continues; it never wipes existing labels. ---

def test_slices_that_already_hold_the_object_are_kept_exactly():
    image, truth = sphere()
    label = truth.astype(np.uint8).copy()
    label[21:24] = 0                       # a gap the user wants filled from slice 20
    result = propagate(image, label, 20)
    out = result.label
    # Every slice that held the object is untouched (the bug: all were replaced by the cut).
    for z in list(range(0, 21)) + list(range(24, 40)):
        assert np.array_equal(out[z], label[z]), z
    assert all(out[z].any() for z in (21, 22, 23))
    assert dice(out.astype(bool), truth) >= dice(label.astype(bool), truth)
    assert "already" in result.stopped["up"] and "already" in result.stopped["down"]
    assert result.changed_slices == [21, 22, 23]


def test_overwrite_mode_replaces_existing_slices_when_asked():
    from app.core.propagation import PropagationParams

    image, truth = sphere()
    label = truth.astype(np.uint8).copy()
    label[22] = 0
    label[22, 5:8, 5:8] = 1                 # a wrong scrap the user wants replaced
    result = propagate(image, label, 20, params=PropagationParams(existing="overwrite"))
    assert 22 in result.changed_slices
    assert not result.label[22, 5:8, 5:8].any()


def test_other_label_values_are_never_touched():
    image, truth = sphere()
    label = np.zeros(truth.shape, np.uint8)
    label[20][truth[20]] = 1
    other = np.zeros(truth.shape, bool)
    other[15:25, 2:6, 2:6] = True           # class 2, elsewhere in the volume
    other[15:25, 18:21, 18:21] = True       # class 2 inside the sphere (the user's sub-region)
    label[other & ~(label == 1)] = 2
    result = propagate(image, label, 20, value=1)
    out = result.label
    assert np.array_equal(out == 2, label == 2)
    assert (out == 1).sum() > 5 * (label == 1).sum()
    assert set(np.unique(out)) <= {0, 1, 2}


def test_a_separate_object_on_a_slice_does_not_stop_or_vanish():
    image, truth = sphere()
    label = np.zeros(truth.shape, np.uint8)
    label[20] = truth[20]
    label[23, 1:4, 1:4] = 1                 # another lesion far away on slice 23
    result = propagate(image, label, 20)
    assert result.label[23, 1:4, 1:4].all()
    assert result.label[23, 20, 20] == 1 and result.label[26, 20, 20] == 1


def test_coronal_axis_keeps_existing_slices():
    image, truth = sphere()
    label = truth.astype(np.uint8).copy()
    label[:, 21:24, :] = 0
    result = propagate(image, label, 20, axis=1)
    out = result.label
    for y in list(range(0, 21)) + list(range(24, 40)):
        assert np.array_equal(out[:, y], label[:, y]), y
    assert all(out[:, y].any() for y in (21, 22, 23))
    assert result.changed_slices == [21, 22, 23]


def test_network_prior_says_where_the_object_ends():
    image, truth = sphere()
    label = np.zeros(truth.shape, np.uint8)
    label[20] = truth[20]
    prior = np.where(truth, 0.95, 0.05).astype(np.float32)
    prior[26:] = 0.02                       # the network is sure the object ends at slice 26
    result = propagate(image, label, 20, prior=prior)
    assert result.label[25].any() and not result.label[26:].any()
    assert "prior" in result.stopped["up"]


def test_a_prior_that_missed_the_object_does_not_stop_the_users_correction():
    image, truth = sphere()
    label = np.zeros(truth.shape, np.uint8)
    label[20] = truth[20]                   # the user drew the object the network missed
    missed = np.full(truth.shape, 0.02, np.float32)
    result = propagate(image, label, 20, prior=missed)
    without = propagate(image, label, 20)
    assert np.array_equal(result.label, without.label)
    assert len(result.changed_slices) > 4
