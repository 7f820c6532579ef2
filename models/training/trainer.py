"""Training loops for the three modes, with a hard epoch and wall-clock budget.

- unet:          UNet2D, strong labels of every training case, loss BCE + soft Dice.
- fpsnet-weak:   FPSNet, slice tags only (derived from the labels), loss CE on the GAP logits.
- fpsnet-mixed:  FPSNet (initialised from a tags-only model when --init is given); each step pairs
                 strongly labelled slices (seg loss on them) with weakly labelled slices (tag CE
                 on all), the strong labels drawn from `strong_fraction` of the training cases.
Model selection: the epoch with the best validation Dice on held-out training patients; that
checkpoint is what is written to `out`.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models import networks, preprocess
from models.checkpoint import load_checkpoint, save_checkpoint
from models.device import resolve
from models.training.augment import augment_batch
from models.training.dataset import Case, load_dataset
from models.training.sampling import SlicePool, choose_strong_cases
from models.training.validation import validate

MODES = ("unet", "fpsnet-weak", "fpsnet-mixed")


@dataclass
class TrainConfig:
    data_dir: str
    mode: str = "unet"
    out: str = "models/weights/unet.pt"
    strong_fraction: float = 1.0
    epochs: int = 30
    steps_per_epoch: int = 40
    batch_size: int = 16
    input_size: int = 128
    context: int = 1                  # 2.5D: 1 neighbour each side -> 3 input channels
    channels: tuple = (16, 32, 64, 128, 128)
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    positive_fraction: float = 0.5
    balance: str = "case"            # draw cases uniformly, then slices (see sampling.py)
    dice: str = "batch"              # soft Dice over the batch, or per slice (see seg_loss)
    val_fraction: float = 0.15
    seed: int = 0
    max_minutes: float | None = None
    init: str | None = None          # a checkpoint to start from (fpsnet-mixed: the tags-only model)
    device: str | None = None
    half: bool = True                # store weights as float16 (half the file size)
    limit_cases: int | None = None   # for quick tests
    augment: bool = True
    crop: int | None = None          # unet only: train on random crops this size (4x cheaper at 64)
    command: str = field(default_factory=lambda: " ".join(sys.argv))


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Dice over the whole batch (one ratio, so empty slices do not produce 0/0)."""
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum()
    return 1.0 - (2.0 * inter + 1.0) / (prob.sum() + target.sum() + 1.0)


def per_slice_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean Dice of the slices that hold foreground (empty slices are left to the BCE term).

    With one batch-wide ratio a 150-pixel brain tumour next to 2,000-pixel sarcomas is ~7 % of the
    Dice: the network can ignore small objects at little cost. Per slice, each counts the same.
    """
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    has_fg = target.sum(dim=1) > 0
    if not bool(has_fg.any()):
        return logits.sum() * 0.0
    prob, target = prob[has_fg], target[has_fg]
    dice = (2.0 * (prob * target).sum(dim=1) + 1.0) / (prob.sum(dim=1) + target.sum(dim=1) + 1.0)
    return 1.0 - dice.mean()


DICE_LOSSES = {"batch": soft_dice_loss, "slice": per_slice_dice_loss}


def seg_loss(logits: torch.Tensor, target: torch.Tensor, dice: str = "batch") -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target) + DICE_LOSSES[dice](logits, target)


def build_network(config: TrainConfig):
    arch = "unet2d" if config.mode == "unet" else "fpsnet2d"
    kwargs = {"in_channels": 2 * config.context + 1, "channels": list(config.channels),
              "dropout": config.dropout}
    return arch, kwargs, networks.build(arch, **kwargs)


def training_step(network, batch, mode: str, n_strong: int, dice: str = "batch"):
    """Loss of one batch. For fpsnet-mixed the first n_strong samples are the strongly labelled."""
    images, labels, tags = batch
    out = network(images)
    if mode == "unet":
        return seg_loss(out["seg"][:, 0], labels, dice)
    tag_loss = F.cross_entropy(out["logits"], tags)
    if mode == "fpsnet-weak" or n_strong == 0:
        return tag_loss
    return seg_loss(out["seg"][:n_strong, 0], labels[:n_strong], dice) + tag_loss


def _draw(pools, config, rng, generator, device):
    """One batch: (images, labels, tags), n_strong."""
    strong_pool, weak_pool = pools
    b = config.batch_size
    if config.mode == "unet" or config.mode == "fpsnet-weak":
        batch = weak_pool.draw(b, rng, config.positive_fraction)
        n_strong = b if config.mode == "unet" else 0
    else:
        n_strong = b // 2 if strong_pool is not None and len(strong_pool) else 0
        parts = []
        if n_strong:
            parts.append(strong_pool.draw(n_strong, rng, config.positive_fraction))
        parts.append(weak_pool.draw(b - n_strong, rng, config.positive_fraction))
        batch = tuple(torch.cat(t) for t in zip(*parts))
    images, labels, tags = (t.to(device) for t in batch)
    if config.augment:
        images, labels = augment_batch(images, labels, generator)
    if config.crop and config.mode == "unet":
        images, labels = random_crop(images, labels, config.crop, rng)
    return (images, labels, tags), n_strong


def inherited_split(config: TrainConfig, meta: dict | None) -> tuple[list[str] | None, set[str] | None]:
    """(validation cases, strong cases) of the run this one continues (`meta`: its sidecar).

    A continued run must keep its parent's split: with a new seed the split would change, the new
    validation patients would be ones the parent trained on, and model selection would be
    flattered. Strong cases carry over when the parent used the same strong fraction."""
    if meta is None:
        return None, None
    training = meta.get("training", {})
    val = training.get("validation_cases")
    strong = None
    if (config.mode == "fpsnet-mixed" and meta.get("mode") == "fpsnet-mixed"
            and meta.get("strong_fraction") == config.strong_fraction):
        strong = set(training.get("strong_cases") or []) or None
    return (list(val) if val else None), strong


def random_crop(images, labels, size: int, rng: np.random.Generator):
    """Crop each sample to size x size; on a slice with tumour the crop holds a random tumour
    pixel, so the balanced sampling still shows the network as much tumour as before.

    The networks are fully convolutional, so training on crops and predicting whole slices works
    (as nnU-Net's patch training does); a 64 px crop of a 128 px slice costs a quarter of it.
    """
    b, _, h, w = images.shape
    out_i, out_l = [], []
    for i in range(b):
        fg = torch.nonzero(labels[i] > 0)
        if len(fg):
            cy, cx = fg[int(rng.integers(len(fg)))].tolist()
            y0 = int(np.clip(cy - rng.integers(0, size), 0, h - size))
            x0 = int(np.clip(cx - rng.integers(0, size), 0, w - size))
        else:
            y0, x0 = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        out_i.append(images[i, :, y0:y0 + size, x0:x0 + size])
        out_l.append(labels[i, y0:y0 + size, x0:x0 + size])
    return torch.stack(out_i), torch.stack(out_l)


def train(config: TrainConfig, cases: tuple[list[Case], list[Case]] | None = None,
          log=print) -> dict:
    """Train, write the best checkpoint to config.out, and return a summary dict."""
    if config.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {config.mode!r}")
    if config.dice not in DICE_LOSSES:
        raise ValueError(f"dice must be one of {tuple(DICE_LOSSES)}, got {config.dice!r}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = resolve(config.device)
    t0 = time.monotonic()

    start = load_checkpoint(config.init, device="cpu") if config.init else None
    parent_val, parent_strong = inherited_split(config, start.meta if start else None)
    if cases is None:
        train_cases, val_cases = load_dataset(
            config.data_dir, config.input_size, config.val_fraction, config.seed,
            limit=config.limit_cases, progress=lambda it: tqdm(it, desc="loading", leave=False),
            val_names=parent_val)
    else:
        train_cases, val_cases = cases
    if config.mode == "fpsnet-mixed":
        strong = ([c for c in train_cases if c.name in parent_strong] if parent_strong is not None
                  else choose_strong_cases(train_cases, config.strong_fraction, config.seed))
    else:
        strong = train_cases if config.mode == "unet" else []
    weak_pool = SlicePool(train_cases, config.context, config.balance)
    strong_pool = SlicePool(strong, config.context, config.balance) if strong else None
    log(f"{config.mode}: {len(train_cases)} training cases ({len(weak_pool)} slices), "
        f"{len(val_cases)} validation cases, strong labels from {len(strong)} cases, "
        f"device {device}, loaded in {time.monotonic() - t0:.0f} s")

    arch, arch_kwargs, network = build_network(config)
    prior = None
    if start is not None:
        network.load_state_dict(start.network.state_dict())
        prior = {k: start.meta.get(k) for k in ("mode", "epochs", "strong_fraction", "metrics",
                                                 "weights_sha256", "created")}
        prior["command"] = start.meta.get("training", {}).get("config", {}).get("command")
        prior["init_from"] = start.meta.get("training", {}).get("init_from")
        log(f"initialised from {config.init}")
    network.to(device).train()
    optimiser = torch.optim.Adam(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * config.steps_per_epoch
    use_cam = config.mode == "fpsnet-weak"
    deadline = t0 + config.max_minutes * 60 if config.max_minutes else None

    def set_lr(step: int) -> None:
        # Cosine decay over whichever budget runs out first (steps or wall clock), so a run cut
        # short by --max-minutes still ends at a low learning rate instead of mid-descent.
        progress = step / total_steps
        if deadline:
            progress = max(progress, (time.monotonic() - t0) / (deadline - t0))
        for group in optimiser.param_groups:
            group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    best = {"val_dice": -1.0}
    history = []
    step = 0
    if config.init and val_cases:
        # the starting point is the one to beat: a continued run never ships something worse
        best = {"epoch": 0, "loss": float("nan"), **validate(network, val_cases, config.context,
                                                              device, use_cam), "minutes": 0.0}
        history.append(best)
        log(f"epoch   0  (init)  val Dice {best['val_dice']:.4f}  *saved")
        _save(network, config, arch, arch_kwargs, best, history, train_cases, val_cases, strong,
                  prior)
    for epoch in range(1, config.epochs + 1):
        losses = []
        bar = tqdm(range(config.steps_per_epoch), desc=f"epoch {epoch}/{config.epochs}",
                   leave=False, file=sys.stderr)
        for _ in bar:
            if deadline and time.monotonic() > deadline and losses:
                break       # out of time: validate what we have rather than train at lr 0
            set_lr(step)
            batch, n_strong = _draw((strong_pool, weak_pool), config, rng, generator, device)
            loss = training_step(network, batch, config.mode, n_strong, config.dice)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        metrics = validate(network, val_cases, config.context, device, use_cam)
        record = {"epoch": epoch, "loss": float(np.mean(losses)), **metrics,
                  "minutes": round((time.monotonic() - t0) / 60, 2)}
        history.append(record)
        improved = not val_cases or metrics["val_dice"] > best["val_dice"]
        log(f"epoch {epoch:3d}  loss {record['loss']:.4f}  val Dice {metrics['val_dice']:.4f}"
            + (f" (CAM >= {metrics['cam_threshold']:.2f})" if use_cam else "")
            + ("  *saved" if improved else "") + f"  {record['minutes']:.1f} min")
        if improved:
            best = record
            _save(network, config, arch, arch_kwargs, best, history, train_cases, val_cases, strong,
                  prior)
        if deadline and time.monotonic() > deadline:
            log(f"time budget of {config.max_minutes} min reached after epoch {epoch}")
            break
    _save_history_only(config, history)
    return {"best": best, "history": history, "out": config.out}


def _save(network, config, arch, arch_kwargs, best, history, train_cases, val_cases, strong,
              prior):
    meta = {
        "architecture": arch,
        "arch_kwargs": arch_kwargs,
        "input_size": config.input_size,
        "context": config.context,
        "in_channels": 2 * config.context + 1,
        "normalisation": preprocess.normalisation_spec(),
        "mask_source": "cam" if config.mode == "fpsnet-weak" else "seg",
        "mode": config.mode,
        "strong_fraction": config.strong_fraction if config.mode == "fpsnet-mixed" else
        (1.0 if config.mode == "unet" else 0.0),
        "seed": config.seed,
        "epochs": best["epoch"],
        "training": {
            "data": str(config.data_dir),
            "train_cases": [c.name for c in train_cases],
            "validation_cases": [c.name for c in val_cases],
            "strong_cases": [c.name for c in strong],
            "config": {k: (list(v) if isinstance(v, tuple) else v)
                       for k, v in dataclasses.asdict(config).items()},
            "history": history,
            "init_from": prior,     # the run this one continued (its own command and metrics)
        },
        "metrics": {k: v for k, v in best.items() if k != "epoch"},
    }
    if "cam_threshold" in best:
        meta["cam_threshold"] = best["cam_threshold"]
    save_checkpoint(network, config.out, meta, half=config.half)


def _save_history_only(config, history):
    """Append the full history to the sidecar of the saved (best) model."""
    import json

    side = Path(config.out).with_suffix(".json")
    if not side.exists():
        return
    meta = json.loads(side.read_text(encoding="utf-8"))
    meta["training"]["history"] = history
    tmp = side.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(side)
