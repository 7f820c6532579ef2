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
