"""Click correction network (seed 003, improved): a 2D patch network that rewrites the current mask
around a click. torch + numpy only; never imports app."""
from models.correction.network import ARCHITECTURE, CorrectionNet
from models.correction.inputs import PATCH, click_maps, crop, normalise_slice, patch_box
from models.correction.loss import click_weight, click_weighted_dice
from models.correction.checkpoint import load_correction, save_correction

__all__ = ["ARCHITECTURE", "CorrectionNet", "PATCH", "click_maps", "click_weight",
           "click_weighted_dice", "crop", "load_correction", "normalise_slice", "patch_box",
           "save_correction"]
