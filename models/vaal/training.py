"""Training VAAL / M-VAAL on 2D slices and scoring slices with the discriminator.

The VAE learns to reconstruct every slice (labelled and unlabelled alike) and, with M-VAAL, an
auxiliary map too; the discriminator learns to tell the latent means of labelled slices from those
of unlabelled ones, while the VAE is also pushed to make the two indistinguishable. What the
discriminator can still single out as "unlabelled" is what the labelled set does not yet cover:
those slices are worth annotating.

Losses (per sample, normalised by the pixel count so the weights mean the same at any slice size):
  VAE  = MSE(image) + aux_weight * MSE(aux) + beta * KL / pixels
         + adversary_weight * BCE(D(mu), "labelled") on labelled and unlabelled slices
  D    = BCE(D(mu_labelled), 1) + BCE(D(mu_unlabelled), 0)
(the original VAAL's minimax with BCE; M-VAAL's WGAN-GP variant is not needed at this scale.)
`vae_steps` VAE updates per discriminator update, as in the seeds.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Generator

import numpy as np
import torch
import torch.nn.functional as F

from models.device import resolve
from models.vaal.network import LatentDiscriminator, SliceVAE


@dataclass
class VAALConfig:
    size: int = 64
    latent: int = 32
    widths: tuple = (16, 32, 64, 128)     # CPU-sized; the seed's VAE is about 2x wider
    steps: int = 300                 # discriminator updates (each preceded by vae_steps VAE updates)
    vae_steps: int = 2
    batch_size: int = 16             # per side: labelled and unlabelled batches of this size
    lr_vae: float = 5e-4
    lr_discriminator: float = 5e-4
    beta: float = 1.0
    adversary_weight: float = 0.005
    aux_weight: float = 1.0
    # train the discriminator on latent samples rather than means: the posterior's noise keeps
    # it from memorising the few labelled slices, so it learns regions of the latent space
    discriminator_sampling: bool = True
    seed: int = 0
    device: str | None = None


@dataclass
class VAALModel:
    vae: SliceVAE
    discriminator: LatentDiscriminator
    config: VAALConfig
    history: list[dict] = field(default_factory=list)


def _as_nchw(slices: np.ndarray | None) -> torch.Tensor | None:
    if slices is None:
        return None
    t = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32))
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4:
        raise ValueError(f"slices must be (N, S, S) or (N, C, S, S), got {tuple(t.shape)}")
    return t


def _vae_loss(vae, x, aux, config: VAALConfig):
    recon, aux_recon, mu, logvar = vae(x)
    pixels = x[0].numel()
    loss = F.mse_loss(recon, x)
    if aux_recon is not None:
        loss = loss + config.aux_weight * F.mse_loss(aux_recon, aux)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1).mean()
    return loss + config.beta * kl / pixels, mu


def train_vaal_steps(labelled: np.ndarray, unlabelled: np.ndarray, config: VAALConfig | None = None,
                     labelled_aux: np.ndarray | None = None, unlabelled_aux: np.ndarray | None = None
                     ) -> Generator[tuple[int, int], None, VAALModel]:
    """Train on slices (N, S, S) in [0, 1]; yields (steps_done, steps_total); returns a VAALModel.

    With auxiliary maps (same shapes as the slices) the VAE gets the M-VAAL second decoder.
    """
    config = config or VAALConfig()
    xl, xu = _as_nchw(labelled), _as_nchw(unlabelled)
    al, au = _as_nchw(labelled_aux), _as_nchw(unlabelled_aux)
    if len(xl) == 0 or len(xu) == 0:
        raise ValueError("VAAL needs at least one labelled and one unlabelled slice")
    if (al is None) != (au is None):
        raise ValueError("give auxiliary maps for both labelled and unlabelled slices, or neither")
    if xl.shape[-1] != config.size or xu.shape[-1] != config.size:
        raise ValueError(f"slices must be {config.size} px (got {xl.shape[-1]} and {xu.shape[-1]})")
    device = resolve(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    vae = SliceVAE(xl.shape[1], config.size, config.latent, tuple(config.widths),
                   aux_channels=al.shape[1] if al is not None else 0).to(device)
    disc = LatentDiscriminator(config.latent).to(device)
    opt_vae = torch.optim.Adam(vae.parameters(), lr=config.lr_vae)
    opt_disc = torch.optim.Adam(disc.parameters(), lr=config.lr_discriminator)
    history = []

    def batch(x, aux):
        idx = torch.from_numpy(rng.integers(0, len(x), config.batch_size))
        return x[idx].to(device), (aux[idx].to(device) if aux is not None else None)

    for step in range(1, config.steps + 1):
        vae.train()
        disc.train()
        for _ in range(config.vae_steps):
            bl, bal = batch(xl, al)
            bu, bau = batch(xu, au)
            loss_l, mu_l = _vae_loss(vae, bl, bal, config)
            loss_u, mu_u = _vae_loss(vae, bu, bau, config)
            # the VAE is rewarded when the discriminator takes every slice for a labelled one
            fool = torch.cat([disc(mu_l), disc(mu_u)])
            adversarial = F.binary_cross_entropy_with_logits(fool, torch.ones_like(fool))
            loss = loss_l + loss_u + config.adversary_weight * adversarial
            opt_vae.zero_grad(set_to_none=True)
            loss.backward()
            opt_vae.step()
        bl, _ = batch(xl, al)
        bu, _ = batch(xu, au)
        with torch.no_grad():
            mu_l, logvar_l = vae.encode(bl)
            mu_u, logvar_u = vae.encode(bu)
            if config.discriminator_sampling:
                mu_l = mu_l + torch.randn_like(mu_l) * torch.exp(0.5 * logvar_l)
                mu_u = mu_u + torch.randn_like(mu_u) * torch.exp(0.5 * logvar_u)
        logits = torch.cat([disc(mu_l), disc(mu_u)])
        target = torch.cat([torch.ones(len(mu_l)), torch.zeros(len(mu_u))]).to(device)
        d_loss = F.binary_cross_entropy_with_logits(logits, target)
        opt_disc.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_disc.step()
        if step % 25 == 0 or step == config.steps:
            history.append({"step": step, "vae_loss": loss.item(), "disc_loss": d_loss.item()})
        yield step, config.steps
    vae.eval()
    disc.eval()
    return VAALModel(vae, disc, config, history)


def train_vaal(labelled, unlabelled, config: VAALConfig | None = None, labelled_aux=None,
               unlabelled_aux=None) -> VAALModel:
    steps = train_vaal_steps(labelled, unlabelled, config, labelled_aux, unlabelled_aux)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


@torch.no_grad()
def unlabelled_probability(model: VAALModel, slices: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Per slice: 1 - P(labelled) from the discriminator on the latent mean (higher = less like
    anything labelled so far = more worth annotating). (N, S, S) -> (N,) float64."""
    x = _as_nchw(slices)
    device = next(model.vae.parameters()).device
    model.vae.eval()
    model.discriminator.eval()
    out = []
    for start in range(0, len(x), batch_size):
        mu, _ = model.vae.encode(x[start:start + batch_size].to(device))
        out.append(torch.sigmoid(model.discriminator(mu)).double().cpu().numpy())
    p_labelled = np.concatenate(out) if out else np.zeros(0)
    return 1.0 - p_labelled


def config_dict(config: VAALConfig) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}
