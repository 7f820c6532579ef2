"""Active learning: samplers rank planted uncertainty first; scores persist per model version; the
queue follows the stored scores; the scoring job cancels and resumes.

Fixtures are synthetic CT-like volumes (HU values, so the real CT normalisation path runs): a
bright disk (tumour, 200 HU) on soft tissue (-100 HU). A tiny U-Net trained for a few seconds
learns to find the disks. The planted-uncertainty case has disks at 60 HU - halfway between the
two tissue values the network learned - under heavier noise: what the network should doubt.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from app.core.active_learning import (PoolCase, ScoringContext, get_sampler, model_version, next_case,
                                      queue, scoring_job, scoring_version, slice_uncertainty,
                                      uncertainty_map, unscored)
from app.core.active_learning.registry import UnknownSamplerError
from app.core.active_learning.round_training import RoundConfig, new_model, train_round_steps
from app.core.active_learning.samplers import RandomSampler
from app.core.case_store import CaseStore
from app.core.errors import JobCancelled
from app.core.jobs import CancelToken, run_job
from app.core.volume import Volume
from models import preprocess
from models.training.dataset import Case
from models.vaal import VAALConfig

S = 32
NZ = 6
CONFIG = RoundConfig(input_size=S, context=0, channels=(8, 16, 32), dropout=0.2, steps=150,
                     batch_size=8, lr=3e-3, augment=False)
TINY_VAAL = VAALConfig(size=32, widths=(8, 16, 32), latent=8, steps=60, batch_size=12)


def disks(rng, disk_hu=200.0, noise_hu=15.0, nz=NZ):
    yy, xx = np.mgrid[:S, :S]
    image = np.full((nz, S, S), -100.0, np.float32)
    label = np.zeros((nz, S, S), np.uint8)
    for z in range(nz):
        cy, cx = rng.integers(10, 22, 2)
        r = rng.integers(5, 9)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        image[z][inside] = disk_hu
        label[z][inside] = 1
    return image + rng.normal(0, noise_hu, image.shape).astype(np.float32), label


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    cases = []
    for i in range(4):
        image, label = disks(rng)
        cases.append(Case(f"train{i}", "CT", preprocess.prepare_volume(image, "CT", S), label,
                          label.reshape(NZ, -1).any(axis=1)))
    return run_job(train_round_steps(new_model(CONFIG, seed=0), cases, CONFIG, seed=0))


@pytest.fixture()
def pool():
    rng = np.random.default_rng(5)
    clean = PoolCase("clean", image=disks(rng)[0], modality="CT")
    doubtful = PoolCase("doubtful", image=disks(rng, disk_hu=60.0, noise_hu=40.0)[0], modality="CT")
    noise = PoolCase("noise", image=rng.normal(50, 150, (NZ, S, S)).astype(np.float32),
                     modality="CT")
    labelled = [PoolCase(f"labelled{i}", image=disks(rng)[0], modality="CT") for i in range(3)]
    return clean, doubtful, noise, labelled


@pytest.mark.parametrize("name, region", [("mc-variance", None), ("mc-variance", "volume"),
                                          ("mc-variance", "body"), ("mc-entropy", None),
                                          ("mc-bald", None)])
def test_mc_samplers_rank_planted_uncertainty_first(model, pool, name, region):
    clean, doubtful, _, _ = pool
    sampler = get_sampler(name, **({"region": region} if region else {}))
    scores = sampler.score([clean, doubtful], ScoringContext(model=model, mc_samples=8))
    assert scores["doubtful"] > 1.3 * scores["clean"] > 0


def test_mc_scoring_leaves_dropout_off(model, pool):
    get_sampler("mc-variance").score([pool[0]], ScoringContext(model=model, mc_samples=2))
    assert not any(m.training for m in model.network.modules())


@pytest.mark.parametrize("name", ["vaal", "mvaal"])
def test_vaal_samplers_rank_unfamiliar_case_first(model, pool, name):
    clean, _, noise, labelled = pool
    sampler = get_sampler(name, config=TINY_VAAL)
    scores = sampler.score([clean, noise], ScoringContext(model=model, labelled=labelled))
    assert scores["noise"] > scores["clean"] + 0.1


def test_mvaal_uses_a_second_modality_when_every_case_has_one(pool):
    clean, _, noise, labelled = pool
    for case in (clean, noise, *labelled):
        case.aux = -case.image            # any map on the same grid
    scores = get_sampler("mvaal", config=TINY_VAAL).score(
        [clean, noise], ScoringContext(model=None, labelled=labelled))
    assert scores["noise"] > scores["clean"] + 0.1


def test_random_scores_are_seeded_and_independent_of_order(pool):
    clean, doubtful, noise, _ = pool
    sampler = RandomSampler()
    a = sampler.score([clean, doubtful, noise], ScoringContext(seed=1))
    b = sampler.score([noise, clean], ScoringContext(seed=1))
    c = sampler.score([clean, doubtful, noise], ScoringContext(seed=2))
    assert a["clean"] == b["clean"] and a["noise"] == b["noise"]
    assert a != c
    assert all(0.0 <= v < 1.0 for v in a.values())


def test_model_samplers_refuse_to_run_without_what_they_need(pool):
    with pytest.raises(ValueError, match="model"):
        get_sampler("mc-variance").score([pool[0]], ScoringContext(model=None))
    with pytest.raises(ValueError, match="labelled"):
        get_sampler("vaal").score([pool[0]], ScoringContext(labelled=[]))
    with pytest.raises(UnknownSamplerError):
        get_sampler("coin-toss")


# ---------------------------------------------------------------------- store, job, queue


class CountingSampler(RandomSampler):
    name = "counting"

    def __init__(self):
        self.scored = []

    def score_case(self, case, context):
        self.scored.append(case.case_id)
        return (yield from super().score_case(case, context))


def _store_pool(store, tmp_path, n=5):
    records = [store.add_case(tmp_path / f"case{i}.nii.gz") for i in range(n)]
    rng = np.random.default_rng(1)
    return records, [PoolCase(r.id, image=disks(rng, nz=2)[0], modality="CT", name=r.name)
                     for r in records]


def test_scores_persist_across_reopen_and_a_new_model_invalidates_them(model, tmp_path):
    db = tmp_path / "segloop.db"
    sampler = get_sampler("mc-variance")
    context = ScoringContext(model=model, mc_samples=2)
    with CaseStore(db) as store:
        records, cases = _store_pool(store, tmp_path, n=3)
        version = scoring_version(sampler, context)
        first = run_job(scoring_job(store, sampler, cases, context))
    assert model_version(model) in version
    with CaseStore(db) as store:
        assert store.scores("mc-variance", version) == pytest.approx(first)
        # the same version again: nothing is recomputed
        spy = CountingSampler()
        spy_version = scoring_version(spy, ScoringContext())
        run_job(scoring_job(store, spy, cases, ScoringContext()))
        assert len(spy.scored) == 3
        spy.scored.clear()
        run_job(scoring_job(store, spy, cases, ScoringContext()))
        assert spy.scored == [] and len(store.scores("counting", spy_version)) == 3

    # changed weights: another model version, so the stored scores are stale
    tuned = new_model(CONFIG, seed=0)
    tuned.network.load_state_dict(model.network.state_dict())
    with torch.no_grad():
        tuned.network.seg_head.bias += 0.5
    new_context = ScoringContext(model=tuned, mc_samples=2)
    new_version = scoring_version(sampler, new_context)
    assert new_version != version
    with CaseStore(db) as store:
        assert store.scores("mc-variance", new_version) == {}
        second = run_job(scoring_job(store, sampler, cases, new_context))
        assert set(second) == set(first) and second != first
        assert store.scores("mc-variance", version) == pytest.approx(first)   # old ones kept apart


def test_queue_orders_open_cases_by_stored_score(tmp_path):
    with CaseStore(tmp_path / "segloop.db") as store:
        records, _ = _store_pool(store, tmp_path, n=5)
        values = [0.3, 0.9, 0.1, 0.7, 0.5]
        for record, value in zip(records, values):
            store.set_score(record.id, "mc-variance", "v1", value)
        store.set_score(records[0].id, "mc-variance", "v0", 99.0)   # stale version: ignored
        store.set_status(records[1].id, "done")                     # done: leaves the queue
        order = queue(store, "mc-variance", "v1")
        assert [r.id for r, _ in order] == [records[i].id for i in (3, 4, 0, 2)]
        assert [s for _, s in order] == [0.7, 0.5, 0.3, 0.1]
        assert next_case(store, "mc-variance", "v1").id == records[3].id
        assert next_case(store, "mc-variance", "v1", after_id=records[3].id).id == records[4].id
        assert unscored(store, "mc-variance", "v2") == [r for r in store.list_cases() if r.status != "done"]


def test_scoring_job_cancels_and_resumes_where_it_stopped(tmp_path):
    with CaseStore(tmp_path / "segloop.db") as store:
        _, cases = _store_pool(store, tmp_path, n=5)
        sampler, token = CountingSampler(), CancelToken()
        job = scoring_job(store, sampler, cases, ScoringContext(seed=3), cancel=token)
        with pytest.raises(JobCancelled):
            for progress in job:
                if "score" in progress.message and progress.done == 2:
                    token.cancel()
        version = scoring_version(sampler, ScoringContext(seed=3))
        assert len(store.scores("counting", version)) == 2
        resumed = CountingSampler()
        result = run_job(scoring_job(store, resumed, cases, ScoringContext(seed=3)))
        assert resumed.scored == [c.case_id for c in cases[2:]]
        assert result == RandomSampler().score(cases, ScoringContext(seed=3))


def test_cancelling_mid_case_stores_nothing_for_it_and_restores_the_network(model, tmp_path):
    with CaseStore(tmp_path / "segloop.db") as store:
        _, cases = _store_pool(store, tmp_path, n=2)
        token = CancelToken()
        job = scoring_job(store, get_sampler("mc-variance"), cases,
                          ScoringContext(model=model, mc_samples=4), cancel=token)
        with pytest.raises(JobCancelled):
            for progress in job:
                if "MC pass 2/4" in progress.message:
                    token.cancel()
        assert store.scores("mc-variance", scoring_version(
            get_sampler("mc-variance"), ScoringContext(model=model, mc_samples=4))) == {}
    assert not any(m.training for m in model.network.modules())


# ---------------------------------------------------------------------- maps for the GUI


def test_uncertainty_profile_peaks_on_the_doubtful_slice(model):
    rng = np.random.default_rng(7)
    image, _ = disks(rng)
    doubtful, _ = disks(rng, disk_hu=60.0, noise_hu=40.0, nz=1)
    image[3] = doubtful[0]
    volume = Volume(image, modality="CT")
    profile = slice_uncertainty(volume, model, mc_samples=6)
    assert profile.shape == (NZ,) and int(np.argmax(profile)) == 3
    heat = uncertainty_map(volume, model, mc_samples=2)
    assert heat.shape == image.shape and heat.dtype == np.float32 and heat.min() >= 0


# ---------------------------------------------------------------------- command line


def test_score_command_ranks_a_folder_and_writes_csv(model, tmp_path):
    import csv
    import sys
    from pathlib import Path

    import SimpleITK as sitk

    from app.core.active_learning.round_training import save

    repo = Path(__file__).resolve().parents[2]
    rng = np.random.default_rng(11)
    data = tmp_path / "cases"
    data.mkdir()
    for name, (image, _) in {"clean": disks(rng), "doubtful": disks(rng, 60.0, 40.0)}.items():
        sitk.WriteImage(sitk.GetImageFromArray(image.astype(np.int16)), str(data / f"{name}.nii.gz"))
    weights = save(model, tmp_path / "tiny.pt")
    out = tmp_path / "scores.csv"
    # in-process (the subcommand's own code path) rather than a subprocess: no second torch import
    sys.path.insert(0, str(repo))
    import main

    code = main.main(["score", "--data", str(data), "--sampler", "mc-variance", "--model",
                      str(weights), "--mc", "4", "--out", str(out), "--db", str(tmp_path / "segloop.db")])
    assert code == 0
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["case"] for r in rows] == ["doubtful", "clean"]
    assert float(rows[0]["score"]) > float(rows[1]["score"]) and rows[0]["rank"] == "1"
    with CaseStore(tmp_path / "segloop.db") as store:       # kept for the GUI's queue
        stored = store.scores("mc-variance", rows[0]["version"])
        assert sorted(stored.values()) == pytest.approx(sorted(float(r["score"]) for r in rows),
                                                         rel=1e-5)
