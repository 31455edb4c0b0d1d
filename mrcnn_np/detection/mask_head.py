"""Mask head: a small FCN on each RoI predicting one m x m mask per class, and its loss.

Mask R-CNN §3: "the mask branch has a K m^2-dimensional output for each RoI, which
encodes K binary masks of resolution m x m". The FCN keeps the spatial layout of the RoI
(no fc layers), which is why the paper needs pixel-accurate RoI features (RoIAlign).
FPN head (Fig. 4 right): 4 x (3x3 conv 256 + ReLU) on 14 x 14 RoI features, a 2x2
stride-2 deconvolution + ReLU to 28 x 28, then a 1x1 conv to K logit maps.
The MLP variant of Table 2e replaces the FCN by fc layers (1024 -> 1024 -> K m^2).

Mask loss (§3, Table 2b): per-pixel sigmoid + binary cross-entropy on the channel of the
RoI's ground-truth class only ("decoupling mask and class prediction"), averaged over
pixels. The ablation's "multinomial" variant applies a per-pixel softmax over the K
classes (background included) instead, so classes compete for each pixel. The
class-agnostic option predicts a single mask channel.

Shapes::

    R RoIs, C channels, S = 14 RoI feature size, M = 28 mask size, K classes incl. background
    MaskRCNNHeads:     (R, C, S, S) -> (R, D, S, S)
    MaskRCNNPredictor: (R, D, S, S) -> (R, K, 2S, 2S) logits
    MLPMaskHead:       (R, C, S, S) -> (R, K, M, M) logits
    mask_loss(logits (P, K, M, M), labels (P,), targets (P, M, M) in [0, 1]) -> scalar
"""

from __future__ import annotations

import numpy as np

from ..autodiff import functional as F
from ..autodiff import init, nn
from ..autodiff.functional import relu

MASK_LOSSES = ("sigmoid", "softmax")


class MaskRCNNHeads(nn.Sequential):
    """``len(layers)`` 3x3 convs (pad 1) each followed by ReLU; names ``{i}.0`` as torchvision.

    norm: None (the paper) or a callable channels -> Module (e.g. GroupNorm for training
    from scratch); with a norm, each block is conv -> norm -> ReLU.
    """

    def __init__(self, in_channels, layers=(256, 256, 256, 256), norm=None, rng=None):
        blocks = []
        for width in layers:
            conv = init.kaiming_conv_(nn.Conv2d(in_channels, width, 3, padding=1, bias=norm is None, rng=rng), rng)
            parts = [conv] if norm is None else [conv, norm(width)]
            blocks.append(nn.Sequential(*parts, nn.ReLU()))
            in_channels = width
        super().__init__(*blocks)
        self.out_channels = in_channels


class MaskRCNNPredictor(nn.Module):
    """2x2 stride-2 deconvolution + ReLU (S -> 2S), then 1x1 conv to one logit map per class."""

    def __init__(self, in_channels, dim_reduced, num_classes, rng=None):
        super().__init__()
        self.conv5_mask = init.kaiming_conv_(nn.ConvTranspose2d(in_channels, dim_reduced, 2, stride=2, rng=rng), rng)
        self.mask_fcn_logits = init.kaiming_conv_(nn.Conv2d(dim_reduced, num_classes, 1, rng=rng), rng)

    def forward(self, x):
        return self.mask_fcn_logits(relu(self.conv5_mask(x)))


class MLPMaskHead(nn.Module):
    """The MLP mask branch of Table 2e: flatten, fc layers with ReLU, then fc to K M^2 logits.

    hidden: widths of the hidden fc layers (the paper: (1024, 1024) or (1024, 1024, 1024)).
    """

    def __init__(self, in_features, num_classes, resolution=28, hidden=(1024, 1024), rng=None):
        super().__init__()
        layers = []
        for width in hidden:
            layers.append(nn.Linear(in_features, width, rng=rng))
            in_features = width
        self.fcs = nn.ModuleList(layers)
        self.mask_fc_logits = nn.Linear(in_features, num_classes * resolution * resolution, rng=rng)
        init.normal_(self.mask_fc_logits.weight, std=0.001, rng=rng)
        init.zeros_(self.mask_fc_logits.bias)
        self.num_classes, self.resolution = num_classes, resolution

    def forward(self, x):
        x = F.flatten(x, 1)
        for fc in self.fcs:
            x = relu(fc(x))
        m = self.resolution
        return F.reshape(self.mask_fc_logits(x), (x.shape[0], self.num_classes, m, m))


def mask_loss(mask_logits, labels, mask_targets, kind="sigmoid"):
    """Mask loss over the positive RoIs.

    mask_logits: Tensor (P, K, M, M) (K = 1 for a class-agnostic head);
    labels: (P,) int GT class of each positive RoI (1..K-1);
    mask_targets: (P, M, M) float in [0, 1] (``project_masks_on_boxes``; soft at the border).
    kind: "sigmoid" (the paper's default: BCE on the GT class's channel, or on the single
    channel when K = 1) or "softmax" (per-pixel softmax over the K channels; a pixel's
    target is the RoI's class where the target is >= 0.5, background 0 elsewhere).
    With no positive RoI the loss is 0 (and its gradient is zero), as torchvision.
    """
    if kind not in MASK_LOSSES:
        raise ValueError(f"kind must be one of {MASK_LOSSES}, got {kind!r}")
    labels = np.asarray(labels, dtype=np.int64)
    p, k, m, m2 = mask_logits.shape
    if len(labels) != p or mask_targets.shape != (p, m, m2):
        raise ValueError(f"mask_logits {mask_logits.shape}, labels {labels.shape} and mask_targets "
                         f"{mask_targets.shape} disagree")
    if p == 0:
        return F.sum(mask_logits) * 0.0
    targets = np.asarray(mask_targets, dtype=mask_logits.dtype)
    if kind == "sigmoid":
        channel = labels if k > 1 else np.zeros_like(labels)
        return F.binary_cross_entropy_with_logits(mask_logits[np.arange(p), channel], targets)
    if k == 1:
        raise ValueError("the softmax mask loss needs one channel per class (not class-agnostic)")
    pixel_class = np.where(targets >= 0.5, labels[:, None, None], 0).reshape(-1)
    flat = F.reshape(F.transpose(mask_logits, (0, 2, 3, 1)), (p * m * m2, k))
    return F.cross_entropy(flat, pixel_class)


def mask_probabilities(mask_logits, labels, kind="sigmoid", readout="class"):
    """Inference: the mask of each detection's predicted class, as probabilities.

    mask_logits: array (D, K, M, M); labels: (D,) predicted classes. Returns (D, M, M):
    sigmoid of the class channel (or of the single channel), or for the softmax head the
    softmax probability of the class at each pixel (readout "class", the default) or of
    any object class, 1 - p(background) (readout "foreground": an analysis of the softmax
    ablation, which separates "where is the object" from "which class is it").
    """
    if readout not in ("class", "foreground"):
        raise ValueError(f"readout must be 'class' or 'foreground', got {readout!r}")
    logits = np.asarray(mask_logits)
    d, k = logits.shape[:2]
    labels = np.asarray(labels, dtype=np.int64)
    channel = labels if k > 1 else np.zeros_like(labels)
    if kind == "softmax" and k > 1:
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        return (p[np.arange(d), channel] if readout == "class" else 1.0 - p[:, 0]).astype(logits.dtype)
    x = logits[np.arange(d), channel]
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(logits.dtype)     # sigmoid without overflow
