"""Model files: round trip, and refusal of files that are not ours (without running their code)."""
import json
import os

import numpy as np
import pytest
import torch

from models import zoo
from models.checkpoint import load_checkpoint, save_checkpoint, sidecar_path
from models.errors import ModelFileError
from models.networks import FPSNet, UNet2D

KWARGS = {"in_channels": 3, "channels": [8, 16, 32], "dropout": 0.1}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _meta(arch="unet2d"):
    return {"architecture": arch, "arch_kwargs": KWARGS, "input_size": 32, "context": 1,
            "normalisation": {"ct_window": [-200, 300], "mr_percentiles": [0.5, 99.5]}}


def _trained_like(net):
    # non-trivial BatchNorm statistics, so a round trip that dropped buffers would show
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(4, 3, 32, 32) * 3 + 1)
    return net.eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    net = _trained_like(FPSNet(**KWARGS))
    path = save_checkpoint(net, tmp_path / "m.pt", _meta("fpsnet2d"))
    loaded = load_checkpoint(path, device="cpu")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a, b = net(x), loaded.network(x)
    for key in ("seg", "class_map", "logits"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    side = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    assert side["format"] == "segloop-model" and side["architecture"] == "fpsnet2d"
    assert len(side["weights_sha256"]) == 64 and "git_commit" in side and "created" in side
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_half_precision_round_trip_is_close(tmp_path):
    net = _trained_like(UNet2D(**KWARGS))
    path = save_checkpoint(net, tmp_path / "m.pt", _meta(), half=True)
    loaded = load_checkpoint(path, device="cpu")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x)["seg"], loaded.network(x)["seg"], atol=2e-2, rtol=2e-2)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": _Payload(marker)}, path)
    # give it a perfectly valid sidecar, so only the weights_only load stands in the way
    save_checkpoint(UNet2D(**KWARGS), tmp_path / "decoy.pt", _meta())
    side = json.loads((tmp_path / "decoy.json").read_text(encoding="utf-8"))
    side.pop("weights_sha256")
    (tmp_path / "evil.json").write_text(json.dumps(side), encoding="utf-8")
    with pytest.raises(ModelFileError, match="contains code"):
        load_checkpoint(path, device="cpu")
    assert not marker.exists()


def test_file_without_sidecar_is_refused(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save(UNet2D(**KWARGS).state_dict(), path)
    with pytest.raises(ModelFileError, match="no SegLoop sidecar"):
        load_checkpoint(path, device="cpu")


def test_sidecar_for_another_architecture_is_refused(tmp_path):
    # U-Net weights whose sidecar claims FPSNet: keys do not fit
    path = save_checkpoint(UNet2D(**KWARGS), tmp_path / "m.pt", _meta("fpsnet2d"))
    with pytest.raises(ModelFileError, match="does not fit the 'fpsnet2d'"):
        load_checkpoint(path, device="cpu")
    # and a correct file is refused where another architecture is expected
    path = save_checkpoint(UNet2D(**KWARGS), tmp_path / "u.pt", _meta())
    with pytest.raises(ModelFileError, match="not the expected 'fpsnet2d'"):
        load_checkpoint(path, device="cpu", expected_architecture="fpsnet2d")


def test_unknown_architecture_and_foreign_sidecar_are_refused(tmp_path):
    path = save_checkpoint(UNet2D(**KWARGS), tmp_path / "m.pt", {**_meta(), "architecture": "resnet"})
    with pytest.raises(ModelFileError, match="does not know"):
        load_checkpoint(path, device="cpu")
    (tmp_path / "m.json").write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(ModelFileError, match="not a SegLoop model sidecar"):
        load_checkpoint(path, device="cpu")


def test_replaced_weights_are_detected(tmp_path):
    path = save_checkpoint(UNet2D(**KWARGS), tmp_path / "m.pt", _meta())
    torch.save(UNet2D(**KWARGS).state_dict(), path)     # other weights, same architecture
    with pytest.raises(ModelFileError, match="checksum"):
        load_checkpoint(path, device="cpu")


def test_zoo_unknown_name_is_a_clear_error():
    with pytest.raises(ModelFileError, match="unknown model"):
        zoo.load("no-such-model")
