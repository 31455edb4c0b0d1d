"""ResNet / ResNeXt backbones with torchvision's layer structure, and a small teaching ResNet.

Mask R-CNN §3 ("Network Architecture"): the backbone is a ResNet (He et al. 2016) or
ResNeXt (Xie et al. 2017) of depth 50 or 101. The stem (7x7/2 conv + 3x3/2 max-pool) is
followed by four stages ``layer1..layer4`` (C2..C5, strides 4, 8, 16, 32). Each stage is a
stack of residual blocks; the first block of a stage changes the width and, from stage 2
on, halves the resolution. torchvision puts the stride on the 3x3 conv of the bottleneck
("ResNet v1.5"), so its weights load here by name (``conv1.weight``,
``layer1.0.conv2.weight``, ``layer1.0.downsample.0.weight``, ...).

Normalisation: pretrained detection models freeze batch norm into a fixed affine map
(``FrozenBatchNorm2d``); the small ``teaching`` preset trains from scratch on batches of a
few images, where batch statistics are useless, so it uses GroupNorm (Wu & He 2018).

Shapes::

    N images, H x W input; C2..C5 have strides 4, 8, 16, 32
    forward(x (N, 3, H, W)) -> [C2, C3, C4, C5] (the first ``num_stages`` of them)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..autodiff import init, nn
from ..autodiff.functional import relu


@dataclass(frozen=True)
class BackboneConfig:
    """What a backbone is built from.

    block: "bottleneck" (1x1 -> 3x3 -> 1x1, expansion 4) or "basic" (3x3 -> 3x3, expansion 1).
    layers: blocks per stage (ResNet-50: (3, 4, 6, 3); ResNet-101: (3, 4, 23, 3)).
    width: bottleneck width of stage 2 (64 for ResNet); stage k has width * 2**(k-2).
    groups, width_per_group: ResNeXt cardinality (32x8d: 32, 8); plain ResNet: 1, 64.
    stem_channels: channels of the stem conv; stem_kernel: 7 (ResNet) or 3 (small images).
    norm: "frozen_bn" or "gn" (GroupNorm with ``gn_groups`` groups).
    """

    block: str = "bottleneck"
    layers: tuple = (3, 4, 6, 3)
    width: int = 64
    groups: int = 1
    width_per_group: int = 64
    stem_channels: int = 64
    stem_kernel: int = 7
    norm: str = "frozen_bn"
    gn_groups: int = 32
    frozen_bn_eps: float = 1e-5

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    def stage_channels(self) -> tuple:
        """Output channels of C2..C5."""
        return tuple(self.width * 2**k * self.expansion for k in range(len(self.layers)))


RESNET50 = BackboneConfig(layers=(3, 4, 6, 3))
RESNET101 = BackboneConfig(layers=(3, 4, 23, 3))
RESNEXT101_32X8D = BackboneConfig(layers=(3, 4, 23, 3), groups=32, width_per_group=8)


def make_norm(cfg: BackboneConfig, channels: int) -> nn.Module:
    """The block norm the config names: frozen batch norm or GroupNorm."""
    if cfg.norm == "frozen_bn":
        return nn.FrozenBatchNorm2d(channels, eps=cfg.frozen_bn_eps)
    if cfg.norm == "gn":
        return nn.GroupNorm(min(cfg.gn_groups, channels), channels)
    raise ValueError(f"norm must be 'frozen_bn' or 'gn', got {cfg.norm!r}")


def _conv(cin, cout, k, stride=1, groups=1, rng=None):
    """Bias-free conv with 'same' padding and He (fan_out) init, as torchvision's ResNet."""
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False, rng=rng)
    init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu", rng=rng)
    return conv


class Bottleneck(nn.Module):
    """1x1 (reduce) -> 3x3 (stride, groups) -> 1x1 (expand), plus the shortcut, then ReLU."""

    def __init__(self, cfg: BackboneConfig, cin, planes, stride, rng=None):
        super().__init__()
        width = int(planes * (cfg.width_per_group / 64.0)) * cfg.groups
        cout = planes * 4
        self.conv1, self.bn1 = _conv(cin, width, 1, rng=rng), make_norm(cfg, width)
        self.conv2 = _conv(width, width, 3, stride=stride, groups=cfg.groups, rng=rng)
        self.bn2 = make_norm(cfg, width)
        self.conv3, self.bn3 = _conv(width, cout, 1, rng=rng), make_norm(cfg, cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(_conv(cin, cout, 1, stride=stride, rng=rng), make_norm(cfg, cout))

    def forward(self, x):
        out = relu(self.bn1(self.conv1(x)))
        out = relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return relu(out + shortcut)


class BasicBlock(nn.Module):
    """3x3 (stride) -> 3x3, plus the shortcut, then ReLU (ResNet-18/34 style, for small models)."""

    def __init__(self, cfg: BackboneConfig, cin, planes, stride, rng=None):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, planes, 3, stride=stride, rng=rng), make_norm(cfg, planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3, rng=rng), make_norm(cfg, planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(_conv(cin, planes, 1, stride=stride, rng=rng), make_norm(cfg, planes))

    def forward(self, x):
        out = relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return relu(out + shortcut)


def stage_blocks(cfg: BackboneConfig, cin: int, stage: int, rng=None) -> list:
    """The residual blocks of stage ``stage`` (0 for C2 ... 3 for C5), the first with the stride."""
    block = Bottleneck if cfg.block == "bottleneck" else BasicBlock
    planes = cfg.width * 2**stage
    stride = 1 if stage == 0 else 2
    blocks = []
    for i in range(cfg.layers[stage]):
        blocks.append(block(cfg, cin, planes, stride if i == 0 else 1, rng=rng))
        cin = planes * cfg.expansion
    return blocks


def make_stage(cfg: BackboneConfig, cin: int, stage: int, rng=None) -> nn.Sequential:
    """Stage ``stage`` as one Sequential (block names ``0``, ``1``, ... as torchvision's ``layerK``)."""
    return nn.Sequential(*stage_blocks(cfg, cin, stage, rng=rng))


class ResNet(nn.Module):
    """The ResNet body: stem and ``layer1..layerS`` (S = ``num_stages`` <= len(cfg.layers)).

    forward returns the S stage outputs C2..C(S+1). The C4 model builds the
    body with three stages; its RoI head (``box_head.Res5Head``) is stage 4 (res5).
    """

    def __init__(self, cfg: BackboneConfig, num_stages: int = 4, rng=None):
        super().__init__()
        if cfg.block not in ("bottleneck", "basic"):
            raise ValueError(f"block must be 'bottleneck' or 'basic', got {cfg.block!r}")
        if not 1 <= num_stages <= len(cfg.layers):
            raise ValueError(f"num_stages must be in 1..{len(cfg.layers)}, got {num_stages}")
        self.cfg = cfg
        self.conv1 = _conv(3, cfg.stem_channels, cfg.stem_kernel, stride=2, rng=rng)
        self.bn1 = make_norm(cfg, cfg.stem_channels)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = cfg.stem_channels
        for s in range(num_stages):
            setattr(self, f"layer{s + 1}", make_stage(cfg, cin, s, rng=rng))
            cin = cfg.width * 2**s * cfg.expansion
        self.num_stages = num_stages
        self.out_channels = cfg.stage_channels()[:num_stages]

    def forward(self, x):
        x = self.maxpool(relu(self.bn1(self.conv1(x))))
        feats = []
        for s in range(self.num_stages):
            x = getattr(self, f"layer{s + 1}")(x)
            feats.append(x)
        return feats

