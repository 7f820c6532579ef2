"""Training the three compared methods on multi-annotator slices, with selection on validation.

Methods (the same U-Net, the same data order, augmentation and selection rule):
- "plain":    CE(p, a randomly drawn annotator's mask), the draw renewed every epoch;
- "cm":       the same draws, explained through the stochastic confusion-matrix branch (seed 002);
- "majority": CE(p, the consensus mask), the reference a noisy-label method should approach.
Every epoch the predicted true segmentation (argmax p) is scored by Dice against the validation
consensus and the best epoch's weights are kept. `train` is a generator: it yields an EpochLog after
each epoch (a cancel point for the caller) and returns a TrainedModel.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Generator

import numpy as np
import torch
from torch.nn import functional as F

from models.noisy_labels.data import AnnotatedSlices, augment, draw_annotator_masks
from models.noisy_labels.losses import cm_objective
from models.noisy_labels.network import NoisyLabelNet, annotator_probabilities

METHODS = ("plain", "cm", "majority")
DEFAULT_EPOCHS = 20


@dataclass(frozen=True)
class TrainConfig:
    method: str = "cm"
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 16
    learning_rate: float = 1e-3
    seed: int = 0
    width: int = 24
    depth: int = 3
    latent_dim: int = 6
    beta_max: float = 20.0       # weight of the per-pixel KL once ramped up (seed: 20)
    ramp_fraction: float = 0.3   # share of training over which beta rises and the direct term fades
    # loss weights: see losses.py for why these defaults (chosen on validation Dice, seed 0)
    direct_weight_end: float = 1.0  # weight of CE(p, mask) after the ramp (1.0 at the start)
    pseudo_weight: float = 0.0   # weight of CE(CM_prior . p, argmax p), the seed's third term
    trace_weight: float = 0.0    # Tanno et al.: push CMs to absorb disagreement
    threads: int = 1
    cm_pool: int = 1             # >1: confusion matrices on a grid this much coarser
    # fixed P(reader marks | true background), None = learnt; see network.AnnotatorBranch
    cm_commission_rate: float | None = 0.01
    cm_identity_bias: float = 4.0  # CMs start near identity (0 = uninformed, all entries 1/2)
    train_crop: int | None = 48  # random crops for training (speed); prediction sees whole slices

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.epochs < 1:
            raise ValueError("epochs must be at least 1")


@dataclass(frozen=True)
class EpochLog:
    epoch: int          # 1-based
    epochs: int
    loss: float
    val_dice: float
    best_epoch: int
    parts: dict = field(default_factory=dict)


@dataclass
class TrainedModel:
    net: NoisyLabelNet
    config: TrainConfig
    best_epoch: int
    best_val_dice: float
    history: list


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]


def _padded(net: NoisyLabelNet, images: np.ndarray) -> tuple[torch.Tensor, int, int]:
    """Images as a tensor padded (edge values) to a size the U-Net can halve; returns (x, h, w)."""
    h, w = images.shape[-2:]
    m = net.unet.downsampling
    pad_h, pad_w = -h % m, -w % m
    x = _to_tensor(images)
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x, h, w


def _schedule(config: TrainConfig, step: int, total_steps: int) -> tuple[float, float]:
    """(beta, direct weight) at this step: beta rises 0 -> beta_max and the direct term fades."""
    ramp = max(1, int(config.ramp_fraction * total_steps))
    t = min(1.0, step / ramp)
    return config.beta_max * t, 1.0 + (config.direct_weight_end - 1.0) * t


@torch.no_grad()
def predict_foreground(net: NoisyLabelNet, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """p(true = foreground) for images (N, H, W) -> (N, H, W) float32."""
    net.eval()
    out = []
    for start in range(0, images.shape[0], batch_size):
        x, h, w = _padded(net, images[start:start + batch_size])
        logits, _ = net(x)
        out.append(torch.softmax(logits, dim=1)[:, 1, :h, :w].numpy())
    return np.concatenate(out).astype(np.float32)


@torch.no_grad()
def sample_annotator_masks(net: NoisyLabelNet, images: np.ndarray, n_samples: int,
                           seed: int = 0) -> np.ndarray:
    """Masks of plausible annotators (N, n_samples, H, W) uint8: z ~ prior, argmax of CM . p."""
    if net.annotators is None:
        raise ValueError("this network has no annotator model to sample from")
    net.eval()
    gen = torch.Generator().manual_seed(seed)
    out = np.zeros((images.shape[0], n_samples) + images.shape[1:], dtype=np.uint8)
    for i in range(images.shape[0]):
        x, h, w = _padded(net, images[i:i + 1])
        logits, feats = net(x)
        p = torch.softmax(logits, dim=1).expand(n_samples, -1, -1, -1)
        feats = feats.expand(n_samples, -1, -1, -1)
        cm = net.annotators.decode(feats, net.annotators.sample_prior(n_samples, gen))
        masks = annotator_probabilities(cm, p).argmax(dim=1)[:, :h, :w]
        out[i] = masks.numpy().astype(np.uint8)
    return out


def mean_dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-slice Dice of binary stacks (N, H, W); 1 for a slice where both are empty."""
    p, t = pred.astype(bool), truth.astype(bool)
    inter = np.logical_and(p, t).sum(axis=(1, 2))
    total = p.sum(axis=(1, 2)) + t.sum(axis=(1, 2))
    return float(np.mean(np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 1.0)))


def train(config: TrainConfig, train_set: AnnotatedSlices, val_set: AnnotatedSlices
          ) -> Generator[EpochLog, None, TrainedModel]:
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = NoisyLabelNet(config.width, config.depth, config.latent_dim,
                        with_annotator_model=config.method == "cm",
                        identity_bias=config.cm_identity_bias, cm_pool=config.cm_pool,
                        commission_rate=config.cm_commission_rate)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    n = len(train_set)
    steps_per_epoch = (n + config.batch_size - 1) // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=total_steps, pct_start=0.1)
    best = (-1.0, 0, None)
    history = []
    step = 0
    for epoch in range(1, config.epochs + 1):
        # the draw is renewed every epoch and never sees the consensus, except for "majority"
        targets = (train_set.consensus if config.method == "majority"
                   else draw_annotator_masks(train_set, rng))
        order = rng.permutation(n)
        net.train()
        losses, parts_sum = [], {}
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            imgs, masks = augment(train_set.images[idx], targets[idx], rng,
                                  config.train_crop)
            x = _to_tensor(imgs)
            y = torch.from_numpy(masks.astype(np.int64))
            logits, feats = net(x)
            if config.method == "cm":
                beta, direct = _schedule(config, step, total_steps)
                loss, parts = cm_objective(net.annotators, logits, feats, y, beta=beta,
                                           direct_weight=direct, pseudo_weight=config.pseudo_weight,
                                           trace_weight=config.trace_weight)
            else:
                loss = F.cross_entropy(logits, y)
                parts = {}
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            step += 1
            losses.append(float(loss.detach()))
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v
        val_pred = predict_foreground(net, val_set.images) >= 0.5
        val_dice = mean_dice(val_pred, val_set.consensus)
        if val_dice > best[0]:
            best = (val_dice, epoch, copy.deepcopy(net.state_dict()))
        log = EpochLog(epoch, config.epochs, float(np.mean(losses)), val_dice, best[1],
                       {k: v / len(losses) for k, v in parts_sum.items()})
        history.append(log)
        yield log
    net.load_state_dict(best[2])
    net.eval()
    return TrainedModel(net, config, best[1], best[0], history)


def run_training(config: TrainConfig, train_set: AnnotatedSlices, val_set: AnnotatedSlices,
                 on_epoch=None) -> TrainedModel:
    """Drive `train` to the end in this thread (CLI, benchmark, tests)."""
    job = train(config, train_set, val_set)
    while True:
        try:
            log = next(job)
        except StopIteration as stop:
            return stop.value
        if on_epoch is not None:
            on_epoch(log)

