"""The network architectures SegLoop knows, by the name stored in model sidecars."""
from __future__ import annotations

from models.networks.fpsnet import FPSNet, cam_from_class_map
from models.networks.unet import UNet2D

ARCHITECTURES = {
    UNet2D.ARCHITECTURE: UNet2D,
    FPSNet.ARCHITECTURE: FPSNet,
}


def build(architecture: str, **kwargs):
    """Instantiate a registered architecture (KeyError for an unknown name)."""
    return ARCHITECTURES[architecture](**kwargs)


__all__ = ["ARCHITECTURES", "FPSNet", "UNet2D", "build", "cam_from_class_map"]
