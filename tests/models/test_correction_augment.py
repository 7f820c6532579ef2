"""Training augmentation of the correction net: flips keep grey levels, the jitter changes them
per patch but keeps their order and the [0, 1] range the network sees at inference."""
import numpy as np
import torch

from models.correction.training import _augment, intensity_jitter


def _batch():
    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.uniform(0, 1, (6, 1, 32, 32)).astype(np.float32))
    img[:, :, :, :8] = 0.0                        # padding outside the slice, as crop() leaves it
    img[1] = img[0]                               # two identical patches
    rest = torch.zeros(6, 3, 32, 32)
    return img, rest, (img > 0.5).float()


def test_flips_alone_keep_every_grey_level():
    img, rest, target = _batch()
    out, _, out_target = _augment(img, rest, target, np.random.default_rng(1), intensity=False)
    for a, b in zip(img, out):
        assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)
    assert torch.equal((out > 0.5).float(), out_target)      # image and target moved together


def test_the_jitter_changes_each_patch_its_own_way_within_range_and_order():
    img, _, _ = _batch()
    out = intensity_jitter(img, np.random.default_rng(2))
    assert out.shape == img.shape and out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.allclose(out[0], out[1], atol=1e-3)     # same patch, different draw
    assert (out - img).abs().mean() > 0.01                  # it does change grey levels
    for a, b in zip(img, out):
        inside = a[:, :, 8:].flatten()
        ranks_a = inside.argsort().argsort().float()
        ranks_b = b[:, :, 8:].flatten().argsort().argsort().float()
        assert torch.corrcoef(torch.stack([ranks_a, ranks_b]))[0, 1] > 0.9
        assert b[:, :, :8].abs().max() < 0.2                # padding stays dark (noise only)
