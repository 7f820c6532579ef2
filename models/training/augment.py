"""Batch augmentation in torch: flips, small rotations/scales/shifts, intensity jitter.

Geometry is applied to image and label with the same sampling grid; the label is resampled
bilinearly and re-thresholded at 0.5 (smoother than nearest, and no half-pixel shift).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment_batch(images: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator,
                  max_rotation_deg: float = 15.0, scale_range=(0.85, 1.15), max_shift: float = 0.06,
                  intensity: bool = True):
    """images (B, C, H, W) in [0, 1]; labels (B, H, W) 0/1 float or None. Returns the pair."""
    b = images.shape[0]
    dev = images.device

    def uniform(low, high):
        return low + (high - low) * torch.rand(b, generator=generator).to(dev)

    angle = uniform(-max_rotation_deg, max_rotation_deg) * (math.pi / 180.0)
    scale = uniform(*scale_range)
    flip_x = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0).to(dev)
    flip_y = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0).to(dev)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip_x, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos * flip_y
    theta[:, 0, 2] = uniform(-max_shift, max_shift) * 2
    theta[:, 1, 2] = uniform(-max_shift, max_shift) * 2
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if labels is not None:
        warped = F.grid_sample(labels[:, None].float(), grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        labels = (warped[:, 0] >= 0.5).float()
    if intensity:
        gain = uniform(0.9, 1.1).view(b, 1, 1, 1)
        bias = uniform(-0.05, 0.05).view(b, 1, 1, 1)
        gamma = torch.exp(uniform(-0.25, 0.25)).view(b, 1, 1, 1)
        images = images.clamp(0, 1).pow(gamma) * gain + bias
        noise = torch.randn(images.shape, generator=generator).to(dev)
        images = images + noise * uniform(0.0, 0.03).view(b, 1, 1, 1)
    return images, labels
