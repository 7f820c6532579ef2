"""CorrectionNet: two encoders (image; mask + click maps), a shared bottleneck, a decoder whose
skips pass through additive attention gates, one logit map out (sigmoid gives the new mask).

Differences from the seed-003 network, and why: the clicks are input channels (Gaussian maps of
foreground and background clicks), so the network knows where the user pointed instead of only
being centred there; widths are 16/32/64 with a 64 bottleneck so it trains in minutes on a shared
CPU and ships under 1 MB.
"""
from __future__ import annotations

import torch
from torch import nn

from models.correction.inputs import PATCH

ARCHITECTURE = "correction2d"


def _block(cin: int, cout: int, dropout: float = 0.0) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
              nn.ReLU(inplace=True)]
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    layers += [nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
               nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    def __init__(self, cin: int, widths):
        super().__init__()
        self.stages = nn.ModuleList()
        for w in widths:
            self.stages.append(_block(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        skips = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else self.pool(x))
            skips.append(x)
        return skips


class AttentionGate(nn.Module):
    """Weights a skip by a map computed from the skip and the coarser decoder signal."""

    def __init__(self, skip_ch: int, gate_ch: int, hidden: int):
        super().__init__()
        self.skip = nn.Conv2d(skip_ch, hidden, 1)
        self.gate = nn.Conv2d(gate_ch, hidden, 1)
        self.out = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1), nn.Sigmoid())

    def forward(self, skip, gate):
        return skip * self.out(self.skip(skip) + self.gate(gate))


class CorrectionNet(nn.Module):
    ARCHITECTURE = ARCHITECTURE

    def __init__(self, image_channels: int = 1, mask_channels: int = 3, widths=(16, 32, 64),
                 bottleneck: int = 64, dropout: float = 0.1):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        self.divisor = 2 ** len(widths)
        self.input_size = PATCH          # the patch side it is trained at (set from the sidecar)
        self.max_zoom = 1.0              # how far it may zoom out around a click (inputs.zoom_side)
        self.image_encoder = Encoder(image_channels, widths)
        self.mask_encoder = Encoder(mask_channels, widths)
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _block(2 * widths[-1], bottleneck, dropout)
        self.ups = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.decoders = nn.ModuleList()
        below = bottleneck
        for w in reversed(widths):
            self.ups.append(nn.ConvTranspose2d(below, w, 2, stride=2))
            self.gates.append(AttentionGate(2 * w, w, max(w // 2, 4)))
            self.decoders.append(_block(3 * w, w))
            below = w
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, image, mask_and_clicks):
        a = self.image_encoder(image)
        b = self.mask_encoder(mask_and_clicks)
        skips = [torch.cat(pair, dim=1) for pair in zip(a, b)]
        x = self.bottleneck(self.pool(skips[-1]))
        for up, gate, decode, skip in zip(self.ups, self.gates, self.decoders, reversed(skips)):
            x = up(x)
            x = decode(torch.cat([gate(skip, x), x], dim=1))
        return self.head(x)


class CorrectionEnsemble(nn.Module):
    """Several CorrectionNets of one architecture (trained separately); the mean of their logits.

    Two nets that score alike alone disagree on different clicks: averaging them took the
    development click benchmark from NoC@90 5.39 (either alone) to 4.98 (model card)."""
    ARCHITECTURE = ARCHITECTURE

    def __init__(self, members: int, **arch_kwargs):
        super().__init__()
        self.members = nn.ModuleList([CorrectionNet(**arch_kwargs) for _ in range(int(members))])
        self.input_size = PATCH
        self.max_zoom = 1.0

    def forward(self, image, mask_and_clicks):
        return torch.stack([net(image, mask_and_clicks) for net in self.members]).mean(0)
