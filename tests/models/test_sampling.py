"""Balanced slice sampling: tumour/no-tumour balance and the per-case (volume) balance."""
import numpy as np
import pytest

from models.training.dataset import Case
from models.training.sampling import SlicePool, choose_strong_cases


def _case(name: str, n_slices: int, n_tumour: int) -> Case:
    image = np.zeros((n_slices, 16, 16), np.float32)
    label = np.zeros((n_slices, 16, 16), np.uint8)
    label[:n_tumour, 4:8, 4:8] = 1
    image[:, 0, 0] = len(name)          # lets a drawn sample be traced back to its case
    return Case(name=name, modality="MR", image=image, label=label,
                tags=label.reshape(n_slices, -1).any(axis=1))


@pytest.fixture
def cases():
    # one volume with many tumour slices, one with few: as the sarcoma vs brain volumes
    return [_case("big", 60, 50), _case("smallest", 20, 2)]


def _count(pool, n, balance_seed=0):
    images, labels, tags = pool.draw(n, np.random.default_rng(balance_seed))
    names = images[:, 1, 0, 0].numpy()          # centre channel of the 2.5D stack
    return names, labels, tags


def test_half_of_each_batch_has_tumour(cases):
    names, labels, tags = _count(SlicePool(cases, context=1), 400)
    assert int(tags.sum()) == 200
    assert all(labels[i].sum() > 0 for i in range(400) if tags[i])
    assert all(labels[i].sum() == 0 for i in range(400) if not tags[i])


def test_case_balance_draws_each_volume_equally(cases):
    names, _, tags = _count(SlicePool(cases, context=1, balance="case"), 2000)
    small_tumour = np.mean(names[tags.numpy() == 1] == len("smallest"))
    assert 0.45 < small_tumour < 0.55            # 1 of 2 volumes, though 2 of 52 tumour slices


def test_slice_balance_follows_slice_counts(cases):
    names, _, tags = _count(SlicePool(cases, context=1, balance="slice"), 2000)
    small_tumour = np.mean(names[tags.numpy() == 1] == len("smallest"))
    assert small_tumour < 0.1                    # 2 of 52 tumour slices: ~4 %


def test_unknown_balance_is_refused(cases):
    with pytest.raises(ValueError, match="balance"):
        SlicePool(cases, context=1, balance="volume")


def test_strong_cases_include_every_source():
    cases = [_case(f"sts{i:03d}_mr", 4, 1) for i in range(20)] + [_case("btp01_pre", 4, 1)]
    chosen = choose_strong_cases(cases, 0.1, seed=0)
    assert {c.name[:3] for c in chosen} == {"sts", "btp"}
    assert len(chosen) == 3                      # round(0.1 * 20) + max(1, round(0.1 * 1))
