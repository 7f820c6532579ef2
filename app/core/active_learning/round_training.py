"""Training for active-learning rounds on an explicit list of labelled cases, in memory.

A thin adapter over models.training's pieces (slice pool, augmentation, the U-Net loss): it
trains or fine-tunes a U-Net on exactly the cases given, without validation split or checkpoint
files, which is what an AL round needs (the labelled set changes every round and the model is
fine-tuned, not reset, between rounds as in seed 001). `models.training.trainer.train` remains
the entry point for full training runs; `save` writes a round's model in the same format.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from app.core.jobs import Job, Progress
from models import networks, preprocess
from models.checkpoint import LoadedModel, save_checkpoint
from models.device import resolve
from models.training.augment import augment_batch
from models.training.dataset import Case, list_cases, load_case
from models.training.sampling import SlicePool
from models.training.trainer import seg_loss


@dataclass
class RoundConfig:
    input_size: int = 96
    context: int = 1                     # 2.5D: neighbours each side
    channels: tuple = (8, 16, 32, 64)
    dropout: float = 0.2                 # seed 001 uses 0.2; MC-dropout needs it on
    steps: int = 150                     # optimiser steps per round
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    positive_fraction: float = 0.5
    augment: bool = True
    device: str | None = None


def new_model(config: RoundConfig, seed: int = 0) -> LoadedModel:
    torch.manual_seed(seed)
    kwargs = {"in_channels": 2 * config.context + 1, "channels": list(config.channels),
              "dropout": config.dropout}
    network = networks.build("unet2d", **kwargs).to(resolve(config.device))
    meta = {"architecture": "unet2d", "arch_kwargs": kwargs, "input_size": config.input_size,
            "context": config.context, "in_channels": 2 * config.context + 1,
            "normalisation": preprocess.normalisation_spec(), "mask_source": "seg",
            "mode": "unet", "training": {"cases": [], "steps": 0}}
    return LoadedModel(network=network, meta=meta, device=resolve(config.device))


def train_round_steps(model: LoadedModel, cases: Sequence[Case], config: RoundConfig,
                      seed: int = 0, steps: int | None = None) -> Job[LoadedModel]:
    """Fine-tune `model` in place on `cases` (their slices, class-balanced); yields Progress every
    10 steps and returns the model. The learning rate follows a cosine from lr to 0 within the
    round, so every round ends on a settled model."""
    steps = config.steps if steps is None else int(steps)
    if not cases:
        raise ValueError("training needs at least one labelled case")
    device = model.device
    network = model.network
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    pool = SlicePool(list(cases), model.context)
    optimiser = torch.optim.Adam(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(1, steps))))
    network.train()
    losses = []
    for step in range(1, steps + 1):
        images, labels, _ = pool.draw(config.batch_size, rng, config.positive_fraction)
        images, labels = images.to(device), labels.to(device)
        if config.augment:
            images, labels = augment_batch(images, labels, generator)
        loss = seg_loss(network(images)["seg"][:, 0], labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == steps:
            yield Progress(step, steps, f"training on {len(cases)} cases, loss {np.mean(losses[-10:]):.3f}")
    network.eval()
    training = model.meta.setdefault("training", {"cases": [], "steps": 0})
    training["cases"] = sorted(set(training.get("cases", [])) | {c.name for c in cases})
    training["steps"] = int(training.get("steps", 0)) + steps
    model.meta.pop("weights_sha256", None)     # the weights changed: the version is recomputed
    return model


def load_labelled_cases(data_dir: str | Path, case_ids: Sequence[str], input_size: int,
                        split: str = "Tr", keep_original: bool = False) -> list[Case]:
    """The named cases of an MSD-layout folder, loaded network-ready (a missing id is an error)."""
    entries = {name: (image, label) for name, image, label in list_cases(data_dir, split)}
    missing = [c for c in case_ids if c not in entries or entries[c][1] is None]
    if missing:
        raise ValueError(f"no labelled case named {', '.join(missing)} in {data_dir}/images{split}")
    return [load_case(c, *entries[c], input_size, keep_original=keep_original) for c in case_ids]


def save(model: LoadedModel, path: str | Path) -> Path:
    """Write a round's model as a SegLoop checkpoint (.pt + sidecar)."""
    return save_checkpoint(model.network, path, dict(model.meta))
