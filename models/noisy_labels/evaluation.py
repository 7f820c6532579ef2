"""Scoring a trained model on held-out slices: overlap with the consensus and GED to the readers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.noisy_labels.data import AnnotatedSlices
from models.noisy_labels.metrics import dice, generalised_energy_distance, iou
from models.noisy_labels.network import NoisyLabelNet
from models.noisy_labels.training import predict_foreground, sample_annotator_masks


@dataclass(frozen=True)
class SliceScore:
    slice_id: str
    n_annotators: int
    dice: float
    iou: float
    predicted_pixels: int
    consensus_pixels: int


def score_slices(net: NoisyLabelNet, slices: AnnotatedSlices) -> list[SliceScore]:
    """Predict every slice from its image alone and compare argmax p with the consensus."""
    pred = predict_foreground(net, slices.images) >= 0.5
    return [SliceScore(str(slices.slice_ids[i]), int(slices.n_annotators[i]),
                       dice(pred[i], slices.consensus[i]), iou(pred[i], slices.consensus[i]),
                       int(pred[i].sum()), int(slices.consensus[i].sum()))
            for i in range(len(slices))]


def mean_ged(net: NoisyLabelNet, slices: AnnotatedSlices, n_samples: int = 16,
             seed: int = 0) -> float:
    """Mean over slices of GED between model masks and the slice's real annotators.

    A network with an annotator model contributes `n_samples` sampled annotator masks; one without
    contributes its single prediction (a deterministic model's GED, for reference).
    """
    if net.annotators is not None:
        samples = sample_annotator_masks(net, slices.images, n_samples, seed)
    else:
        samples = (predict_foreground(net, slices.images) >= 0.5)[:, None].astype(np.uint8)
    return float(np.mean([generalised_energy_distance(samples[i], slices.annotator_masks(i))
                          for i in range(len(slices))]))
