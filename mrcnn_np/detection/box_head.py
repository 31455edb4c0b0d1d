"""Box head (Fast R-CNN stage): which proposals it trains on, and turning its outputs into detections.

Fast R-CNN §2.3 / Mask R-CNN §3.1: every proposal is matched to the ground truth
(IoU >= 0.5 positive, below background), a 512-RoI sample per image with at most 25 %
positives is drawn, and each sampled RoI gets a class label and, if positive, the box
deltas (weights 10, 10, 5, 5) that move it onto its GT box. The ground-truth boxes are
appended to the proposals so that every object has at least one perfect positive
(important early in training, when the RPN proposes nothing useful).

At inference, ``postprocess_detections`` scores each proposal for every class (softmax),
decodes a class-specific box, drops background, low scores and tiny boxes, runs NMS per
class and keeps the best ``detections_per_img`` (docs/REFERENCE.md §10).

Shapes::

    P proposals of one image, G ground-truth boxes, S sampled RoIs, K classes incl. background
    proposals: (P, 4); gt_boxes: (G, 4); gt_labels: (G,) int64 in 1..K-1
    class_logits: (R, K); box_regression: (R, 4 K) for the R proposals of all images
"""

from __future__ import annotations

import numpy as np

from .._checks import check_array, check_boxes
from ..autodiff import functional as F
from ..autodiff import nn
from ..autodiff.functional import relu
from ..ops.boxes import BoxCoder, box_iou, clip_boxes_to_image, remove_small_boxes
from ..ops.nms import batched_nms
from .backbone import BackboneConfig, stage_blocks
from .matcher import Matcher, roi_heads_matcher
from .sampler import BalancedPositiveNegativeSampler, roi_heads_sampler

BOX_CODER = BoxCoder((10.0, 10.0, 5.0, 5.0))


def assign_targets_to_proposals(proposals, gt_boxes, gt_labels, matcher: Matcher | None = None):
    """Match the proposals of ONE image to its GT.

    Returns ``matched_idxs`` (P,) int64 (index of the GT box, clamped to >= 0 so it can
    index; meaningless for background) and ``labels`` (P,) int64: the GT class for
    positives, 0 for background, -1 for ignored (empty with the default 0.5/0.5 matcher).
    An image without GT gives all background.
    """
    proposals = check_boxes(proposals, "proposals")
    gt_boxes = check_boxes(gt_boxes, "gt_boxes")
    gt_labels = check_array(gt_labels, "gt_labels", ndim=1, kinds="iu")
    if len(gt_labels) != len(gt_boxes):
        raise ValueError(f"gt_labels ({len(gt_labels)}) and gt_boxes ({len(gt_boxes)}) differ in length")
    matcher = matcher or roi_heads_matcher()
    if len(gt_boxes) == 0:
        n = len(proposals)
        return np.zeros(n, np.int64), np.zeros(n, np.int64)
    matched = matcher(box_iou(gt_boxes, proposals))
    matched_idxs = np.maximum(matched, 0)
    labels = gt_labels[matched_idxs].astype(np.int64)
    labels[matched == -1] = 0
    labels[matched == -2] = -1
    return matched_idxs, labels


def select_training_samples(proposals, gt_boxes, gt_labels, rng, *,
                            sampler: BalancedPositiveNegativeSampler | None = None,
                            matcher: Matcher | None = None, box_coder: BoxCoder = BOX_CODER):
    """The RoIs the box head trains on, for each image (torchvision's select_training_samples).

    proposals, gt_boxes, gt_labels: lists with one array per image.
    rng: ``np.random.Generator`` for the sampler (the only randomness).
    Returns a dict of per-image lists: ``proposals`` (S, 4) sampled RoIs (in ascending
    index order of [proposals; gt_boxes]), ``labels`` (S,), ``matched_idxs`` (S,),
    ``regression_targets`` (S, 4).
    """
    if not (len(proposals) == len(gt_boxes) == len(gt_labels)):
        raise ValueError("proposals, gt_boxes and gt_labels must have one entry per image")
    sampler = sampler or roi_heads_sampler()
    out = {"proposals": [], "labels": [], "matched_idxs": [], "regression_targets": []}
    for props, boxes, labs in zip(proposals, gt_boxes, gt_labels):
        boxes = check_boxes(boxes, "gt_boxes").astype(np.float32, copy=False)
        props = np.concatenate([check_boxes(props, "proposals").astype(np.float32, copy=False), boxes])
        matched_idxs, labels = assign_targets_to_proposals(props, boxes, labs, matcher)
        pos, neg = sampler(labels, rng)
        keep = np.sort(np.concatenate([pos, neg]))
        props, labels, matched_idxs = props[keep], labels[keep], matched_idxs[keep]
        if len(boxes):
            targets = box_coder.encode_single(boxes[matched_idxs], props).astype(np.float32)
        else:
            # no GT: every RoI is background and no target is used. torchvision encodes
            # against a dummy zero box (giving -inf); we return zeros instead.
            targets = np.zeros_like(props)
        out["proposals"].append(props)
        out["labels"].append(labels)
        out["matched_idxs"].append(matched_idxs)
        out["regression_targets"].append(targets)
    return out


def postprocess_detections(class_logits, box_regression, proposals, image_sizes, *,
                           score_thresh=0.05, nms_thresh=0.5,
                           detections_per_img=100, box_coder: BoxCoder = BOX_CODER):
    """Final detections per image from the box head's outputs.

    class_logits: (R, K); box_regression: (R, 4 K); proposals: list of (P_i, 4) with
    sum P_i = R; image_sizes: list of (h, w) to clip to.
    Returns a list of dicts ``boxes`` (D, 4) float32, ``scores`` (D,) float32,
    ``labels`` (D,) int64 in 1..K-1, by decreasing score, D <= detections_per_img.
    """
    class_logits = check_array(class_logits, "class_logits", ndim=2, kinds="f", finite=True)
    box_regression = check_array(box_regression, "box_regression", ndim=2, kinds="f", finite=True)
    num_classes = class_logits.shape[1]
    if box_regression.shape != (len(class_logits), 4 * num_classes):
        raise ValueError(f"box_regression must have shape ({len(class_logits)}, {4 * num_classes}), "
                         f"got {box_regression.shape}")
    counts = [len(p) for p in proposals]
    if sum(counts) != len(class_logits):
        raise ValueError(f"proposals hold {sum(counts)} boxes but class_logits has {len(class_logits)} rows")

    pred_boxes = box_coder.decode(box_regression, list(proposals)) if counts else np.zeros((0, num_classes, 4))
    z = class_logits - class_logits.max(axis=1, keepdims=True)       # stable softmax
    scores = np.exp(z)
    scores /= scores.sum(axis=1, keepdims=True)

    results = []
    start = 0
    for n, size in zip(counts, image_sizes):
        boxes = clip_boxes_to_image(pred_boxes[start:start + n].reshape(-1, 4), size).reshape(n, num_classes, 4)
        sc = scores[start:start + n]
        start += n
        # drop background, flatten to (proposal, class) candidates in proposal-major order
        labels = np.broadcast_to(np.arange(num_classes), (n, num_classes))[:, 1:].reshape(-1)
        boxes = boxes[:, 1:].reshape(-1, 4)
        sc = sc[:, 1:].reshape(-1)
        keep = np.flatnonzero(sc > score_thresh)
        keep = keep[remove_small_boxes(boxes[keep], 1e-2)]
        boxes, sc, labels = boxes[keep], sc[keep], labels[keep]
        keep = batched_nms(boxes, sc, labels, nms_thresh)[:detections_per_img]
        results.append({"boxes": boxes[keep].astype(np.float32),
                        "scores": sc[keep].astype(np.float32),
                        "labels": labels[keep].astype(np.int64)})
    return results


# ----------------------------------------------------------------------------- modules
# A box feature head turns pooled RoI features into the box predictor's input. All three
# share one interface, so ``RoIHeads`` chooses among them once, when it is built:
#   forward((R, C, P, P) pooled features) -> box features
#   state_name: the attribute ``RoIHeads`` keeps it under (its weights' names: ``box_head.*``
#               as torchvision's FPN models, ``res5.*`` as the C4 models)
#   shares_with_mask: True when the mask branch reads these features (C4) instead of
#               pooling its own
class TwoMLPHead(nn.Module):
    """Flatten the pooled RoI features and apply two fully connected layers with ReLU
    (FPN §4.2: "two hidden 1,024-d fully-connected layers"). Names fc6, fc7 as torchvision.

    forward((R, C, P, P) RoI features) -> (R, representation_size)
    """

    state_name, shares_with_mask = "box_head", False

    def __init__(self, in_features, representation_size=1024, rng=None):
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation_size, rng=rng)
        self.fc7 = nn.Linear(representation_size, representation_size, rng=rng)

    def forward(self, x):
        x = F.flatten(x, 1)
        return relu(self.fc7(relu(self.fc6(x))))


class ConvFCHead(nn.Module):
    """3x3 convs (each conv -> norm -> ReLU) on the pooled RoI features, then one fc with ReLU:
    the "Xconv1fc" box head (Detectron's ``roi_Xconv1fc_gn_head``; torchvision's
    ``FastRCNNConvFCHead``). Training from scratch ("Rethinking ImageNet Pre-training", He et
    al. 2018) uses it with GroupNorm: shared conv filters learn shape cues from far fewer
    examples than the first fc layer of ``TwoMLPHead``, which sees every RoI position separately.

    forward((R, C, P, P) RoI features) -> (R, representation_size)
    """

    state_name, shares_with_mask = "box_head", False

    def __init__(self, in_channels, pool_size, conv_layers=(256, 256, 256, 256), representation_size=1024,
                 norm=None, rng=None):
        from .mask_head import MaskRCNNHeads  # noqa: PLC0415 (the same conv stack as the mask head's)

        super().__init__()
        self.convs = MaskRCNNHeads(in_channels, conv_layers, norm=norm, rng=rng)
        self.fc6 = nn.Linear(self.convs.out_channels * pool_size * pool_size, representation_size, rng=rng)

    def forward(self, x):
        return relu(self.fc6(F.flatten(self.convs(x), 1)))


class Res5Head(nn.Sequential):
    """The C4 model's box head (Mask R-CNN Fig. 4 left): ResNet's res5 stage on 14 x 14 RoI
    features of res4. Its first block has stride 2 (14 x 14 -> 7 x 7); its output is shared
    by the box predictor (after global average pooling) and the mask predictor (deconv ->
    14 x 14). Blocks named ``0``, ``1``, ... as the backbone's ``layer4``.

    backbone: the ``BackboneConfig`` of the body (res5 continues it); in_channels: res4's.
    forward((R, C4, 14, 14)) -> (R, C5, 7, 7)
    """

    state_name, shares_with_mask = "res5", True

    def __init__(self, backbone: BackboneConfig, in_channels, rng=None):
        super().__init__(*stage_blocks(backbone, in_channels, 3, rng=rng))
        self.out_channels = backbone.stage_channels()[3]


class FastRCNNPredictor(nn.Module):
    """Class scores (K incl. background) and class-specific box deltas (4 K).

    forward((R, D)) -> (class_logits (R, K), box_regression (R, 4 K))
    """

    def __init__(self, in_features, num_classes, rng=None):
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes, rng=rng)
        self.bbox_pred = nn.Linear(in_features, 4 * num_classes, rng=rng)

    def forward(self, x):
        if x.ndim == 4:                 # C4 head: global average pool of the res5 output
            x = F.mean(x, axis=(2, 3))
        return self.cls_score(x), self.bbox_pred(x)


def fastrcnn_loss(class_logits, box_regression, labels, regression_targets, beta=1.0 / 9):
    """Fast R-CNN loss (torchvision's ``fastrcnn_loss``).

    class_logits: Tensor (S, K); box_regression: Tensor (S, 4 K);
    labels: (S,) int or list per image; regression_targets: (S, 4) or list per image.
    Returns ``(loss_classifier, loss_box_reg)``: mean cross-entropy over the sampled RoIs,
    and the smooth-L1 sum over positives, on the 4 outputs of their GT class, divided by S.
    """
    labels = np.concatenate(labels) if isinstance(labels, (list, tuple)) else np.asarray(labels)
    if isinstance(regression_targets, (list, tuple)):
        regression_targets = np.concatenate(regression_targets)
    s, k = class_logits.shape
    if len(labels) != s or box_regression.shape != (s, 4 * k):
        raise ValueError(f"class_logits {class_logits.shape}, box_regression {box_regression.shape} and "
                         f"{len(labels)} labels disagree")
    cls = F.cross_entropy(class_logits, labels.astype(np.int64))
    pos = np.flatnonzero(labels > 0)
    deltas = F.reshape(box_regression, (s, k, 4))[pos, labels[pos]]
    box = F.smooth_l1_loss(deltas, regression_targets[pos].astype(deltas.dtype), beta=beta,
                           reduction="sum") * (1.0 / max(s, 1))
    return cls, box
