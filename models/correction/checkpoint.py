"""Save/load the correction net: state_dict .pt + the standard SegLoop JSON sidecar
(models/checkpoint.py writes both); loading is torch.load(weights_only=True) only."""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from models.checkpoint import _sha256, read_sidecar, save_checkpoint
from models.correction.network import ARCHITECTURE, CorrectionEnsemble, CorrectionNet
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
    members = int(meta.get("members", 1))
    network = (CorrectionNet(**meta["arch_kwargs"]) if members == 1 else
               CorrectionEnsemble(members, **meta["arch_kwargs"]))
    try:
        network.load_state_dict({k: v.float() if v.is_floating_point() else v
                                 for k, v in state.items()})
    except RuntimeError:
        raise ModelFileError(f"{path.name} does not fit the correction network.") from None
    network.input_size = int(meta.get("input_size", network.input_size))
    network.max_zoom = float(meta.get("max_zoom", 1.0))      # files from before zooming: none
    return network.eval(), meta


def require_single_network(meta: dict, name: str) -> None:
    """ModelFileError unless the sidecar describes one network: an ensemble cannot be trained on
    or combined again."""
    members = int(meta.get("members", 1))
    if members > 1:
        raise ModelFileError(f"{name} is an ensemble of {members} networks: continue one of the "
                             "files it was combined from (its sidecar lists them under ensemble_of)")


# What members of one ensemble must share: they see the same inputs.
_SHARED = ("arch_kwargs", "input_size", "max_zoom")


def combine_correction(paths, out_path, note: str = "") -> Path:
    """Save the correction nets in `paths` (same architecture, input size and zoom) as one
    ensemble file; its sidecar names each member with its checksum, training record and metrics."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ModelFileError("an ensemble needs at least two correction-net files")
    loaded = [load_correction(p) for p in paths]
    metas = [meta for _, meta in loaded]
    for key in _SHARED:
        values = {repr(m.get(key, 1.0 if key == "max_zoom" else None)) for m in metas}
        if len(values) > 1:
            raise ModelFileError(f"the files differ in {key} ({', '.join(sorted(values))}): "
                                 "their members would not see the same inputs")
    for path, meta in zip(paths, metas):
        require_single_network(meta, path.name)
    first = metas[0]
    ensemble = CorrectionEnsemble(len(paths), **first["arch_kwargs"])
    for member, (network, _) in zip(ensemble.members, loaded):
        member.load_state_dict(network.state_dict())
    meta = {"arch_kwargs": first["arch_kwargs"], "input_size": first["input_size"],
            "max_zoom": float(first.get("max_zoom", 1.0)), "members": len(paths),
            "mode": "correction", "in_channels": first.get("in_channels", 4),
            "normalisation": first.get("normalisation"), "note": note,
            "ensemble_of": [{"file": p.name, "weights_sha256": m.get("weights_sha256"),
                             "created": m.get("created"), "git_commit": m.get("git_commit"),
                             "epochs": m.get("epochs"), "metrics": m.get("metrics"),
                             "training": m.get("training")} for p, m in zip(paths, metas)]}
    return save_correction(ensemble, out_path, meta)
