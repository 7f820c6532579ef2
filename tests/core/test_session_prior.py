"""The network prior given with a proposal (set_label(..., prior=)) drives later clicks and
propagations, is logged so a replay and a crash recovery use the very same values, and is not undone."""
from __future__ import annotations

import numpy as np
import pytest

from app.core.autosave import find_recoverable, read_state, restore
from app.core.errors import InputError
from app.core.interaction_log import load_arrays, read_log, save_arrays
from app.core.replay import ReplayError, open_log_session, replay
from app.core.session import AnnotationSession
from app.core.volume import Volume
from app.core.volume_io import read_volume, write_volume
from tests.core.test_session import _ball_volume

ENGINE = "geodesic-crf"   # uses the prior (geodesic-nearest does not)
CLICK = (0, 5, (18, 20), True)


def _image(tmp_path, shape=(10, 36, 40)):
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:shape[0], :shape[1], :shape[2]]
    inside = ((y - 18) / 9.0) ** 2 + ((x - 20) / 11.0) ** 2 + ((z - 5) / 4.0) ** 2 <= 1
    array = (inside * 150 + rng.normal(0, 8, shape)).astype(np.int16)
    path = write_volume(Volume(array, spacing=(0.9, 0.9, 2.0)), tmp_path / "case.nii.gz")
    return read_volume(path), inside.astype(np.uint8)


def _priors(inside):
    """Two priors with values 1/255 steps cannot hold exactly: one that agrees with the object, one that
    says the object is only its left half (so clicks give different labels with each)."""
    rng = np.random.default_rng(1)
    agree = np.clip(inside * 0.8 + 0.1 + rng.uniform(-0.05, 0.05, inside.shape), 0, 1).astype(np.float32)
    left = agree.copy()
    left[:, :, 20:] = np.float32(0.0123)
    return agree, left


def _rounded(prior):
    return (np.rint(prior * 255.0) / np.float32(255.0)).astype(np.float32)


def _proposal(inside):
    label = inside.copy()
    label[5] = 0            # the proposal missed the middle slice: the click there must grow it
    return label


def test_the_prior_set_with_a_proposal_reaches_the_next_click_and_is_not_undone(tmp_path):
    volume, inside = _image(tmp_path)
    agree, left = _priors(inside)
    s = AnnotationSession(volume, engine=ENGINE)
    assert s.prepare_click(*CLICK).request.prior is None           # uniform before the proposal
    record = s.set_label(_proposal(inside), "proposal", prior=left)
    assert record is not None and record.entry["prior_sha1"]
    plan = s.prepare_click(*CLICK)
    assert plan.request.prior.dtype == np.float32
    np.testing.assert_array_equal(plan.request.prior, _rounded(left)[5])
    assert not np.array_equal(plan.request.prior, left[5])         # it really was rounded once
    with_left = plan.compute().mask

    s.undo()                                                        # the proposal goes, the prior stays
    assert not s.label.any()
    np.testing.assert_array_equal(s.prior, _rounded(left))
    s.redo()
    s.set_label(s.label.copy(), "proposal", prior=agree)           # same label, new model: applied
    with_agree = s.prepare_click(*CLICK).compute().mask
    assert with_left[:, 20:].sum() < with_agree[:, 20:].sum()       # the prior changes what a click does


def test_a_new_prior_with_an_unchanged_label_is_one_logged_step_without_undo(tmp_path):
    volume, inside = _image(tmp_path)
    agree, _ = _priors(inside)
    s = AnnotationSession(volume, label=_proposal(inside), engine=ENGINE, log_path=tmp_path / "s.jsonl")
    assert s.set_label(s.label.copy(), "proposal") is None          # no prior, no change: nothing
    record = s.set_label(s.label.copy(), "proposal", prior=agree)
    assert record is not None and record.box is None and s.step == 1 and not s.can_undo
    _, (entry,) = read_log(s.log.path)
    assert entry["kind"] == "set_label" and entry["box"] is None and entry["prior_sha1"]
    blob = load_arrays(tmp_path / entry["blob"])
    assert set(blob) == {"prior"} and blob["prior"].dtype == np.uint8
    np.testing.assert_array_equal(blob["prior"].astype(np.float32) / np.float32(255.0), s.prior)
    s.close()


def _logged_session(tmp_path, **kwargs):
    volume, inside = _image(tmp_path)
    agree, left = _priors(inside)
    s = AnnotationSession(volume, engine=ENGINE, log_path=tmp_path / "s.jsonl", **kwargs)
    s.set_label(_proposal(inside), "proposal", prior=left)
    s.click(*CLICK)
    s.click(0, 5, (18, 33), True)
    s.set_label(s.label.copy(), "proposal", prior=agree)            # a re-run with another model
    s.click(0, 4, (18, 32), True)
    s.undo()
    s.click(0, 6, (18, 30), True)
    return s, inside


def test_a_log_with_proposals_and_priors_replays_bit_exactly(tmp_path):
    s, _ = _logged_session(tmp_path)
    s.close()
    r, header, actions = open_log_session(s.log.path)
    assert header["prior"] is None and r.prior is None
    assert [a["kind"] for a in actions] == ["set_label", "click", "click", "set_label", "click", "undo", "click"]
    replay(r, actions, s.log.path)                                  # checks every step's checksum
    assert r.checksum == s.checksum
    np.testing.assert_array_equal(r.label, s.label)
    np.testing.assert_array_equal(r.prior, s.prior)


def test_replay_refuses_a_tampered_prior(tmp_path):
    s, _ = _logged_session(tmp_path)
    s.close()
    _, actions = read_log(s.log.path)
    path = s.log.path.parent / actions[0]["blob"]
    blob = load_arrays(path)
    blob["prior"][5, 18, 25] ^= 1
    save_arrays(path, **blob)
    r, _, actions = open_log_session(s.log.path)
    with pytest.raises(ReplayError, match=r"step 1 \(set_label\).*prior.*sha1 differs"):
        replay(r, actions, s.log.path)


def test_recovery_from_a_snapshot_after_the_proposal_restores_its_prior(tmp_path):
    volume, inside = _image(tmp_path)
    agree, left = _priors(inside)
    root, log = tmp_path / "autosave", tmp_path / "case.jsonl"
    # The header prior differs from the proposal's: falling back to it would be wrong.
    s = AnnotationSession(volume, prior=agree, engine=ENGINE, log_path=log, autosave_dir=root)
    s.set_label(_proposal(inside), "proposal", prior=left)
    s.click(*CLICK)
    s.autosave.close()                          # snapshot at step 2, then no more snapshots ("crash")
    assert read_state(s.autosave.folder)["snapshot_step"] == 2
    s.autosave = None
    s.click(0, 5, (18, 33), True)               # only in the log: replayed on top of the snapshot
    s.click(0, 4, (18, 30), True)
    s.close()

    replayed = []
    restored = restore(find_recoverable(root)[0], on_step=replayed.append)
    assert [e["step"] for e in replayed] == [3, 4]
    np.testing.assert_array_equal(restored.prior, _rounded(left))
    np.testing.assert_array_equal(restored.prior, s.prior)
    assert restored.checksum == s.checksum
    np.testing.assert_array_equal(restored.label, s.label)
    restored.close()


@pytest.mark.parametrize("axis", [0, 1])
def test_propagation_uses_the_session_prior(axis):
    volume, ball = _ball_volume()
    centre = (8, 12)[axis]
    index = [slice(None)] * 3
    index[axis] = centre
    label = np.zeros_like(ball)
    label[tuple(index)] = ball[tuple(index)]
    prior = np.where(ball, 0.95, 0.05).astype(np.float32)
    beyond = [slice(None)] * 3
    beyond[axis] = slice(centre + 3, None)
    prior[tuple(beyond)] = 0.02                 # the network says the object ends 3 slices further

    uniform = AnnotationSession(volume, label=label, engine=ENGINE)
    uniform.propagate(axis, centre)
    assert uniform.label[tuple(beyond)].any()   # without the prior the walk goes on

    s = AnnotationSession(volume, label=label, engine=ENGINE)
    s.set_label(label, "proposal", prior=prior)
    plan = s.prepare_propagation(axis, centre)
    with pytest.raises(ValueError):
        s.prior[...] = 0.9                      # read-only: plans hold views of it
    result = plan.compute()
    assert s.apply(plan, result) is not None
    assert not s.label[tuple(beyond)].any()
    near = [slice(None)] * 3
    near[axis] = centre + 2
    assert s.label[tuple(near)].any()

    # a prior replaced after planning does not reach the planned job (it holds the old one)
    s2 = AnnotationSession(volume, label=label, engine=ENGINE)
    s2.set_label(label, "proposal", prior=prior)
    plan2 = s2.prepare_propagation(axis, centre)
    s2.set_label(label, "proposal", prior=np.full_like(prior, 0.9))
    late = plan2.compute()
    assert late.box == result.box and np.array_equal(late.mask, result.mask)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 4, 5), np.float32), "shape"),
    (np.full((10, 36, 40), 1.5, np.float32), r"\[0, 1\]"),
    (np.full((10, 36, 40), -0.1, np.float32), r"\[0, 1\]"),
    (np.full((10, 36, 40), np.nan, np.float32), r"\[0, 1\]"),
    (np.full((10, 36, 40), "a"), "numbers"),
])
def test_a_bad_prior_is_an_input_error_and_changes_nothing(tmp_path, bad, message):
    volume, inside = _image(tmp_path)
    s = AnnotationSession(volume, engine=ENGINE)
    with pytest.raises(InputError, match=message):
        s.set_label(inside, "proposal", prior=bad)
    assert s.step == 0 and s.prior is None and not s.label.any()
