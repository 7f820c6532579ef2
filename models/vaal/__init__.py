"""VAAL / M-VAAL (seed 000): a slice VAE and a latent discriminator for active learning.

torch + numpy only; never imports app.
"""
from models.vaal.network import LatentDiscriminator, SliceVAE
from models.vaal.training import (VAALConfig, VAALModel, config_dict, train_vaal, train_vaal_steps,
                                  unlabelled_probability)

__all__ = ["LatentDiscriminator", "SliceVAE", "VAALConfig", "VAALModel", "config_dict", "train_vaal",
           "train_vaal_steps", "unlabelled_probability"]
