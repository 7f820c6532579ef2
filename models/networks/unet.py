"""Segmentation U-Net (2D, 2.5D input), with dropout for MC-dropout uncertainty."""
from __future__ import annotations

from torch import nn

from models.networks.blocks import UNetTrunk


class UNet2D(nn.Module):
    """forward(x (B, C, H, W)) -> {"seg": (B, 1, H, W) foreground logits}."""

    ARCHITECTURE = "unet2d"

    def __init__(self, in_channels: int = 3, channels=(16, 32, 64, 128, 128), dropout: float = 0.1):
        super().__init__()
        self.trunk = UNetTrunk(in_channels, channels, dropout, attention=False)
        self.seg_head = nn.Conv2d(self.trunk.out_channels, 1, 1)

    def forward(self, x):
        return {"seg": self.seg_head(self.trunk(x))}
