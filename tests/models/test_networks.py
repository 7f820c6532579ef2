"""Network forward shapes, and that a few training steps on a tiny synthetic set reduce the loss."""
import numpy as np
import pytest
import torch

from models.networks import FPSNet, UNet2D, cam_from_class_map
from models.training.trainer import seg_loss

SMALL = (8, 16, 32)


@pytest.fixture(autouse=True)
def one_thread():
    # 2 shared cores: one torch thread avoids OpenMP barrier stalls when the CPU is oversubscribed
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_unet_forward_shape():
    net = UNet2D(in_channels=3, channels=SMALL).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 64, 48))
    assert set(out) == {"seg"}
    assert out["seg"].shape == (2, 1, 64, 48)


def test_fpsnet_forward_shapes_and_cam():
    net = FPSNet(in_channels=3, channels=SMALL).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 32, 32))
    assert out["seg"].shape == (2, 1, 32, 32)
    assert out["class_map"].shape == (2, 2, 32, 32)
    assert out["logits"].shape == (2, 2)
    # the tag logits are exactly the spatial average of the class map (what makes it a CAM)
    torch.testing.assert_close(out["logits"], out["class_map"].mean(dim=(2, 3)))
    cam = cam_from_class_map(out["class_map"])
    assert cam.shape == (2, 32, 32) and float(cam.min()) >= 0


def test_input_not_divisible_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        UNet2D(in_channels=1, channels=SMALL)(torch.rand(1, 1, 30, 32))


def _synthetic(n=8, size=32, seed=0):
    """Bright disks on a noisy background; label = disk, tag = disk present."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, labels = [], []
    for i in range(n):
        if i % 2:
            cy, cx, r = rng.integers(10, 22, 2).tolist() + [int(rng.integers(4, 8))]
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        else:
            mask = np.zeros((size, size), bool)
        images.append(0.3 + 0.5 * mask + rng.normal(0, 0.05, mask.shape))
        labels.append(mask)
    x = torch.tensor(np.stack(images)[:, None], dtype=torch.float32)
    y = torch.tensor(np.stack(labels), dtype=torch.float32)
    return x, y, (y.flatten(1).amax(1) > 0).long()


def test_unet_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    x, y, _ = _synthetic()
    net = UNet2D(in_channels=1, channels=SMALL, dropout=0.0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = seg_loss(net(x)["seg"][:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0]


def test_fpsnet_tag_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    x, _, tags = _synthetic()
    net = FPSNet(in_channels=1, channels=SMALL, dropout=0.0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(net(x)["logits"], tags)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
