"""Display intensities: window/level presets for CT, percentile scaling for MR, modality guess.

These are for showing an image. What the networks see is decided in models/preprocess.py, which
owns the normalisation each model was trained with.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# One rule for "is this CT?", shared with the networks' normalisation (re-exported for the app).
from models.preprocess import guess_modality  # noqa: F401


@dataclass(frozen=True)
class Window:
    width: float
    level: float

    @property
    def low(self) -> float:
        return self.level - self.width / 2

    @property
    def high(self) -> float:
        return self.level + self.width / 2


CT_PRESETS: dict[str, Window] = {
    "Soft tissue": Window(400, 40),
    "Lung": Window(1500, -600),
    "Liver": Window(150, 90),
    "Bone": Window(2500, 480),
    "Brain": Window(80, 40),
}


def percentile_window(array: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> Window:
    """The window spanning the 1st–99th percentile: MR has no absolute scale, so take the data's own."""
    step = max(1, array.size // 2_000_000)
    sample = array.reshape(-1)[::step]
    low, high = np.percentile(sample, [low_pct, high_pct])
    if high <= low:
        high = low + 1.0
    return Window(float(high - low), float((high + low) / 2))


def default_window(array: np.ndarray, modality: str) -> Window:
    if modality == "CT":
        return CT_PRESETS["Soft tissue"]
    return percentile_window(array)


def apply_window(array: np.ndarray, window: Window) -> np.ndarray:
    """Map intensities to [0, 1] float32 through a window (for display)."""
    scaled = (array.astype(np.float32) - window.low) / max(window.width, 1e-6)
    return np.clip(scaled, 0.0, 1.0, out=scaled)
