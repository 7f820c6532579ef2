"""Save/load the correction net: state_dict .pt + the standard SegLoop JSON sidecar
(models/checkpoint.py writes both); loading is torch.load(weights_only=True) only."""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from models.checkpoint import _sha256, read_sidecar, save_checkpoint
from models.correction.network import ARCHITECTURE, CorrectionNet
from models.errors import ModelFileError

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "correction_net.pt"


def save_correction(network: CorrectionNet, path, meta: dict) -> Path:
    meta = dict(meta, architecture=ARCHITECTURE)
    return save_checkpoint(network, path, meta, half=True)


def load_correction(path=DEFAULT_WEIGHTS):
    """(network in eval mode on CPU, sidecar dict); ModelFileError for anything else."""
    path = Path(path)
    meta = read_sidecar(path)
    if meta["architecture"] != ARCHITECTURE:
        raise ModelFileError(f"{path.name} holds a '{meta['architecture']}' model, not a "
                             f"correction network.")
    if meta.get("weights_sha256") and _sha256(path) != meta["weights_sha256"]:
        raise ModelFileError(f"{path.name} does not match its sidecar (checksum differs).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelFileError(f"{path.name} contains code or objects that SegLoop refuses to "
                             "load.") from None
    network = CorrectionNet(**meta["arch_kwargs"])
    try:
        network.load_state_dict({k: v.float() if v.is_floating_point() else v
                                 for k, v in state.items()})
    except RuntimeError:
        raise ModelFileError(f"{path.name} does not fit the correction network.") from None
    network.input_size = int(meta.get("input_size", network.input_size))
    network.max_zoom = float(meta.get("max_zoom", 1.0))      # files from before zooming: none
    return network.eval(), meta
