"""Learning a segmentation from disagreeing annotators (seed 002: stochastic confusion matrices).

torch + numpy only; never imports app.
"""
from models.noisy_labels.data import AnnotatedSlices, draw_annotator_masks, load_slices
from models.noisy_labels.evaluation import SliceScore, mean_ged, score_slices
from models.noisy_labels.metrics import dice, generalised_energy_distance, iou
from models.noisy_labels.network import AnnotatorBranch, NoisyLabelNet, SegmentationUNet
from models.noisy_labels.training import (METHODS, EpochLog, TrainConfig, TrainedModel,
                                          predict_foreground, run_training,
                                          sample_annotator_masks, train)

__all__ = [
    "AnnotatedSlices", "AnnotatorBranch", "EpochLog", "METHODS", "NoisyLabelNet",
    "SegmentationUNet", "SliceScore", "TrainConfig", "TrainedModel", "dice",
    "draw_annotator_masks", "generalised_energy_distance", "iou", "load_slices", "mean_ged",
    "predict_foreground", "run_training", "sample_annotator_masks", "score_slices", "train",
]
