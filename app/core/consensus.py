"""Consensus of several annotators' label masks: majority vote and STAPLE.

Masks are integer label arrays of one shape (2D slices (y, x) or volumes (z, y, x)); 0 is background,
1..K are structures. Both methods return a uint8 label array of the same shape, ready for the export.

Tie rule of the majority vote: a pixel takes the label with the most votes; among tied labels the
highest wins. For binary masks that means "foreground when at least half the annotators say so",
the rule that produced the LIDC consensus; for multi-class masks a structure beats background, and a
higher-numbered (usually nested, more specific) structure beats a lower one.

STAPLE (Warfield et al. 2004) estimates each annotator's sensitivity and specificity by EM together
with the probability of the hidden true label. Multi-class masks run it once per label (that label
against everything else); a pixel takes the label of highest probability if that probability reaches
the threshold, else background.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
import SimpleITK as sitk


class StapleResult(NamedTuple):
    mask: np.ndarray         # uint8, the input shape
    probability: np.ndarray  # float32: binary -> the input shape; K labels -> (K, *shape), label k at [k-1]
    sensitivity: np.ndarray  # (n_annotators,) binary, (n_annotators, K) multi-class
    specificity: np.ndarray  # same shape as sensitivity


def _as_label_stack(masks: Sequence[np.ndarray]) -> np.ndarray:
    if len(masks) == 0:
        raise ValueError("consensus needs at least one mask")
    shapes = {np.shape(m) for m in masks}
    if len(shapes) != 1:
        raise ValueError(f"all masks must have the same shape, got {sorted(shapes)}")
    stack = np.stack([np.asarray(m) for m in masks])
    if not (np.issubdtype(stack.dtype, np.integer) or stack.dtype == bool):
        raise ValueError(f"masks must hold integer labels, not {stack.dtype}")
    if stack.size and (stack.min() < 0 or stack.max() > 255):
        raise ValueError("labels must lie in 0..255")
    return stack.astype(np.uint8)


def majority_vote(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Pixel-wise majority of the annotators' labels (uint8); ties go to the highest tied label."""
    stack = _as_label_stack(masks)
    n_labels = int(stack.max()) + 1
    votes = np.stack([(stack == label).sum(axis=0) for label in range(n_labels)])
    # argmax returns the first maximum, so scanning labels from the top makes ties go upward
    winner_from_top = np.argmax(votes[::-1], axis=0)
    return (n_labels - 1 - winner_from_top).astype(np.uint8)


def _binary_staple(binary_stack: np.ndarray, max_iterations: int, confidence_weight: float):
    """STAPLE of 0/1 masks -> (probability of foreground, sensitivities, specificities)."""
    n = binary_stack.shape[0]
    marked = binary_stack.reshape(n, -1).any(axis=1)
    if not marked.any():
        # nobody marked anything: EM has nothing to estimate, the answer is certain background
        return (np.zeros(binary_stack.shape[1:], np.float32), np.full(n, np.nan), np.ones(n))
    images = [sitk.GetImageFromArray(m) for m in binary_stack]
    staple_filter = sitk.STAPLEImageFilter()
    staple_filter.SetForegroundValue(1.0)
    staple_filter.SetMaximumIterations(max_iterations)
    staple_filter.SetConfidenceWeight(confidence_weight)
    probability = sitk.GetArrayFromImage(staple_filter.Execute(images)).astype(np.float32)
    probability = np.nan_to_num(probability, nan=0.0).clip(0.0, 1.0)
    return (probability, np.asarray(staple_filter.GetSensitivity(), dtype=np.float64),
            np.asarray(staple_filter.GetSpecificity(), dtype=np.float64))


def staple(masks: Sequence[np.ndarray], threshold: float = 0.5, max_iterations: int = 100,
           confidence_weight: float = 1.0) -> StapleResult:
    """STAPLE consensus (SimpleITK) with each annotator's estimated sensitivity and specificity."""
    stack = _as_label_stack(masks)
    labels = [int(v) for v in np.unique(stack) if v != 0]
    if labels in ([], [1]):
        probability, sens, spec = _binary_staple((stack == 1).astype(np.uint8),
                                                 max_iterations, confidence_weight)
        return StapleResult((probability >= threshold).astype(np.uint8), probability, sens, spec)
    n_labels = max(labels)
    probability = np.zeros((n_labels,) + stack.shape[1:], np.float32)
    sens = np.full((stack.shape[0], n_labels), np.nan)
    spec = np.ones((stack.shape[0], n_labels))
    for label in labels:
        p, s, c = _binary_staple((stack == label).astype(np.uint8), max_iterations, confidence_weight)
        probability[label - 1], sens[:, label - 1], spec[:, label - 1] = p, s, c
    best = np.argmax(probability, axis=0)
    mask = np.where(np.take_along_axis(probability, best[None], axis=0)[0] >= threshold, best + 1, 0)
    return StapleResult(mask.astype(np.uint8), probability, sens, spec)


# one verb, a registry: the export and the CLI name a method and get a uint8 label array
CONSENSUS_METHODS: dict[str, Callable[[Sequence[np.ndarray]], np.ndarray]] = {
    "majority": majority_vote,
    "staple": lambda masks: staple(masks).mask,
}


def fuse(masks: Sequence[np.ndarray], method: str = "majority") -> np.ndarray:
    """Consensus of `masks` by a registered method ("majority" or "staple")."""
    try:
        return CONSENSUS_METHODS[method](masks)
    except KeyError:
        raise ValueError(f"unknown consensus method {method!r}; "
                         f"choose one of {', '.join(CONSENSUS_METHODS)}") from None
