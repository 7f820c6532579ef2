"""The models SegLoop ships, by name.

    unet          U-Net trained on every strong label of bench imagesTr
    fpsnet-cam    FPSNet trained on slice tags only; the mask comes from its CAM (graph cut)
    fpsnet-mixed  FPSNet with mixed supervision, strong labels for 20 % of the training cases
                  (the default mixed model; the 10/50/100 % ones are shipped for the benchmark)

Weights live in models/weights/ as `<file>.pt` + `<file>.json`; MODEL_CARD.md there says how each
was trained and how well it does.
"""
from __future__ import annotations

from pathlib import Path

from models.checkpoint import LoadedModel, load_checkpoint, read_sidecar
from models.errors import ModelFileError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

# name -> weights file. The first three are what the app offers; the rest exist for measuring.
MODEL_FILES = {
    "unet": "unet.pt",
    "fpsnet-cam": "fpsnet_cam.pt",
    "fpsnet-mixed": "fpsnet_mixed20.pt",
    "fpsnet-mixed10": "fpsnet_mixed10.pt",
    "fpsnet-mixed50": "fpsnet_mixed50.pt",
    "fpsnet-mixed100": "fpsnet_mixed100.pt",
}
APP_MODELS = ("unet", "fpsnet-cam", "fpsnet-mixed")
DEFAULT_MODEL = "unet"


def path_of(name: str) -> Path:
    if name not in MODEL_FILES:
        raise ModelFileError(f"unknown model '{name}'; known models: {', '.join(MODEL_FILES)}.")
    return WEIGHTS_DIR / MODEL_FILES[name]


def available(include_benchmark_only: bool = False) -> list[str]:
    """Names whose weights and sidecar are present (app models first, in APP_MODELS order)."""
    names = list(MODEL_FILES) if include_benchmark_only else list(APP_MODELS)
    return [n for n in names if path_of(n).exists() and path_of(n).with_suffix(".json").exists()]


def describe(name: str) -> dict:
    """The sidecar of a shipped model (mode, metrics, ...) without loading its weights."""
    return read_sidecar(path_of(name))


def load(name_or_path: str, device=None) -> LoadedModel:
    """Load a shipped model by name, or any SegLoop model file by path (.pt with its sidecar)."""
    if name_or_path in MODEL_FILES:
        path = path_of(name_or_path)
        if not path.exists():
            raise ModelFileError(f"the weights of model '{name_or_path}' ({path.name}) are not in "
                                 f"{WEIGHTS_DIR}; train them with `python main.py train` or use "
                                 f"one of: {', '.join(available()) or 'none'}.")
        model = load_checkpoint(path, device)
        model.meta.setdefault("name", name_or_path)
        return model
    path = Path(name_or_path)
    if path.suffix == ".pt" or path.exists():
        return load_checkpoint(path, device)
    raise ModelFileError(f"unknown model '{name_or_path}'; known models: {', '.join(MODEL_FILES)}.")
