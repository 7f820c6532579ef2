"""The torch device, chosen once: the GPU when there is one, else the CPU."""
from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=1)
def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve(device=None) -> torch.device:
    """None -> default_device(); a string or torch.device -> that device."""
    return default_device() if device is None else torch.device(device)
