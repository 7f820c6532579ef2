"""End to end through models.training.trainer.train on a tiny MSD-layout dataset written to disk:
a checkpoint with its sidecar comes out, and a continued run keeps its parent's split."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models.checkpoint import load_checkpoint
from models.training.trainer import TrainConfig, train
from tests.msd_folder import write_msd_case

CASES = [f"sts{i:03d}_mr" for i in range(1, 8)] + ["btp01_pre", "btp01_post", "btp02_pre", "btp03_pre"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("msd")
    rng = np.random.default_rng(0)
    for i, case in enumerate(CASES):
        image = rng.normal(100, 10, (6, 32, 32)).astype(np.float32)
        label = np.zeros((6, 32, 32), np.uint8)
        cy, cx = 10 + i % 10, 12 + (3 * i) % 8
        label[1:5, cy:cy + 8, cx:cx + 8] = 1
        image[label > 0] += 80
        write_msd_case(root, "Tr", case, image, label)
    return root


def _config(dataset, out, **kw):
    return TrainConfig(data_dir=str(dataset), out=str(out), epochs=1, steps_per_epoch=2, batch_size=4,
                       input_size=32, channels=(4, 8, 8, 8, 8), val_fraction=0.3, **kw)


def _meta(path):
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def test_unet_run_writes_a_loadable_checkpoint_with_its_split(dataset, tmp_path):
    out = tmp_path / "unet.pt"
    summary = train(_config(dataset, out, seed=0, dice="slice"), log=lambda *_: None)
    meta = _meta(out)
    val = meta["training"]["validation_cases"]
    assert val and set(val) < set(CASES)
    assert not set(val) & set(meta["training"]["train_cases"])
    assert meta["training"]["config"]["dice"] == "slice" and meta["training"]["config"]["balance"] == "case"
    assert load_checkpoint(out, device="cpu").architecture == "unet2d"
    assert summary["best"]["epoch"] == 1


def test_a_continued_run_keeps_its_parents_validation_and_strong_cases(dataset, tmp_path):
    parent = tmp_path / "mixed.pt"
    train(_config(dataset, parent, mode="fpsnet-mixed", strong_fraction=0.3, seed=0), log=lambda *_: None)
    child = tmp_path / "mixed_more.pt"
    # another seed alone would draw another split (and other strong cases)
    train(_config(dataset, child, mode="fpsnet-mixed", strong_fraction=0.3, seed=7, init=str(parent)),
          log=lambda *_: None)
    p, c = _meta(parent)["training"], _meta(child)["training"]
    assert c["validation_cases"] == p["validation_cases"]
    assert sorted(c["strong_cases"]) == sorted(p["strong_cases"])
    fresh = tmp_path / "fresh.pt"
    train(_config(dataset, fresh, mode="fpsnet-mixed", strong_fraction=0.3, seed=7), log=lambda *_: None)
    assert (_meta(fresh)["training"]["validation_cases"] != p["validation_cases"]
            or sorted(_meta(fresh)["training"]["strong_cases"]) != sorted(p["strong_cases"]))
