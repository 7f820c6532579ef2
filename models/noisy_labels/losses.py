"""The objective of the confusion-matrix model (seed 002, with the choices explained).

An annotator's mask y is modelled as drawn from CM(x, z) . p(x): p is the true segmentation and the
per-pixel confusion matrix CM[observed, true] depends on the image features and a latent z that says
how this particular reader draws. Terms:
- CE(CM_q . p, y) with z ~ q(z | features, y): the annotator likelihood. Because the posterior sees y,
  systematic deviations of a reader (wider, tighter, a skipped slice) can be explained by z instead
  of being pressed into p;
- direct_weight * CE(p, y): pulls p to the annotators directly. It can be faded over the ramp as in
  the seed code, but per-pixel CMs can then redraw the shape themselves and p drifts (on LIDC the
  validation Dice fell from 0.74 to 0.60 once it was gone), so the default keeps it at 1;
- pseudo_weight * CE(CM_prior . p, argmax p): the seed's term; a typical annotator should agree with
  the network's own answer. It acts like entropy minimisation on p: where annotators split, p is
  pushed further to the side it already leans to, which for a rare foreground is background, and
  the prediction shrinks. Off by default (LIDC, seed 0: test Dice 0.753 with it, 0.773 without);
- trace_weight * mean trace(CM_q): Tanno et al.'s push for the CMs to absorb disagreement. With
  per-pixel CMs it mostly shrinks the column of the class a pixel does not have, which no data
  constrain; off by default (LIDC, seed 0: 0.753 with weight 0.05, 0.753 without);
- the CM's true-background column is fixed at [0.99, 0.01] by default (network.AnnotatorBranch):
  readers leave parts out more often than they invent them, so a pixel that some readers mark and
  others do not pulls p towards foreground. Learning that column too gave 0.747 instead of 0.753
  Dice to the LIDC consensus (3 seeds), with predictions a little smaller still;
- beta * KL(q(z | ., y) || N(0, I)) / pixels, beta ramped up. The CE terms are means over pixels,
  the KL is per image, so it is divided by the pixel count: beta = 1 is then the plain ELBO and
  beta = 20 (the seed's value) a strongly compressed latent. Without that scaling any beta >= 1
  switches the latent off and every sampled annotator is the same.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from models.noisy_labels.network import AnnotatorBranch, annotator_probabilities

_EPS = 1e-7


def _nll(probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean -log probability of the target class; probabilities (B, C, H, W), target (B, H, W)."""
    picked = probabilities.gather(1, target[:, None]).clamp_min(_EPS)
    return -torch.log(picked).mean()


def cm_objective(branch: AnnotatorBranch, logits: torch.Tensor, features: torch.Tensor,
                 mask: torch.Tensor, beta: float, direct_weight: float, pseudo_weight: float,
                 trace_weight: float) -> tuple[torch.Tensor, dict]:
    p_true = torch.softmax(logits, dim=1)
    mu, logvar = branch.encode(features, mask)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    cm = branch.decode(features, z)
    annotator = _nll(annotator_probabilities(cm, p_true), mask)
    kl = torch.mean(-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))
    loss = annotator + beta * kl / float(mask.shape[-1] * mask.shape[-2])
    parts = {"annotator": float(annotator.detach()), "kl": float(kl.detach())}
    if direct_weight > 0:
        direct = F.cross_entropy(logits, mask)
        loss = loss + direct_weight * direct
        parts["direct"] = float(direct.detach())
    if pseudo_weight > 0:
        cm_prior = branch.decode(features, torch.randn_like(mu))
        pseudo = _nll(annotator_probabilities(cm_prior, p_true), logits.argmax(dim=1).detach())
        loss = loss + pseudo_weight * pseudo
        parts["pseudo"] = float(pseudo.detach())
    if trace_weight > 0:
        trace = torch.diagonal(cm, dim1=1, dim2=2).sum(dim=-1).mean()
        loss = loss + trace_weight * trace
        parts["trace"] = float(trace.detach())
    return loss, parts
