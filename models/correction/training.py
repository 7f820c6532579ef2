"""Train the correction net on MSD imagesTr/labelsTr patches within a wall-clock budget.

Data: models/correction/data.py; loss: click-weighted Dice (weight highest at the click) plus a
click-weighted BCE term for stable early gradients. Validation on held-out patients (Dice of the
patch output vs the ground truth, next to the Dice of the mask the net was given), best epoch kept.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from models.correction.checkpoint import save_correction
from models.correction.data import slice_samples, stack_samples
from models.correction.inputs import PATCH, normalise_slice
from models.correction.loss import click_weight, click_weighted_bce, click_weighted_dice
from models.correction.network import CorrectionNet
from models.training.dataset import list_cases, read_array, split_patients


def unet_masks(volume: np.ndarray, z0: int, z1: int, model):
    """The shipped U-Net's masks for slices z0..z1-1 (None if it cannot run)."""
    from models.inference import predict_volume

    prob = predict_volume(model, volume[z0:z1])["prob"]
    return prob > 0.5


def build_patches(data_dir, seed=0, per_case=120, use_unet=True, log=print, val_fraction=0.15,
                  budget_s=None, patch=PATCH, max_zoom=1.0):
    """Patches from the cases in random order, until every case is done or budget_s runs out."""
    start = time.time()
    rng = np.random.default_rng(seed)
    entries = [e for e in list_cases(data_dir, "Tr") if e[2] is not None]
    entries = [entries[i] for i in rng.permutation(len(entries))]
    train_names, val_names = split_patients([e[0] for e in entries], val_fraction, seed)
    model = None
    if use_unet:
        try:
            from models import zoo
            model = zoo.load("unet", device="cpu")
        except Exception as error:        # no shipped U-Net: simulated errors only
            log(f"no U-Net predictions ({error})")
    sets = {"train": [], "val": []}
    for name, image_path, label_path in entries:
        if budget_s is not None and time.time() - start > budget_s:
            log(f"preparation budget used: stopped before {name}")
            break
        volume = read_array(image_path).astype(np.float32)
        label = read_array(label_path) > 0
        zs = np.nonzero(label.reshape(label.shape[0], -1).any(axis=1))[0]
        if len(zs) == 0:
            continue
        # A contiguous block of at most 24 tumour slices around the middle: the U-Net then runs
        # on 24 slices, not the whole volume (the preparation must fit a shared CPU's minutes).
        mid = int(zs[len(zs) // 2])
        block = zs[(zs >= mid - 12) & (zs < mid + 12)]
        z0, z1 = int(block.min()), int(block.max()) + 1
        pred = unet_masks(volume, z0, z1, model) if model is not None else None
        chosen = rng.permutation(block)[: max(1, per_case // 4)]
        part = "val" if name in val_names else "train"
        for z in chosen:
            um = None if pred is None else pred[z - z0]
            sets[part].extend(slice_samples(volume[z], label[z], rng, um, normalise_slice(volume[z]),
                                            patch, max_zoom))
        log(f"{name}: {len(chosen)} slices, {len(sets['train'])} train / {len(sets['val'])} val")
    return {k: stack_samples(v) for k, v in sets.items()}, train_names, val_names


def synthetic_patches(data_dir, names, per_case: int, seed: int = 0, patch=PATCH, max_zoom=1.0,
                      log=print):
    """Patches of synthetic lesions (models/correction/synthetic.py) pasted onto per_case random
    slices of each named training case: three float16 arrays, or None."""
    from models.correction.synthetic import add_lesion

    rng = np.random.default_rng(seed + 7919)
    wanted = set(names)
    samples = []
    for name, image_path, _ in list_cases(data_dir, "Tr"):
        if name not in wanted:
            continue
        volume = read_array(image_path).astype(np.float32)
        for z in rng.integers(0, volume.shape[0], per_case):
            made = add_lesion(normalise_slice(volume[z]), rng)
            if made is None:
                continue
            image, gt = made
            samples.extend(slice_samples(image, gt, rng, None, image, patch, max_zoom))
    log(f"synthetic lesions: {len(samples)} patches from {len(wanted)} cases")
    return stack_samples(samples)


def _augment(img, rest, target, rng, intensity: bool = False):
    k = int(rng.integers(4))
    dims = (2, 3)
    img, rest, target = (torch.rot90(t, k, dims) for t in (img, rest, target))
    if rng.random() < 0.5:
        img, rest, target = (torch.flip(t, (3,)) for t in (img, rest, target))
    if intensity:
        img = intensity_jitter(img, rng)
    return img, rest, target


def intensity_jitter(img: torch.Tensor, rng) -> torch.Tensor:
    """Per patch: gamma 0.7-1.5, contrast x0.85-1.15, noise SD 0-0.03, back into [0, 1].

    The same tumour looks different from scanner to scanner and from one MR sequence to the next;
    the training set has 37 cases. Gamma and contrast keep 0 at 0, so padding outside the slice
    (0, as at inference) stays 0 but for the noise."""
    n = img.shape[0]
    gamma = torch.from_numpy(np.exp(rng.uniform(np.log(0.7), np.log(1.5), n))).float()
    scale = torch.from_numpy(rng.uniform(0.85, 1.15, n)).float()
    sd = torch.from_numpy(rng.uniform(0.0, 0.03, n)).float()
    noise = torch.from_numpy(rng.standard_normal(img.shape).astype(np.float32))
    out = img.clamp(0, 1) ** gamma.view(n, 1, 1, 1) * scale.view(n, 1, 1, 1)
    return (out + noise * sd.view(n, 1, 1, 1)).clamp(0, 1)


def evaluate(network, arrays, batch=128):
    network.eval()
    img, rest, target = (torch.from_numpy(a.astype(np.float32)) for a in arrays)
    dices, base = [], []
    with torch.no_grad():
        for s in range(0, len(img), batch):
            out = network(img[s:s + batch], rest[s:s + batch]) > 0
            t = target[s:s + batch] > 0.5
            m = rest[s:s + batch, :1] > 0.5
            for o, tt, mm in zip(out, t, m):
                dices.append(float(2 * (o & tt).sum() / max(int(o.sum() + tt.sum()), 1)))
                base.append(float(2 * (mm & tt).sum() / max(int(mm.sum() + tt.sum()), 1)))
    return float(np.mean(dices)), float(np.mean(base))


def train(data_dir, out_path, minutes=12.0, seed=0, batch=32, lr=2e-3, per_case=120,
          use_unet=True, widths=(16, 32, 64), bottleneck=64, log=print, init=None,
          patch_cache=None, extra_train=None, validate=None, extra_meta=None, patch=PATCH,
          max_zoom=1.0, synthetic_per_case=0, intensity_aug=False):
    """Train within `minutes` (patch preparation included); keep the best validation epoch.

    init: a correction_net .pt to continue from (its architecture settings are used).
    patch_cache: .npz where the prepared patches are stored / reused (same data and seed).
    extra_train: three more arrays of training patches (app/core/correction_sessions.session_patches).
    patch: side of the square input patch (the engine uses the size a file was trained at).
    max_zoom: how far the patch may widen around a large object (inputs.zoom_side), recorded too.
    synthetic_per_case: slices per training case that get a synthetic lesion (synthetic_patches).
    intensity_aug: also jitter each patch's grey levels (intensity_jitter), on top of the flips.
    validate: callable(network in eval mode) -> {"dice_auc": ...}; when given, the epoch kept is
    the one with the best validate() score (robot sessions on held-out slices), not patch Dice.
    """
    if init is not None:     # before minutes of patch preparation, not after
        from models.checkpoint import read_sidecar
        from models.correction.checkpoint import require_single_network

        require_single_network(read_sidecar(Path(init)), Path(init).name)
    start = time.time()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if patch_cache is not None and Path(patch_cache).exists():
        stored = np.load(patch_cache, allow_pickle=False)
        if stored["train0"].shape[-1] != patch:
            raise ValueError(f"{patch_cache} holds {stored['train0'].shape[-1]}-pixel patches, "
                             f"not {patch}: give another --patch-cache")
        if (float(stored["max_zoom"]) if "max_zoom" in stored else 1.0) != max_zoom:
            raise ValueError(f"{patch_cache} was built for another --max-zoom: give another "
                             "--patch-cache")
        sets = {"train": [stored[f"train{i}"] for i in range(3)],
                "val": [stored[f"val{i}"] for i in range(3)] if "val0" in stored else None}
        train_names = [str(n) for n in stored["train_names"]]
        val_names = [str(n) for n in stored["val_names"]]
    else:
        sets, train_names, val_names = build_patches(data_dir, seed, per_case, use_unet, log,
                                                     budget_s=0.45 * minutes * 60, patch=patch,
                                                     max_zoom=max_zoom)
        if patch_cache is not None:
            arrays = {f"train{i}": a for i, a in enumerate(sets["train"])}
            if sets["val"]:
                arrays.update({f"val{i}": a for i, a in enumerate(sets["val"])})
            np.savez(patch_cache, train_names=np.array(train_names), max_zoom=np.array(max_zoom),
                     val_names=np.array(val_names), **arrays)
    prep_minutes = (time.time() - start) / 60
    log(f"patches ready in {prep_minutes:.1f} min: {len(sets['train'][0])} train, "
        f"{0 if sets['val'] is None else len(sets['val'][0])} val")
    kwargs = {"widths": list(widths), "bottleneck": bottleneck, "image_channels": 1,
              "mask_channels": 3, "dropout": 0.1}
    network = CorrectionNet(**kwargs)
    if init is not None:
        from models.correction.checkpoint import load_correction

        network, old = load_correction(init)
        kwargs = dict(old["arch_kwargs"])
        best_before = old.get("metrics", {}).get("val_patch_dice")
        log(f"continuing from {init} (validation patch Dice "
            f"{old.get('metrics', {}).get('val_patch_dice')})")
    network.input_size = int(patch)
    network.max_zoom = float(max_zoom)
    opt = torch.optim.Adam(network.parameters(), lr=lr)
    prior_epochs = int(old.get("epochs", 0)) if init is not None else 0
    arrays = sets["train"]
    if extra_train is not None:
        arrays = [np.concatenate([a, b.astype(a.dtype)]) for a, b in zip(arrays, extra_train)]
        log(f"with {len(extra_train[0])} extra (session) patches: {len(arrays[0])} in all")
    synthetic = (synthetic_patches(data_dir, train_names, synthetic_per_case, seed, patch, max_zoom,
                                   log) if synthetic_per_case > 0 else None)
    if synthetic is not None:
        arrays = [np.concatenate([a, b.astype(a.dtype)]) for a, b in zip(arrays, synthetic)]
    img_all, rest_all, tgt_all = (torch.from_numpy(a) for a in arrays)
    n = len(img_all)
    batch = max(1, min(batch, n))
    deadline = max(start + minutes * 60, time.time() + 0.3 * minutes * 60)
    best, epoch, history = -1.0, 0, []
    if init is not None and validate is not None:
        network.eval()
        best = float(validate(network)["dice_auc"])
        log(f"starting weights: validation session score {best:.4f}")
    elif init is not None and sets["val"]:
        # Only save if this run beats the weights it started from, measured on these validation
        # patches: the recorded figure was measured on patches built from another U-Net's errors.
        best, base = evaluate(network, sets["val"])
        log(f"starting weights on these validation patches: patch Dice {best:.4f} "
            f"(recorded {best_before}; input mask {base:.4f})")
    while time.time() < deadline:
        network.train()
        order = torch.from_numpy(rng.permutation(n))
        losses = []
        for s in range(0, n - batch + 1, batch):
            idx = order[s:s + batch]
            img, rest, tgt = (t[idx].float() for t in (img_all, rest_all, tgt_all))
            img, rest, tgt = _augment(img, rest, tgt, rng, intensity_aug)
            logits = network(img, rest)
            w = click_weight(rest[:, 1:])
            loss = click_weighted_dice(logits, tgt, w) + 0.5 * click_weighted_bce(logits, tgt, w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if time.time() > deadline:
                break
        epoch += 1
        val_dice, base_dice = evaluate(network, sets["val"]) if sets["val"] else (0.0, 0.0)
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "val_dice": val_dice}
        score = val_dice
        if validate is not None:
            network.eval()
            sessions = validate(network)
            record.update({f"val_session_{k}": v for k, v in sessions.items()})
            score = float(sessions["dice_auc"])
        history.append(record)
        log(f"epoch {epoch}: loss {np.mean(losses):.4f} val patch Dice {val_dice:.4f} "
            f"(input mask {base_dice:.4f})"
            + ("" if validate is None else
               f" sessions: Dice AUC {score:.4f} NoC@90 {record['val_session_noc90']:.2f}")
            + f" {(time.time() - start) / 60:.1f} min")
        if score > best:
            best = score
            meta = {"arch_kwargs": kwargs, "input_size": int(patch), "max_zoom": float(max_zoom),
                    "mode": "correction",
                    "in_channels": 4, "training": {"data": str(data_dir), "train_cases": train_names,
                                                    "val_cases": val_names, "seed": seed,
                                                    "use_unet_errors": bool(use_unet),
                                                    "synthetic_per_case": int(synthetic_per_case),
                                                    "intensity_aug": bool(intensity_aug),
                                                    "patches": n, "batch": batch, "lr": lr,
                                                    **(extra_meta or {})},
                    "epochs": prior_epochs + epoch,
                    "metrics": {"val_patch_dice": val_dice, "val_input_mask_dice": base_dice,
                                **{k: v for k, v in record.items() if k.startswith("val_session")},
                                "loss": float(np.mean(losses)),
                                "minutes": round((time.time() - start) / 60, 2)},
                    "normalisation": {"slice": "CT window -200..300 HU, else slice 0.5/99.5 "
                                               "percentiles"}}
            save_correction(network, Path(out_path), meta)
            log(f"  saved {out_path}")
    return best, history
