"""The noisy-label model: shapes, the confusion matrices it learns, metrics, and the CLI end to end."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from models.noisy_labels import (AnnotatedSlices, NoisyLabelNet, TrainConfig, dice,
                                 draw_annotator_masks, generalised_energy_distance, iou,
                                 predict_foreground, run_training, sample_annotator_masks)
from models.noisy_labels.network import annotator_probabilities


def _blob_slices(n, size, seed, n_annotators=3, noisy=False):
    """Bright discs on noise; annotators equal the truth unless `noisy` (then dilated/eroded)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = rng.normal(0, 0.3, (n, size, size)).astype(np.float32)
    truth = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        r = rng.uniform(size * 0.12, size * 0.25)
        truth[i] = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        images[i] += 2.0 * truth[i]
    annotators = np.full((n, 4, size, size), 255, np.uint8)
    for k in range(n_annotators):
        if noisy:
            from scipy import ndimage
            op = ndimage.binary_dilation if k % 2 else ndimage.binary_erosion
            annotators[:, k] = [op(t, iterations=1 + k // 2) for t in truth]
        else:
            annotators[:, k] = truth
    return AnnotatedSlices(images, annotators, np.full(n, n_annotators), truth,
                           np.array([f"s{i}" for i in range(n)]))


def test_forward_shapes_and_column_normalised_confusion_matrices():
    torch.manual_seed(0)
    net = NoisyLabelNet(width=8, depth=3, latent_dim=6)
    x = torch.randn(3, 1, 32, 32)
    logits, feats = net(x)
    assert logits.shape == (3, 2, 32, 32) and feats.shape == (3, 8, 32, 32)
    mu, logvar = net.annotators.encode(feats, torch.zeros(3, 32, 32))
    assert mu.shape == logvar.shape == (3, 6)
    cm = net.annotators.decode(feats, mu)
    assert cm.shape == (3, 2, 2, 32, 32)
    torch.testing.assert_close(cm.sum(dim=1), torch.ones(3, 2, 32, 32))
    q = annotator_probabilities(cm, torch.softmax(logits, dim=1))
    torch.testing.assert_close(q.sum(dim=1), torch.ones(3, 32, 32))


def test_cm_model_learns_a_near_identity_matrix_when_annotators_agree():
    data = _blob_slices(16, 32, seed=0)
    # start uninformed (every CM entry 1/2) so a near-identity result has to be learnt
    config = TrainConfig(method="cm", epochs=10, batch_size=4, learning_rate=1e-2, width=8,
                         train_crop=None, cm_identity_bias=0.0, cm_commission_rate=None, seed=0)
    net = run_training(config, data, data).net
    truth = torch.from_numpy(data.consensus.astype(np.int64))
    with torch.no_grad():
        logits, feats = net(torch.from_numpy(data.images)[:, None])
        z = net.annotators.sample_prior(len(data), torch.Generator().manual_seed(1))
        cm = net.annotators.decode(feats, z)
    # a pixel's CM column for a class it does not have never meets the data, so the diagonal is
    # read where it acts: CM[t, t] at the pixel's true class t (an uninformed start gives 0.5)
    diagonal = torch.diagonal(cm, dim1=1, dim2=2).gather(-1, truth[..., None])[..., 0]
    assert diagonal.mean().item() > 0.9
    assert diagonal[truth == 1].mean().item() > 0.9
    pred = logits.argmax(dim=1).numpy()
    assert np.mean([dice(pred[i], data.consensus[i]) for i in range(len(data))]) > 0.8


def test_fixed_commission_rate_pins_the_true_background_column_only():
    torch.manual_seed(0)
    net = NoisyLabelNet(width=8, depth=3, latent_dim=6, commission_rate=0.02)
    logits, feats = net(torch.randn(2, 1, 24, 24))
    cm = net.annotators.decode(feats, net.annotators.sample_prior(2))
    # column 0 = true background: P(reader marks background) = 0.98, P(marks tumour) = 0.02
    torch.testing.assert_close(cm[:, 0, 0], torch.full((2, 24, 24), 0.98))
    torch.testing.assert_close(cm[:, 1, 0], torch.full((2, 24, 24), 0.02))
    torch.testing.assert_close(cm.sum(dim=1), torch.ones(2, 2, 24, 24))
    # the true-tumour column is still the network's (not pinned, not constant over pixels)
    assert cm[:, 1, 1].std().item() > 0


def test_annotator_samples_and_draws_have_the_right_shapes():
    data = _blob_slices(4, 32, seed=1, n_annotators=2, noisy=True)
    drawn = draw_annotator_masks(data, np.random.default_rng(0))
    assert drawn.shape == (4, 32, 32) and drawn.max() <= 1  # never a 255 padding channel
    net = NoisyLabelNet(width=8)
    samples = sample_annotator_masks(net, data.images, n_samples=5, seed=0)
    assert samples.shape == (4, 5, 32, 32) and samples.dtype == np.uint8
    # sizes the U-Net cannot halve twice are padded for the network and cropped back
    odd = data.images[:2, :30, :27]
    assert predict_foreground(net, odd).shape == (2, 30, 27)
    assert sample_annotator_masks(net, odd, n_samples=2).shape == (2, 2, 30, 27)


def test_overlap_metrics_and_generalised_energy_distance():
    a = np.zeros((8, 8), np.uint8)
    a[:4] = 1
    b = np.zeros((8, 8), np.uint8)
    b[2:6] = 1
    assert dice(a, b) == pytest.approx(0.5)
    assert iou(a, b) == pytest.approx(1 / 3)
    assert dice(a * 0, b * 0) == 1.0
    same = np.stack([a, b])
    assert generalised_energy_distance(same, same) == pytest.approx(0.0)
    # predicting one annotator only: 2 E d(S,Y) - E d(Y,Y') = 2 (0 + 2/3)/2 - (0 + 2/3 + 2/3 + 0)/4
    assert generalised_energy_distance(a[None], same) == pytest.approx(1 / 3)
    # something unlike either annotator is far
    c = np.zeros((8, 8), np.uint8)
    c[6:, :] = 1
    assert generalised_energy_distance(c[None], same) == pytest.approx(2 * 1.0 - 1 / 3)


def _write_npz(path, slices):
    np.savez(path, images=slices.images, annotators=slices.annotators,
             n_annotators=slices.n_annotators, consensus=slices.consensus,
             slice_ids=slices.slice_ids)


def test_cli_trains_one_epoch_and_writes_a_row_per_test_slice(tmp_path, capsys):
    from main import main

    for i, split in enumerate(("train", "val", "test")):
        _write_npz(tmp_path / f"{split}.npz", _blob_slices(6, 64, seed=10 + i, noisy=True))
    out = tmp_path / "scores.csv"
    code = main(["noisy-labels", "--data", str(tmp_path), "--method", "cm", "--out", str(out),
                 "--epochs", "1", "--seed", "3"])
    assert code == 0
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert {"slice_id", "dice", "iou"} <= set(rows[0])
    assert [r["slice_id"] for r in rows] == [f"s{i}" for i in range(6)]
    assert all(0.0 <= float(r["dice"]) <= 1.0 for r in rows)
    assert "dice" in capsys.readouterr().out


def test_cli_missing_npz_is_a_user_error(tmp_path, capsys):
    from main import main

    code = main(["noisy-labels", "--data", str(tmp_path), "--method", "plain",
                 "--out", str(tmp_path / "x.csv"), "--epochs", "1"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "train.npz" in err[0]
