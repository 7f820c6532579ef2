"""Whole-volume prediction with a loaded model: slices in batches, back onto the input grid.

`predict_volume_steps` is a generator yielding (done, total) after each batch of slices so callers
can report progress and cancel between batches; `predict_volume` runs it to the end.
"""
from __future__ import annotations

from typing import Generator

import numpy as np
import torch

from models import preprocess
from models.checkpoint import LoadedModel
from models.networks import cam_from_class_map
from models.networks.folding import inference_network

DEFAULT_BATCH = 16


def _set_dropout(network: torch.nn.Module, active: bool) -> None:
    """Dropout on for MC sampling while BatchNorm keeps its running statistics (eval)."""
    network.eval()
    if active:
        for module in network.modules():
            if isinstance(module, (torch.nn.Dropout, torch.nn.Dropout2d, torch.nn.Dropout3d)):
                module.train()


def predict_volume_steps(model: LoadedModel, array_zyx: np.ndarray, spacing=None,
                         modality: str | None = None, device=None, *, mc_samples: int = 0,
                         batch_size: int = DEFAULT_BATCH, seed: int = 0
                         ) -> Generator[tuple[int, int], None, dict]:
    """As predict_volume, yielding (slices_done, slices_total) after every batch (and MC pass)."""
    array_zyx = np.asarray(array_zyx)
    if array_zyx.ndim != 3:
        raise ValueError(f"expected a (z, y, x) volume, got shape {array_zyx.shape}")
    modality = modality if modality in ("CT", "MR") else preprocess.guess_modality(array_zyx)
    device = torch.device(device) if device is not None else model.device
    # BatchNorm folded into the convolutions (same outputs, less work); dropout is untouched.
    network = inference_network(model.network.to(device))
    nz, ny, nx = array_zyx.shape
    size = model.input_size
    small = preprocess.prepare_volume(array_zyx, modality, size, model.normalisation)
    passes = max(1, int(mc_samples))
    total = nz * passes
    want_cam = "class_map" in _output_keys(model)

    if mc_samples:
        torch.manual_seed(seed)        # reproducible MC samples for a given seed
    _set_dropout(network, active=bool(mc_samples))
    prob_sum = np.zeros((nz, size, size), np.float64)
    prob_sq = np.zeros((nz, size, size), np.float64) if mc_samples else None
    cam = np.zeros((nz, size, size), np.float32) if want_cam else None
    done = 0
    try:
        with torch.no_grad():
            for p in range(passes):
                for start in range(0, nz, batch_size):
                    idx = np.arange(start, min(start + batch_size, nz))
                    x = torch.from_numpy(preprocess.stack_neighbours(small, model.context, idx))
                    x = x.to(device, dtype=torch.float32)
                    if device.type == "cpu":
                        # NHWC input makes oneDNN pick its faster conv kernels (weights untouched):
                        # lits117_ct (128 slices) 2.2 -> 1.5 s of forward passes on 2 threads
                        x = x.contiguous(memory_format=torch.channels_last)
                    out = network(x)
                    prob = torch.sigmoid(out["seg"][:, 0]).double().cpu().numpy()
                    prob_sum[idx] += prob
                    if prob_sq is not None:
                        prob_sq[idx] += prob * prob
                    if want_cam and p == 0:
                        cam[idx] = cam_from_class_map(out["class_map"]).float().cpu().numpy()
                    done += len(idx)
                    yield done, total
    finally:
        _set_dropout(network, active=False)

    mean = prob_sum / passes
    result = {"prob": _to_grid(mean, ny, nx), "cam": None, "variance": None}
    if prob_sq is not None:
        var = np.maximum(prob_sq / passes - mean * mean, 0.0)
        result["variance"] = _to_grid(var, ny, nx)
    if want_cam:
        peak = float(cam.max())
        cam = cam / peak if peak > 0 else cam
        result["cam"] = _to_grid(cam, ny, nx)
    return result


def predict_volume(model: LoadedModel, array_zyx: np.ndarray, spacing=None,
                   modality: str | None = None, device=None, *, mc_samples: int = 0,
                   batch_size: int = DEFAULT_BATCH, seed: int = 0) -> dict:
    """Foreground probability for every voxel of `array_zyx`, on that same (z, y, x) grid.

    Returns {"prob": float32 (z,y,x), "cam": float32 (z,y,x) in [0,1] or None (models without a
    tag head), "variance": float32 (z,y,x) or None}. With mc_samples = N > 0, dropout stays on for
    N stochastic passes: "prob" is their mean and "variance" the per-voxel variance.
    spacing is accepted for interface stability; the 2D networks resize every slice to a fixed
    size, so they do not use it. modality None/"unknown": guessed from the intensities.
    """
    steps = predict_volume_steps(model, array_zyx, spacing, modality, device,
                                 mc_samples=mc_samples, batch_size=batch_size, seed=seed)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def _to_grid(small: np.ndarray, ny: int, nx: int) -> np.ndarray:
    # linear interpolation stays within the range of its inputs, so probabilities stay in [0, 1]
    return preprocess.resize_slices(small.astype(np.float32), (ny, nx), order=1)


def _output_keys(model: LoadedModel) -> set[str]:
    return {"seg", "class_map", "logits"} if model.architecture == "fpsnet2d" else {"seg"}
