"""Feature Pyramid Network (Lin et al. 2017), as used by Mask R-CNN's FPN variant.

FPN §3: the backbone's stage outputs C2..C5 have rich semantics only at the coarse end.
A top-down path upsamples the coarse map (nearest neighbour, x2) and adds a 1x1
"lateral" projection of the finer C map; a 3x3 conv on each sum smooths the aliasing of
the upsampling. Every level gets the same number of channels (256 in the paper), so one
RPN head and one RoI head serve all levels. P6, a stride-2 subsampling of P5, gives the
RPN a level for the largest anchors (512 px) and is not used for RoI pooling.

torchvision names (so its weights load): ``inner_blocks.{i}.0`` (laterals, 1x1, bias),
``layer_blocks.{i}.0`` (3x3, bias); no norm, no ReLU; kaiming_uniform(a=1) init, bias 0.

Shapes::

    C_l: (N, C_in_l, H_l, W_l) for l = 2..5, H_l = H / 2**l (rounded up by the convs)
    forward([C2, C3, C4, C5]) -> [P2, P3, P4, P5, P6], each (N, out_channels, H_l, W_l)
"""

from __future__ import annotations

from ..autodiff import init, nn
from ..autodiff.functional import max_pool2d, upsample_nearest


def _fpn_conv(cin, cout, k, rng=None):
    conv = nn.Conv2d(cin, cout, k, padding=(k - 1) // 2, rng=rng)
    init.kaiming_uniform_(conv.weight, a=1.0, rng=rng)
    init.zeros_(conv.bias)
    return nn.Sequential(conv)


class FPN(nn.Module):
    """Top-down pathway with lateral connections, plus P6 by subsampling P5.

    in_channels: channels of C2..C5 (any number of levels >= 1);
    out_channels: channels of every P level; extra_p6: add the P6 level (the RPN's).
    """

    def __init__(self, in_channels, out_channels=256, extra_p6=True, rng=None):
        super().__init__()
        self.inner_blocks = nn.ModuleList([_fpn_conv(c, out_channels, 1, rng) for c in in_channels])
        self.layer_blocks = nn.ModuleList([_fpn_conv(out_channels, out_channels, 3, rng)
                                           for _ in in_channels])
        self.extra_p6 = extra_p6
        self.out_channels = out_channels

    def forward(self, feats):
        if len(feats) != len(self.inner_blocks):
            raise ValueError(f"FPN built for {len(self.inner_blocks)} levels, got {len(feats)} feature maps")
        inner = self.inner_blocks[-1](feats[-1])
        results = [self.layer_blocks[-1](inner)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.inner_blocks[i](feats[i])
            # upsample to the lateral's exact size (works for odd sizes, as torchvision)
            inner = lateral + upsample_nearest(inner, size=tuple(lateral.shape[-2:]))
            results.insert(0, self.layer_blocks[i](inner))
        if self.extra_p6:
            results.append(max_pool2d(results[-1], 1, 2, 0))    # P6[i, j] = P5[2i, 2j]
        return results


class BackboneWithFPN(nn.Module):
    """A ResNet body followed by an FPN; parameter names ``body.*`` and ``fpn.*`` as torchvision.

    forward(images (N, 3, H, W)) -> [P2, P3, P4, P5, P6].
    """

    def __init__(self, body, out_channels=256, rng=None):
        super().__init__()
        self.body = body
        self.fpn = FPN(body.out_channels, out_channels, extra_p6=True, rng=rng)
        self.out_channels = out_channels

    def forward(self, x):
        return self.fpn(self.body(x))
