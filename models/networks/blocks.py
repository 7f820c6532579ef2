"""Building blocks shared by the 2D networks: conv blocks and scSE attention."""
from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Module):
    """Two 3x3 conv + BatchNorm + ReLU, with optional spatial dropout between them.

    Dropout2d (whole feature maps) rather than per-pixel dropout: neighbouring activations are
    strongly correlated, so dropping single pixels barely perturbs the output and MC-dropout
    variance would come out near zero.
    """

    def __init__(self, in_ch: int, out_ch: int, dropout: float = 0.0):
        super().__init__()
        layers = [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
                  nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        layers += [nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
                   nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze-excitation: x*cSE(x) + x*sSE(x)."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.channel = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1),
                                     nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1),
                                     nn.Sigmoid())
        self.spatial = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.channel(x) + x * self.spatial(x)


class UNetTrunk(nn.Module):
    """Encoder-decoder with skip connections; returns the full-resolution feature map.

    channels: width per level, e.g. (16, 32, 64, 128, 128) = 4 poolings. dropout acts in the two
    deepest levels and every decoder stage (where MC-dropout variance is informative).
    attention: an scSE block after every encoder and decoder stage (FPSNet).
    Input height/width must be divisible by 2**(len(channels)-1).
    """

    def __init__(self, in_channels: int, channels=(16, 32, 64, 128, 128), dropout: float = 0.1,
                 attention: bool = False):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        n = len(channels)
        self.divisor = 2 ** (n - 1)
        self.encoders = nn.ModuleList()
        self.enc_att = nn.ModuleList()
        prev = in_channels
        for level, ch in enumerate(channels):
            self.encoders.append(ConvBlock(prev, ch, dropout if level >= n - 2 else 0.0))
            self.enc_att.append(SCSE(ch) if attention else nn.Identity())
            prev = ch
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.dec_att = nn.ModuleList()
        for level in range(n - 2, -1, -1):
            ch = channels[level]
            self.ups.append(nn.ConvTranspose2d(prev, ch, 2, stride=2))
            self.decoders.append(ConvBlock(2 * ch, ch, dropout))
            self.dec_att.append(SCSE(ch) if attention else nn.Identity())
            prev = ch
        self.out_channels = prev

    def forward(self, x):
        if x.shape[-1] % self.divisor or x.shape[-2] % self.divisor:
            raise ValueError(f"input size {tuple(x.shape[-2:])} must be divisible by {self.divisor}")
        skips = []
        for level, (enc, att) in enumerate(zip(self.encoders, self.enc_att)):
            if level:
                x = self.pool(x)
            x = att(enc(x))
            skips.append(x)
        x = skips.pop()
        for up, dec, att in zip(self.ups, self.decoders, self.dec_att):
            x = up(x)
            x = att(dec(torch.cat([x, skips.pop()], dim=1)))
        return x
