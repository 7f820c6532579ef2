"""predict_volume: output on the input grid, CAM for FPSNet, MC dropout mean and variance."""
import numpy as np
import pytest
import torch

from models.checkpoint import LoadedModel
from models.inference import predict_volume, predict_volume_steps
from models.networks import FPSNet, UNet2D
from models.preprocess import normalisation_spec

KWARGS = {"in_channels": 3, "channels": [8, 16, 32], "dropout": 0.3}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(cls, arch):
    torch.manual_seed(0)
    meta = {"architecture": arch, "arch_kwargs": KWARGS, "input_size": 32, "context": 1,
            "normalisation": normalisation_spec()}
    return LoadedModel(network=cls(**KWARGS).eval(), meta=meta)


def _volume():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1000, (5, 37, 23)).astype(np.int16)


def test_unet_prob_on_the_input_grid():
    out = predict_volume(_model(UNet2D, "unet2d"), _volume(), modality="MR", batch_size=2)
    assert out["prob"].shape == (5, 37, 23) and out["prob"].dtype == np.float32
    assert 0 <= out["prob"].min() and out["prob"].max() <= 1
    assert out["cam"] is None and out["variance"] is None


def test_fpsnet_gives_a_normalised_cam():
    out = predict_volume(_model(FPSNet, "fpsnet2d"), _volume(), modality="MR")
    assert out["cam"].shape == (5, 37, 23)
    assert out["cam"].min() >= 0 and out["cam"].max() <= 1 + 1e-6


def test_steps_report_progress_per_batch():
    steps = list(predict_volume_steps(_model(UNet2D, "unet2d"), _volume(), modality="MR",
                                      batch_size=2))
    assert steps == [(2, 5), (4, 5), (5, 5)]


def test_mc_dropout_gives_mean_and_variance_and_restores_eval():
    model = _model(UNet2D, "unet2d")
    plain = predict_volume(model, _volume(), modality="MR")
    mc = predict_volume(model, _volume(), modality="MR", mc_samples=4)
    assert mc["variance"].shape == (5, 37, 23) and float(mc["variance"].max()) > 0
    assert not np.allclose(mc["prob"], plain["prob"])            # dropout really was on
    again = predict_volume(model, _volume(), modality="MR")
    np.testing.assert_array_equal(again["prob"], plain["prob"])  # and is off again afterwards
    assert not model.network.training
