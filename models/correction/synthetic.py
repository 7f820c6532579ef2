"""Synthetic lesions pasted onto real training slices: clear objects of every size for the net.

The benchmark's tumours are mostly low-contrast sarcomas, so a net trained on them alone learns a
timid first click (the correction-net engine's first click takes under half of an obvious 13-px-radius
disk: benchmarks/first_click_disks.py). 2,500 such patches in one continuation did not change that
(model card, session 5); more of them, or training from scratch with them, is untried. A
lesion of random irregular shape (an ellipse whose radius wanders with a few low Fourier modes),
random size (radius 4-60 px), brighter or darker than its surroundings by 0.08-0.45 of the
normalised range with a soft one-pixel edge and some texture, is added to a real normalised slice
inside the body; its mask is the target. Samples from it go through the same simulated errors and
robot clicks as the real ones (data.slice_samples).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def lesion_shape(shape, centre, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Bool mask of an irregular blob around `centre` of mean radius `radius`."""
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    dy, dx = yy - centre[0], xx - centre[1]
    angle = np.arctan2(dy, dx)
    stretch = rng.uniform(0.6, 1.0)
    tilt = rng.uniform(0, np.pi)
    # ellipse: the radius along each direction
    c, s = np.cos(angle - tilt), np.sin(angle - tilt)
    edge = radius / np.sqrt(c ** 2 + (s / stretch) ** 2) * np.sqrt(stretch)
    for k in range(2, 6):                       # low modes: lobes, no spikes
        edge *= 1.0 + rng.uniform(0, 0.25 / k * 2) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    return np.hypot(dy, dx) <= edge


def add_lesion(image_norm: np.ndarray, rng: np.random.Generator, radius_range=(4.0, 60.0)):
    """(image with a lesion, its mask) or None when the slice has no room (too little body)."""
    body = image_norm > 0.05
    body = ndimage.binary_erosion(body, iterations=8)
    if body.sum() < 200:
        return None
    radius = float(np.exp(rng.uniform(np.log(radius_range[0]), np.log(radius_range[1]))))
    pts = np.argwhere(body)
    cy, cx = pts[int(rng.integers(len(pts)))]
    gt = lesion_shape(image_norm.shape, (cy, cx), radius, rng)
    if gt.sum() < 12:
        return None
    soft = ndimage.gaussian_filter(gt.astype(np.float32), rng.uniform(0.5, 1.2))
    step = float(rng.uniform(0.08, 0.45)) * (1 if rng.random() < 0.5 else -1)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, gt.shape).astype(np.float32), 1.5)
    texture *= float(rng.uniform(0, 0.4)) * abs(step) / max(float(texture.std()), 1e-6)
    # Replace rather than add: the lesion has its own level (around the surroundings' + step)
    level = float(np.median(image_norm[gt])) + step
    out = image_norm * (1 - soft) + (level + texture) * soft
    return np.clip(out, 0.0, 1.0).astype(np.float32), gt
