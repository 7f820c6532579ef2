"""FPSNet: a U-Net trunk with scSE attention and two heads that share every layer but the last.

- seg head: 1x1 conv -> (B, 1, H, W) foreground logits (trained on strong labels);
- tag head: 1x1 conv -> (B, 2, H, W) full-resolution class map; global average pooling gives the
  slice's (absent, present) logits (trained on tags).
Because the classifier is a plain average of the class map, each pixel's share of the
"present minus absent" logit is that pixel's map difference: a class activation map at full
resolution, without Grad-CAM.
"""
from __future__ import annotations

import torch
from torch import nn

from models.networks.blocks import UNetTrunk


class FPSNet(nn.Module):
    """forward(x) -> {"seg": (B,1,H,W) logits, "class_map": (B,2,H,W), "logits": (B,2)}."""

    ARCHITECTURE = "fpsnet2d"

    def __init__(self, in_channels: int = 3, channels=(16, 32, 64, 128, 128), dropout: float = 0.1):
        super().__init__()
        self.trunk = UNetTrunk(in_channels, channels, dropout, attention=True)
        self.seg_head = nn.Conv2d(self.trunk.out_channels, 1, 1)
        self.tag_head = nn.Conv2d(self.trunk.out_channels, 2, 1)

    def forward(self, x):
        features = self.trunk(x)
        class_map = self.tag_head(features)
        return {"seg": self.seg_head(features), "class_map": class_map,
                "logits": class_map.mean(dim=(2, 3))}


def cam_from_class_map(class_map: torch.Tensor) -> torch.Tensor:
    """Unnormalised CAM (B, H, W): ReLU(present - absent).

    The difference rather than the class-1 channel alone: softmax ignores a constant added to both
    channels, so channel 1 by itself carries an arbitrary offset; the difference is exactly each
    pixel's contribution to the tag decision. Normalise (divide by max) over the whole volume so
    that slices the network thinks are tumour-free stay dark.
    """
    return torch.relu(class_map[:, 1] - class_map[:, 0])
