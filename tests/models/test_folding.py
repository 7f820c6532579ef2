"""BatchNorm folded into the convolutions for inference: same outputs, fresh after weights change."""
import torch

from models import networks
from models.networks.folding import fold_batchnorm, inference_network


def _trained_like(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    net = networks.build(arch, in_channels=3, channels=[8, 16, 16, 16, 16], dropout=0.1)
    net.train()
    with torch.no_grad():                      # give BatchNorm non-trivial running statistics
        for _ in range(3):
            net(torch.rand(4, 3, 32, 32) * 2 + 0.5)
    return net.eval()


def test_folded_network_gives_the_same_outputs_without_batchnorm():
    for arch in ("unet2d", "fpsnet2d"):
        net = _trained_like(arch)
        folded = fold_batchnorm(net)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())   # original untouched
        x = torch.rand(2, 3, 32, 32)
        with torch.no_grad():
            a, b = net(x), folded(x)
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-4)


def test_cached_copy_is_rebuilt_when_the_weights_change_in_place():
    net = _trained_like("unet2d")
    first = inference_network(net)
    assert inference_network(net) is first
    with torch.no_grad():
        next(net.parameters()).add_(0.5)       # as an optimiser step does
    second = inference_network(net)
    assert second is not first
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x)["seg"], second(x)["seg"], atol=1e-4, rtol=1e-4)
