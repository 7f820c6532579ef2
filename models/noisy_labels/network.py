"""The segmentation network and the stochastic confusion-matrix annotator branch (seed 002).

`SegmentationUNet` predicts the *true* segmentation. `AnnotatorBranch` turns the U-Net's final
features into per-pixel 2x2 confusion matrices CM[observed, true] whose columns sum to one, so that
CM . p(true) is the distribution of what one annotator draws. The branch is a conditional VAE: during
training its posterior sees the drawn annotator's mask (so the latent can say "this reader draws
wide" or "this reader skipped the slice"), at test time the latent is drawn from the N(0, I) prior,
which is what lets us sample plausible annotators for one image.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

N_CLASSES = 2


def _conv_block(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.InstanceNorm2d(out_ch, affine=True),
        nn.PReLU(out_ch),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        nn.InstanceNorm2d(out_ch, affine=True),
        nn.PReLU(out_ch),
    )


class SegmentationUNet(nn.Module):
    """U-Net with `depth` resolution levels (width, 2*width, 4*width ...), InstanceNorm + PReLU."""

    def __init__(self, in_channels: int = 1, width: int = 24, depth: int = 3):
        super().__init__()
        if depth < 2:
            raise ValueError("depth must be at least 2")
        chans = [width * 2 ** i for i in range(depth)]
        self.encoders = nn.ModuleList()
        prev = in_channels
        for ch in chans:
            self.encoders.append(_conv_block(prev, ch))
            prev = ch
        self.upconvs = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for ch in reversed(chans[:-1]):
            self.upconvs.append(nn.ConvTranspose2d(prev, ch, 2, stride=2))
            self.decoders.append(_conv_block(2 * ch, ch))
            prev = ch
        self.head = nn.Conv2d(width, N_CLASSES, 1)
        self.feature_channels = width
        self.downsampling = 2 ** (depth - 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) with H, W divisible by 2**(depth-1) -> (logits (B, 2, H, W), features)."""
        skips = []
        for i, encoder in enumerate(self.encoders):
            if i:
                x = F.max_pool2d(x, 2)
            x = encoder(x)
            skips.append(x)
        for upconv, decoder, skip in zip(self.upconvs, self.decoders, reversed(skips[:-1])):
            x = decoder(torch.cat([upconv(x), skip], dim=1))
        return self.head(x), x


class AnnotatorBranch(nn.Module):
    """Per-pixel confusion matrices from U-Net features and a small latent code."""

    def __init__(self, feature_channels: int = 24, latent_dim: int = 6, hidden: int = 32,
                 identity_bias: float = 4.0, cm_pool: int = 1,
                 commission_rate: float | None = None):
        super().__init__()
        self.latent_dim = latent_dim
        # commission_rate fixes the true-background column at [1 - r, r]: readers may leave out
        # part of a structure but seldom draw where there is none, so any disagreement is read as
        # an omission. That matches a consensus that counts a pixel when half the readers mark it.
        self.commission_rate = commission_rate
        # cm_pool > 1 computes the matrices on a coarser grid and interpolates them: a smooth
        # annotator model cannot redraw the shape itself, so the shape has to live in p(true)
        self.cm_pool = cm_pool
        # posterior q(z | features, annotator mask): a small strided encoder pooled to one vector
        self.posterior = nn.Sequential(
            nn.Conv2d(feature_channels + 1, hidden, 3, stride=2, padding=1), nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride=2, padding=1), nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride=2, padding=1), nn.PReLU(hidden),
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(hidden, 2 * latent_dim, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(feature_channels + latent_dim, hidden, 1), nn.PReLU(hidden),
            nn.Conv2d(hidden, N_CLASSES * N_CLASSES, 1),
        )
        # start near the identity: before anything is learnt, annotators are assumed to be right,
        # so the segmentation head gets the annotators' gradient undiluted in the first epochs
        with torch.no_grad():
            last = self.decoder[-1]
            last.weight.mul_(0.1)
            bias = torch.full((N_CLASSES, N_CLASSES), -identity_bias)
            bias.fill_diagonal_(identity_bias)
            last.bias.copy_(bias.flatten())

    def encode(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, F, H, W), mask (B, H, W) 0/1 -> (mu, logvar), each (B, latent_dim)."""
        stats = self.posterior(torch.cat([features, mask[:, None].float()], dim=1)).flatten(1)
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(-8.0, 8.0)

    def decode(self, features: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-> confusion matrices (B, 2_observed, 2_true, H, W), columns summing to one."""
        b, _, h, w = features.shape
        if self.cm_pool > 1:
            features = F.avg_pool2d(features, self.cm_pool)
        hc, wc = features.shape[-2:]
        tiled = z[:, :, None, None].expand(b, self.latent_dim, hc, wc)
        raw = F.softplus(self.decoder(torch.cat([features, tiled], dim=1))) + 1e-6
        cm = raw.view(b, N_CLASSES, N_CLASSES, hc, wc)
        cm = cm / cm.sum(dim=1, keepdim=True)
        if self.cm_pool > 1:
            # interpolating column-stochastic matrices linearly keeps them column-stochastic
            cm = F.interpolate(cm.reshape(b, N_CLASSES * N_CLASSES, hc, wc), size=(h, w),
                               mode="bilinear", align_corners=False)
            cm = cm.view(b, N_CLASSES, N_CLASSES, h, w)
        if self.commission_rate is not None:
            r = self.commission_rate
            background = cm.new_tensor([1.0 - r, r]).view(1, N_CLASSES, 1, 1, 1)
            cm = torch.cat([background.expand(b, N_CLASSES, 1, h, w), cm[:, :, 1:]], dim=2)
        return cm

    def sample_prior(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(batch, self.latent_dim, generator=generator)


class NoisyLabelNet(nn.Module):
    """The segmentation U-Net plus (optionally) the annotator branch; one object to save and load."""

    def __init__(self, width: int = 24, depth: int = 3, latent_dim: int = 6,
                 with_annotator_model: bool = True, identity_bias: float = 4.0, cm_pool: int = 1,
                 commission_rate: float | None = None):
        super().__init__()
        self.unet = SegmentationUNet(1, width, depth)
        self.annotators = (AnnotatorBranch(width, latent_dim, identity_bias=identity_bias,
                                           cm_pool=cm_pool, commission_rate=commission_rate)
                           if with_annotator_model else None)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, 1, H, W) -> (logits of the true segmentation, features)."""
        return self.unet(images)


def annotator_probabilities(cm: torch.Tensor, p_true: torch.Tensor) -> torch.Tensor:
    """CM (B, 2, 2, H, W) . p(true) (B, 2, H, W) -> p(annotator draws class) (B, 2, H, W)."""
    return torch.einsum("bijhw,bjhw->bihw", cm, p_true)
