"""Backbones and FPN: shapes and strides, and equality with torchvision's modules when they
carry the same weights (live, marked `reference`)."""

import numpy as np
import pytest

from mrcnn_np.autodiff import Tensor, no_grad
from mrcnn_np.detection.backbone import RESNET50, BackboneConfig, ResNet
from mrcnn_np.detection.fpn import FPN, BackboneWithFPN

TINY_GN = BackboneConfig(block="basic", layers=(1, 1, 1, 1), width=8, stem_channels=8,
                         stem_kernel=3, norm="gn", gn_groups=4)


@pytest.mark.parametrize("hw", [(64, 64), (64, 96), (50, 70)])
def test_strides_and_channels(hw):
    rng = np.random.default_rng(0)
    model = BackboneWithFPN(ResNet(TINY_GN, rng=rng), out_channels=16, rng=rng)
    x = rng.normal(size=(2, 3) + hw).astype(np.float32)
    with no_grad():
        feats = model(Tensor(x))
    assert len(feats) == 5
    h, w = hw
    for level, f in zip(range(2, 7), feats):
        assert f.shape[:2] == (2, 16)
        # each stride-2 step rounds up: ceil(h / 2**level)
        assert f.shape[2:] == (-(-h // 2**level), -(-w // 2**level)), (level, f.shape)
        assert np.isfinite(f.data).all()


def test_p6_is_subsampled_p5():
    rng = np.random.default_rng(1)
    fpn = FPN([4, 8], out_channels=6, rng=rng)
    c = [Tensor(rng.normal(size=(1, 4, 8, 10)).astype(np.float32)),
         Tensor(rng.normal(size=(1, 8, 4, 5)).astype(np.float32))]
    p = fpn(c)
    np.testing.assert_array_equal(p[2].data, p[1].data[:, :, ::2, ::2])


def test_backward_reaches_every_parameter():
    rng = np.random.default_rng(2)
    model = BackboneWithFPN(ResNet(TINY_GN, rng=rng), out_channels=8, rng=rng)
    feats = model(Tensor(rng.normal(size=(1, 3, 32, 32)).astype(np.float32)))
    loss = sum((f * f).mean() for f in feats)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert np.isfinite(p.grad).all(), name


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="norm"):
        ResNet(BackboneConfig(norm="batch"))
    with pytest.raises(ValueError, match="block"):
        ResNet(BackboneConfig(block="wide"))


def _randomise_frozen_bn(tv_model, torch, seed=0):
    from torchvision.ops.misc import FrozenBatchNorm2d
    g = torch.Generator().manual_seed(seed)
    for m in tv_model.modules():
        if isinstance(m, FrozenBatchNorm2d):
            n = m.weight.numel()
            m.weight.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.copy_(0.1 * torch.randn(n, generator=g))
            m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))


def _load_from_torch(ours, tv_model):
    state = {k: v.detach().numpy() for k, v in tv_model.state_dict().items()}
    missing, unexpected = ours.load_state_dict(state, strict=True)
    assert not missing and not unexpected


@pytest.mark.reference
def test_resnet50_fpn_equals_torchvision():
    import torch
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.manual_seed(0)
    tv = resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d,
                             trainable_layers=5).eval()
    with torch.no_grad():
        _randomise_frozen_bn(tv, torch)
    ours = BackboneWithFPN(ResNet(RESNET50))
    _load_from_torch(ours, tv)
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 96)).astype(np.float32)
    with torch.no_grad():
        want = list(tv(torch.from_numpy(x)).values())
    with no_grad():
        got = ours(Tensor(x))
    for name, a, b in zip(["P2", "P3", "P4", "P5", "P6"], got, want):
        b = b.numpy()
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a.data, b, rtol=1e-3, atol=1e-3 * np.abs(b).max(), err_msg=name)


@pytest.mark.reference
def test_resnext_groups_equal_torchvision():
    import torch
    from torchvision.models.resnet import Bottleneck, ResNet as TvResNet
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.manual_seed(1)
    tv = TvResNet(Bottleneck, [1, 2, 1, 1], groups=32, width_per_group=8,
                  norm_layer=FrozenBatchNorm2d).eval()
    with torch.no_grad():
        _randomise_frozen_bn(tv, torch, seed=1)
    del tv.fc                                # the classifier is not part of the body
    ours = ResNet(BackboneConfig(layers=(1, 2, 1, 1), groups=32, width_per_group=8))
    _load_from_torch(ours, tv)
    x = np.random.default_rng(1).normal(size=(2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        t = tv.maxpool(tv.relu(tv.bn1(tv.conv1(torch.from_numpy(x)))))
        want = []
        for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
            t = layer(t)
            want.append(t.numpy())
    with no_grad():
        got = ours(Tensor(x))
    for i, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a.data, b, rtol=1e-3, atol=1e-3 * np.abs(b).max(), err_msg=f"C{i + 2}")
