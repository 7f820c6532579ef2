"""VAAL networks and training (models/vaal): shapes, input checks, and that the discriminator
learns which slices are unlike the labelled ones."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.vaal import (LatentDiscriminator, SliceVAE, VAALConfig, train_vaal, train_vaal_steps,
                         unlabelled_probability)

TINY = VAALConfig(size=32, widths=(8, 16, 32), latent=8, steps=60, batch_size=12)


def blobs(rng, n, size=32):
    """Smooth bright blobs on a dark background (the 'familiar' kind of slice)."""
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size), np.float32)
    for i in range(n):
        cy, cx, r = rng.integers(10, 22), rng.integers(10, 22), rng.integers(4, 9)
        out[i] = 0.2 + 0.6 * (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r)
    return np.clip(out + rng.normal(0, 0.03, out.shape), 0, 1).astype(np.float32)


def test_shapes_with_and_without_the_auxiliary_decoder():
    x = torch.rand(3, 1, 64, 64)
    recon, aux, mu, logvar = SliceVAE(size=64, latent=16).eval()(x)
    assert recon.shape == x.shape and aux is None and mu.shape == logvar.shape == (3, 16)
    with torch.no_grad():
        recon, aux, mu, _ = SliceVAE(size=64, latent=16, aux_channels=1).eval()(x)
    assert aux.shape == x.shape and 0 <= float(aux.min()) and float(aux.max()) <= 1
    assert LatentDiscriminator(16)(mu).shape == (3,)
    with pytest.raises(ValueError):
        SliceVAE(size=60)


def test_discriminator_singles_out_unfamiliar_slices():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    labelled = blobs(rng, 24)
    familiar = blobs(rng, 12)
    stripes = np.tile((np.arange(32) % 8 < 4).astype(np.float32), (12, 32, 1))
    stripes = np.clip(stripes + rng.normal(0, 0.1, stripes.shape), 0, 1).astype(np.float32)
    model = train_vaal(labelled, np.concatenate([familiar, stripes]), TINY)
    p_familiar = unlabelled_probability(model, familiar)
    p_stripes = unlabelled_probability(model, stripes)
    assert p_familiar.shape == (12,) and np.all((p_familiar >= 0) & (p_familiar <= 1))
    assert p_stripes.mean() > p_familiar.mean() + 0.2


def test_training_reports_progress_and_checks_its_inputs():
    rng = np.random.default_rng(1)
    config = VAALConfig(**{**TINY.__dict__, "steps": 3})
    steps = train_vaal_steps(blobs(rng, 4), blobs(rng, 4), config,
                             blobs(rng, 4), blobs(rng, 4))   # with auxiliary maps (M-VAAL)
    seen = []
    while True:
        try:
            seen.append(next(steps))
        except StopIteration as stop:
            model = stop.value
            break
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert model.vae.aux_decoder is not None and not model.vae.training
    with pytest.raises(ValueError, match="labelled"):
        train_vaal(blobs(rng, 0), blobs(rng, 4), config)
    with pytest.raises(ValueError, match="auxiliary"):
        train_vaal(blobs(rng, 4), blobs(rng, 4), config, labelled_aux=blobs(rng, 4))
    with pytest.raises(ValueError, match="32 px"):
        train_vaal(blobs(rng, 4, size=64), blobs(rng, 4, size=64), config)
