"""VAAL networks: a slice VAE (optionally with a second decoder for an auxiliary map) and a
discriminator on the latent mean.

Input slices are small (default 64x64) single-channel images in [0, 1]; every conv is 4x4 with
stride 2, so a 64 px slice becomes a 4x4 map after four of them. Decoders end in a sigmoid because
both the image and the auxiliary map (a second modality scaled to [0, 1], or a probability map)
live in [0, 1].
"""
from __future__ import annotations

import torch
from torch import nn


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Decoder(nn.Module):
    def __init__(self, latent: int, widths: tuple[int, ...], bottom: int, out_channels: int):
        super().__init__()
        self.widths = widths
        self.bottom = bottom
        self.fc = nn.Linear(latent, widths[-1] * bottom * bottom)
        layers = [_up(widths[i], widths[i - 1]) for i in range(len(widths) - 1, 0, -1)]
        layers.append(nn.ConvTranspose2d(widths[0], out_channels, 4, stride=2, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        x = self.fc(z).view(z.shape[0], self.widths[-1], self.bottom, self.bottom)
        return torch.sigmoid(self.body(torch.relu(x)))


class SliceVAE(nn.Module):
    """forward(x (B, C, S, S)) -> (recon, aux_recon or None, mu, logvar).

    aux_channels > 0 adds the M-VAAL second decoder: it reconstructs an auxiliary map from the same
    latent, so the latent must also encode what that map shows (e.g. where the current model
    sees tumour), not only the image's appearance.
    """

    def __init__(self, in_channels: int = 1, size: int = 64, latent: int = 32,
                 widths: tuple[int, ...] = (32, 64, 128, 256), aux_channels: int = 0):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        self.bottom = size // 2 ** len(widths)
        if self.bottom < 1 or size % 2 ** len(widths):
            raise ValueError(f"slice size {size} must be divisible by {2 ** len(widths)}")
        self.size = size
        self.latent = latent
        chans = (in_channels,) + widths
        self.encoder = nn.Sequential(*[_down(chans[i], chans[i + 1]) for i in range(len(widths))])
        flat = widths[-1] * self.bottom * self.bottom
        self.fc_mu = nn.Linear(flat, latent)
        self.fc_logvar = nn.Linear(flat, latent)
        self.decoder = _Decoder(latent, widths, self.bottom, in_channels)
        self.aux_decoder = _Decoder(latent, widths, self.bottom, aux_channels) if aux_channels else None

    def encode(self, x):
        h = self.encoder(x).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h).clamp(-10.0, 10.0)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        aux = self.aux_decoder(z) if self.aux_decoder is not None else None
        return self.decoder(z), aux, mu, logvar


class LatentDiscriminator(nn.Module):
    """MLP on the latent mean -> logit of "this slice comes from a labelled case"."""

    def __init__(self, latent: int = 32, hidden: int = 256):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, 1))

    def forward(self, mu):
        return self.body(mu)[:, 0]
