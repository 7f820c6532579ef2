"""Model files: a plain state_dict `.pt` plus a JSON sidecar `.json` that says what it is.

Saving is atomic (temp file + os.replace, weights first, sidecar last, the sidecar carrying the
weights' SHA-256), so a crash never leaves a half-written model that looks complete. Loading uses
`torch.load(..., weights_only=True)` only: a pickle that carries code is refused by torch before
anything runs, and we turn that into one clear sentence. A `.pt` without our sidecar, a sidecar
for another architecture, or weights that do not fit the architecture are refused too.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import pickle
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from models import networks
from models.device import resolve
from models.errors import ModelFileError

FORMAT = "segloop-model"
FORMAT_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class LoadedModel:
    """A network in eval mode together with its sidecar (how to feed it, how it was trained)."""

    network: torch.nn.Module
    meta: dict
    path: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def architecture(self) -> str:
        return self.meta["architecture"]

    @property
    def input_size(self) -> int:
        return int(self.meta["input_size"])

    @property
    def context(self) -> int:
        return int(self.meta.get("context", 0))

    @property
    def normalisation(self) -> dict:
        return self.meta["normalisation"]

    @property
    def mask_source(self) -> str:
        """'seg' (threshold the seg head) or 'cam' (graph cut on the CAM: tags-only models)."""
        return self.meta.get("mask_source", "seg")

    @property
    def cam_threshold(self) -> float:
        return float(self.meta.get("cam_threshold", 0.5))


def sidecar_path(weights_path: str | os.PathLike) -> Path:
    return Path(weights_path).with_suffix(".json")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, encoding="utf-8", timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _atomic_write_bytes(path: Path, writer) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)        # mkstemp makes 0600; a model file is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(network: torch.nn.Module, path: str | os.PathLike, meta: dict,
                    half: bool = False) -> Path:
    """Write `path` (.pt state_dict) and its sidecar atomically; returns the weights path.

    meta must hold "architecture" and "arch_kwargs" (constructor arguments) and should hold
    input_size, context, in_channels, normalisation, mode, training data, seed, epochs, metrics.
    half: store floating tensors as float16 (half the file size; loaded back into float32).
    """
    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"model weights are written as .pt, got {path.name}")
    state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    _atomic_write_bytes(path, lambda handle: torch.save(state, handle))
    sidecar = dict(meta)
    sidecar.update({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights_file": path.name,
        "weights_sha256": _sha256(path),
        "weights_dtype": "float16" if half else "float32",
        "created": sidecar.get("created") or datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec="seconds"),
        "git_commit": sidecar.get("git_commit") or git_commit(),
    })
    text = json.dumps(sidecar, indent=2, sort_keys=True) + "\n"
    _atomic_write_bytes(sidecar_path(path), lambda handle: handle.write(text.encode("utf-8")))
    return path


def read_sidecar(path: str | os.PathLike) -> dict:
    """The sidecar of a weights file, checked to be one of ours (ModelFileError otherwise)."""
    path = Path(path)
    side = sidecar_path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist.")
    if not side.exists():
        raise ModelFileError(
            f"{path.name} has no SegLoop sidecar ({side.name}); SegLoop only loads model files it "
            "wrote itself.")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{side.name} is not a readable SegLoop model sidecar (bad JSON).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{side.name} is not a SegLoop model sidecar (no '{FORMAT}' marker).")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(f"{side.name} was written by a newer SegLoop (format "
                             f"{meta.get('format_version')}); update SegLoop to load it.")
    for key in ("architecture", "arch_kwargs", "input_size"):
        if key not in meta:
            raise ModelFileError(f"{side.name} lacks '{key}'; the model file cannot be used.")
    return meta


def load_checkpoint(path: str | os.PathLike, device=None, expected_architecture: str | None = None
                    ) -> LoadedModel:
    """Load a model written by save_checkpoint, in eval mode on `device` (default: GPU if any).

    Raises ModelFileError with one sentence for anything that is not a SegLoop model of a known
    (and, if given, the expected) architecture.
    """
    path = Path(path)
    meta = read_sidecar(path)
    arch = meta["architecture"]
    if expected_architecture is not None and arch != expected_architecture:
        raise ModelFileError(f"{path.name} holds a '{arch}' model, not the expected "
                             f"'{expected_architecture}'.")
    if arch not in networks.ARCHITECTURES:
        raise ModelFileError(f"{path.name} is a '{arch}' model, an architecture this SegLoop "
                             f"does not know ({', '.join(sorted(networks.ARCHITECTURES))}).")
    expected_sha = meta.get("weights_sha256")
    if expected_sha and _sha256(path) != expected_sha:
        raise ModelFileError(f"{path.name} does not match its sidecar (checksum differs): the "
                             "weights were replaced or damaged.")
    device = resolve(device)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise ModelFileError(
            f"{path.name} is not a plain weights file: it contains code or objects that SegLoop "
            "refuses to load.") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelFileError(f"{path.name} is not a readable PyTorch weights file "
                             f"({type(error).__name__}).") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path.name} does not hold a state_dict of tensors.")
    try:
        network = networks.build(arch, **meta["arch_kwargs"])
    except TypeError as error:
        raise ModelFileError(f"{path.name}: its sidecar's settings do not fit '{arch}' ({error}).") from None
    try:
        result = network.load_state_dict(state, strict=False)
    except RuntimeError:     # same names, other shapes
        raise ModelFileError(f"{path.name} does not fit the '{arch}' architecture described by "
                             "its sidecar (weight shapes differ).") from None
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"{len(result.missing_keys)} missing (e.g. {result.missing_keys[0]})")
        if result.unexpected_keys:
            parts.append(f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[0]})")
        raise ModelFileError(f"{path.name} does not fit the '{arch}' architecture: "
                             f"{', '.join(parts)} weights.")
    network.to(device).eval()
    return LoadedModel(network=network, meta=meta, path=path, device=device)
