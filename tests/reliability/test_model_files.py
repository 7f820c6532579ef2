"""Model files that are tampered with, foreign, missing or mismatched give one clear sentence, and
the app keeps annotating without any model and without any network: geodesic-crf clicks on a
bundled case still work when models/weights is empty."""
from __future__ import annotations

import errno
import json
import pickle
import shutil
import socket

import numpy as np
import pytest
import torch

from app.core import segmentation
from app.core.errors import ModelFileError, SegLoopError
from app.core.session import AnnotationSession
from app.core.volume_io import read_label, read_volume
from models import zoo
from tests.reliability.corpus import DATA

SHIPPED = "fpsnet-cam"


@pytest.fixture(autouse=True)
def fresh_model_cache(monkeypatch):
    monkeypatch.setattr(segmentation, "_cache", {})


@pytest.fixture
def model_copy(tmp_path):
    """A shipped model and its sidecar copied where the test may damage them."""
    source = zoo.path_of(SHIPPED)
    if not source.exists():
        pytest.skip(f"{source.name} is not in models/weights (train it first)")
    weights = tmp_path / source.name
    shutil.copy(source, weights)
    shutil.copy(source.with_suffix(".json"), weights.with_suffix(".json"))
    return weights


def _load(path):
    with pytest.raises(ModelFileError) as caught:
        segmentation.load_model(str(path))
    message = str(caught.value)
    assert isinstance(caught.value, SegLoopError) and len(message.splitlines()) == 1
    return message


def test_a_sound_copy_loads(model_copy):
    model = segmentation.load_model(str(model_copy))
    assert model.network.training is False


def test_one_flipped_byte_is_refused(model_copy):
    raw = bytearray(model_copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    model_copy.write_bytes(bytes(raw))
    assert "checksum differs" in _load(model_copy)


def test_tampered_weights_with_the_checksum_removed_are_still_checked(model_copy):
    raw = bytearray(model_copy.read_bytes())
    model_copy.write_bytes(bytes(raw[: len(raw) // 2]))          # a truncated copy
    side = json.loads(model_copy.with_suffix(".json").read_text(encoding="utf-8"))
    side.pop("weights_sha256")
    model_copy.with_suffix(".json").write_text(json.dumps(side), encoding="utf-8")
    assert "not a readable PyTorch weights file" in _load(model_copy)


class Payload:
    ran = False

    def __reduce__(self):
        return (exec, ("import tests.reliability.test_model_files as m; m.Payload.ran = True",))


def test_a_foreign_pickle_with_a_forged_sidecar_is_refused_and_not_run(model_copy):
    torch.save({"conv.weight": torch.zeros(1), "evil": Payload()}, model_copy)
    side = json.loads(model_copy.with_suffix(".json").read_text(encoding="utf-8"))
    side.pop("weights_sha256")
    model_copy.with_suffix(".json").write_text(json.dumps(side), encoding="utf-8")
    assert "refuses to load" in _load(model_copy)
    assert Payload.ran is False


def test_a_whole_pickled_module_is_refused(model_copy):
    network = segmentation.load_model(SHIPPED).network if zoo.path_of(SHIPPED).exists() else None
    torch.save(network, model_copy)                              # the module object, not a state_dict
    side = json.loads(model_copy.with_suffix(".json").read_text(encoding="utf-8"))
    side.pop("weights_sha256")
    model_copy.with_suffix(".json").write_text(json.dumps(side), encoding="utf-8")
    assert "refuses to load" in _load(model_copy)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_plain_pickle_file_is_refused(model_copy):
    model_copy.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    side = json.loads(model_copy.with_suffix(".json").read_text(encoding="utf-8"))
    side.pop("weights_sha256")
    model_copy.with_suffix(".json").write_text(json.dumps(side), encoding="utf-8")
    message = _load(model_copy)
    assert "refuses to load" in message or "not a readable PyTorch weights file" in message


def test_a_sidecar_describing_another_network_size_is_refused(model_copy):
    side = json.loads(model_copy.with_suffix(".json").read_text(encoding="utf-8"))
    kwargs = side["arch_kwargs"]
    key = next(k for k, v in kwargs.items() if isinstance(v, list) and v and isinstance(v[0], int))
    kwargs[key] = [2 * c for c in kwargs[key]]
    model_copy.with_suffix(".json").write_text(json.dumps(side), encoding="utf-8")
    assert "does not fit" in _load(model_copy)


def test_a_missing_weights_file_and_a_missing_sidecar(model_copy, tmp_path, monkeypatch):
    model_copy.with_suffix(".json").unlink()
    assert "no SegLoop sidecar" in _load(model_copy)
    assert "does not exist" in _load(tmp_path / "gone.pt")
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path / "empty_weights")
    assert "are not in" in _load(SHIPPED)
    assert zoo.available() == []


@pytest.fixture
def offline_without_weights(tmp_path, monkeypatch):
    """models/weights looks empty and any attempt to reach the network fails at once."""
    (tmp_path / "no_weights").mkdir()
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path / "no_weights")
    attempts = []

    def no_network(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(errno.ENETUNREACH, "network is unreachable (test)")
        return real_connect(self, address, *args)

    def no_lookup(*args, **kwargs):
        attempts.append(args[:1])
        raise socket.gaierror(socket.EAI_NONAME, "no network (test)")

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    return attempts


def test_clicks_work_offline_with_no_weights(offline_without_weights, tmp_path):
    volume = read_volume(DATA / "sts002_ct.nii.gz")
    reference = read_label(DATA / "sts002_ct_label.nii.gz", volume).array
    z = int(np.argmax(reference.reshape(reference.shape[0], -1).sum(axis=1)))
    ys, xs = np.nonzero(reference[z])
    session = AnnotationSession(volume, engine="geodesic-crf", log_path=tmp_path / "log.jsonl",
                                autosave_dir=tmp_path / "autosave")
    session.click(0, z, (int(np.median(ys)), int(np.median(xs))), True)
    assert session.label[z].sum() > 0 and session.step == 1
    session.save(tmp_path / "label.nii.gz")
    assert (read_label(tmp_path / "label.nii.gz", volume).array == session.label).all()
    session.close()
    with pytest.raises(ModelFileError, match="are not in"):
        segmentation.load_model("unet")
    assert offline_without_weights == []             # nothing tried to reach the network


def test_gui_without_weights_explains_and_keeps_annotating(offline_without_weights, window, qtbot):
    qtbot.waitUntil(lambda: window.annotation.model_combo.isEnabled()
                    or window.annotation.model_combo.itemData(0) == "", timeout=20000)
    qtbot.wait(200)
    ui = window.annotation
    assert window.open_file(DATA / "sts002_ct.nii.gz"), window.last_error
    errors = []
    ui.controller.error.connect(errors.append)
    ui.jobs.segment(ui.model_combo.currentData() or "")
    assert errors and ("No segmentation model" in errors[-1] or "are not in" in errors[-1]), errors
    reference = window.case.label.array if window.case.label is not None else None
    assert reference is not None
    z = int(np.argmax(reference.reshape(reference.shape[0], -1).sum(axis=1)))
    ys, xs = np.nonzero(reference[z])
    ui.controller.on_click(z, int(np.median(ys)), int(np.median(xs)), 1)
    qtbot.waitUntil(lambda: ui.controller.session is not None and ui.controller.session.step >= 1,
                    timeout=30000)
    assert window.isVisible() and offline_without_weights == []
