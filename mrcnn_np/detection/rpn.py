"""Region Proposal Network: the head, training targets for anchors, proposal generation, the loss.

Faster R-CNN §3.1 (and FPN §4.1): a small head slides over each feature map and, for
each of the A anchors at every location, predicts an objectness logit and 4 box deltas.

* ``RPN``: the whole network as one module: anchors, ``RPNHead`` (the only trainable
  part; its outputs carry the gradient into the backbone), targets, proposals, loss;
* ``assign_targets_to_anchors``: label every anchor positive / negative / ignored with the
  Matcher(0.7, 0.3, low-quality matches on) and pick its regression target box;
* ``filter_proposals``: turn all anchors + predicted deltas into a few hundred proposals
  per image: per-level top-k by objectness, clip, drop tiny boxes, NMS within each level,
  keep the best ``post_nms_top_n`` (torchvision's order of operations, docs/REFERENCE.md §6);
* ``rpn_loss``: BCE on the sampled anchors plus smooth L1 on the sampled positives.

The target and proposal functions are plain array code (no gradient flows through the
anchors or the chosen proposals, as in torchvision).

Shapes::

    N images, A_l anchors on level l (= H_l * W_l * anchors per location), A = sum A_l
    G ground-truth boxes of one image, P proposals kept for one image
    anchors: (A, 4) [x1, y1, x2, y2] in pixels of the padded batch (same for every image)
    objectness: (N, A) logits;  deltas: (N, A, 4) (dx, dy, dw, dh), weights (1, 1, 1, 1)
"""

from __future__ import annotations

import numpy as np

from .._checks import check_array, check_boxes
from ..autodiff import functional as F
from ..autodiff import init, nn
from ..autodiff.functional import relu
from ..ops.boxes import BoxCoder, box_iou, clip_boxes_to_image, remove_small_boxes
from ..ops.nms import batched_nms
from .anchors import AnchorGenerator
from .matcher import Matcher, rpn_matcher
from .sampler import BalancedPositiveNegativeSampler

MIN_SIZE = 1e-3          # hard-coded in torchvision's filter_proposals (inclusive keep)

RPN_BOX_CODER = BoxCoder((1.0, 1.0, 1.0, 1.0))


def assign_targets_to_anchors(anchors, gt_boxes, matcher: Matcher | None = None):
    """Objectness labels and matched boxes for the anchors of ONE image.

    anchors: (A, 4); gt_boxes: (G, 4), G may be 0.
    matcher: default ``Matcher(0.7, 0.3, allow_low_quality_matches=True)``.
    Returns ``labels`` (A,) float32 with 1 = positive, 0 = negative, -1 = ignored, and
    ``matched_gt_boxes`` (A, 4) float32, the GT box each anchor regresses to (the box of
    GT 0 for negatives, zeros when there is no GT; only positives enter the box loss).
    """
    anchors = check_boxes(anchors, "anchors")
    gt_boxes = check_boxes(gt_boxes, "gt_boxes")
    matcher = matcher or rpn_matcher()
    if len(gt_boxes) == 0:
        return (np.zeros(len(anchors), np.float32), np.zeros((len(anchors), 4), np.float32))
    matched = matcher(box_iou(gt_boxes, anchors))
    labels = (matched >= 0).astype(np.float32)
    labels[matched == -2] = -1.0            # between the thresholds: ignored
    matched_gt_boxes = gt_boxes[np.maximum(matched, 0)].astype(np.float32)
    return labels, matched_gt_boxes


def _top_n_per_level(objectness, num_anchors_per_level, top_n):
    """Indices (into the A anchors) of the ``top_n`` best logits of each level, one image.

    Within a level the order is descending logit, ties by ascending index (the later
    batched NMS sorts again, so only the kept *set* matters for the result).
    """
    keep = []
    offset = 0
    for n in num_anchors_per_level:
        scores = objectness[offset:offset + n]
        k = min(top_n, n)
        if k < n:
            part = np.argpartition(-scores, k - 1)[:k]
            # argpartition does not order ties by index: sort what it kept stably
            part = part[np.lexsort((part, -scores[part]))]
        else:
            part = np.argsort(-scores, kind="stable")
        keep.append(part + offset)
        offset += n
    return np.concatenate(keep) if keep else np.empty(0, np.int64)


def filter_proposals(anchors, objectness, deltas, image_sizes, num_anchors_per_level,
                     pre_nms_top_n=1000, post_nms_top_n=1000, nms_thresh=0.7,
                     score_thresh=0.0, min_size=MIN_SIZE):
    """Proposals for each image from the RPN's outputs (torchvision's filter_proposals).

    anchors: (A, 4); objectness: (N, A) logits; deltas: (N, A, 4);
    image_sizes: N pairs (h, w) of the unpadded resized images (boxes are clipped to them);
    num_anchors_per_level: the A_l, in the order the anchors are concatenated.
    pre_nms_top_n: kept per level before NMS; post_nms_top_n: kept per image after NMS.
    Returns a list of N pairs ``(boxes (P, 4) float32, scores (P,) float32)``, boxes by
    decreasing objectness probability (sigmoid of the logit).
    """
    anchors = check_boxes(anchors, "anchors")
    objectness = check_array(objectness, "objectness", ndim=2, kinds="f", finite=True)
    deltas = check_array(deltas, "deltas", ndim=3, last_dim=4, kinds="f", finite=True)
    num_images, num_anchors = objectness.shape
    if deltas.shape[:2] != (num_images, num_anchors) or len(anchors) != num_anchors:
        raise ValueError(f"objectness {objectness.shape}, deltas {deltas.shape} and anchors "
                         f"{anchors.shape} disagree on the number of anchors")
    if sum(num_anchors_per_level) != num_anchors:
        raise ValueError(f"num_anchors_per_level sums to {sum(num_anchors_per_level)}, "
                         f"but there are {num_anchors} anchors")
    if len(image_sizes) != num_images:
        raise ValueError(f"got {len(image_sizes)} image sizes for {num_images} images")
    level_of_anchor = np.repeat(np.arange(len(num_anchors_per_level)), num_anchors_per_level)

    results = []
    for i in range(num_images):
        top = _top_n_per_level(objectness[i], num_anchors_per_level, pre_nms_top_n)
        # decode only the candidates (torchvision decodes all anchors; same numbers)
        boxes = RPN_BOX_CODER.decode(deltas[i, top], anchors[top])[:, 0]
        logits = objectness[i, top].astype(np.float32)
        scores = 1.0 / (1.0 + np.exp(-logits))
        levels = level_of_anchor[top]

        boxes = clip_boxes_to_image(boxes, image_sizes[i])
        keep = remove_small_boxes(boxes, min_size)
        keep = keep[scores[keep] >= score_thresh]
        boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
        keep = batched_nms(boxes, scores, levels, nms_thresh)[:post_nms_top_n]
        results.append((boxes[keep].astype(np.float32), scores[keep].astype(np.float32)))
    return results


# ----------------------------------------------------------------------------- the head
class RPNHead(nn.Module):
    """One 3x3 conv + ReLU shared over the levels, then sibling 1x1 convs: an objectness
    logit and 4 box deltas per anchor (Faster R-CNN §3.1). Names as torchvision
    (``conv.0.0``, ``cls_logits``, ``bbox_pred``); init normal(std 0.01), bias 0.

    forward(feats: list of (N, C, H_l, W_l)) -> (objectness list of (N, A, H_l, W_l),
    deltas list of (N, 4A, H_l, W_l)).
    """

    def __init__(self, in_channels, num_anchors, rng=None):
        super().__init__()
        self.conv = nn.Sequential(nn.Sequential(nn.Conv2d(in_channels, in_channels, 3, padding=1, rng=rng)))
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, 1, rng=rng)
        self.bbox_pred = nn.Conv2d(in_channels, 4 * num_anchors, 1, rng=rng)
        for conv in (self.conv[0][0], self.cls_logits, self.bbox_pred):
            init.normal_(conv.weight, std=0.01, rng=rng)
            init.zeros_(conv.bias)

    def forward(self, feats):
        objectness, deltas = [], []
        for f in feats:
            t = relu(self.conv(f))
            objectness.append(self.cls_logits(t))
            deltas.append(self.bbox_pred(t))
        return objectness, deltas


def flatten_rpn_outputs(objectness, deltas):
    """Concatenate the levels in anchor order: index = level offset + (y W + x) A + a.

    objectness: list of (N, A, H, W) -> (N, sum H W A); deltas: list of (N, 4A, H, W) ->
    (N, sum H W A, 4), where channel a*4 + j holds coordinate j of anchor a.
    """
    obj, dts = [], []
    for o, d in zip(objectness, deltas):
        n, a, h, w = o.shape
        obj.append(F.reshape(F.transpose(o, (0, 2, 3, 1)), (n, h * w * a)))
        d = F.reshape(d, (n, a, 4, h, w))
        dts.append(F.reshape(F.transpose(d, (0, 3, 4, 1, 2)), (n, h * w * a, 4)))
    return F.concat(obj, axis=1), F.concat(dts, axis=1)


# ----------------------------------------------------------------------------- the loss
def sample_anchors(labels, sampler, rng):
    """Flat indices (into N * A) of the sampled positive and negative anchors of the batch.

    labels: list of N (A,) arrays from ``assign_targets_to_anchors``.
    """
    pos, neg = [], []
    offset = 0
    for lab in labels:
        p, n = sampler(lab, rng)
        pos.append(p + offset)
        neg.append(n + offset)
        offset += len(lab)
    return np.concatenate(pos), np.concatenate(neg)


def rpn_loss(objectness, deltas, labels, regression_targets, pos_idx, neg_idx, beta=1.0 / 9):
    """torchvision's RPN loss (docs/REFERENCE.md §6), given the sampled anchors.

    objectness: Tensor (N, A) logits; deltas: Tensor (N, A, 4);
    labels: (N*A,) or list of (A,) with 1 / 0 / -1; regression_targets: (N*A, 4) or list;
    pos_idx, neg_idx: flat indices of the sampled anchors (see ``sample_anchors``).
    Returns ``(loss_objectness, loss_box_reg)``: the mean BCE over all sampled anchors, and
    the smooth-L1 sum over sampled positives divided by the number of sampled anchors.
    """
    labels = np.concatenate(labels) if isinstance(labels, (list, tuple)) else np.asarray(labels)
    if isinstance(regression_targets, (list, tuple)):
        regression_targets = np.concatenate(regression_targets)
    sampled = np.concatenate([pos_idx, neg_idx])
    if len(sampled) == 0:
        raise ValueError("no anchor was sampled (every label is -1?)")
    obj = F.reshape(objectness, (-1,))
    dts = F.reshape(deltas, (-1, 4))
    box = F.smooth_l1_loss(dts[pos_idx], regression_targets[pos_idx].astype(dts.dtype), beta=beta,
                           reduction="sum") * (1.0 / len(sampled))
    cls = F.binary_cross_entropy_with_logits(obj[sampled], labels[sampled].astype(obj.dtype))
    return cls, box


# ----------------------------------------------------------------------------- the module
class RPN(nn.Module):
    """The RPN of one model: its anchors, its trainable ``head`` and its fixed settings.

    in_channels: channels of every feature map it reads; anchor_sizes: one tuple per level;
    aspect_ratios: height / width, one tuple for all levels (or one tuple per level).
    pre_nms_top_n, post_nms_top_n: (training, inference) pairs, per level before NMS and
    per image after it. The matcher (fg_iou_thresh, bg_iou_thresh, low-quality matches on)
    and the sampler (batch_size_per_image, positive_fraction) choose the anchors trained on.
    """

    def __init__(self, in_channels, anchor_sizes, aspect_ratios=(0.5, 1.0, 2.0), *,
                 pre_nms_top_n=(2000, 1000), post_nms_top_n=(2000, 1000), nms_thresh=0.7,
                 fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256, positive_fraction=0.5,
                 score_thresh=0.0, rng=None):
        super().__init__()
        self.anchor_generator = AnchorGenerator(anchor_sizes, aspect_ratios)
        self.head = RPNHead(in_channels, self.anchor_generator.num_anchors_per_location()[0], rng=rng)
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.pre_nms_top_n, self.post_nms_top_n = tuple(pre_nms_top_n), tuple(post_nms_top_n)
        self.nms_thresh, self.score_thresh = nms_thresh, score_thresh

    def forward(self, batch_shape, features, image_sizes, targets=None, rng=None):
        """Proposals (list of (P_i, 4)), the losses (with targets; else {}) and what the
        notebooks draw. targets: list of dicts with ``boxes`` (G_i, 4), G_i may be 0."""
        feature_sizes = [tuple(f.shape[-2:]) for f in features]
        per_level = self.anchor_generator.per_level(tuple(batch_shape[-2:]), feature_sizes)
        anchors = np.concatenate(per_level)
        objectness, deltas = flatten_rpn_outputs(*self.head(features))
        phase = 0 if targets is not None else 1          # index into the (training, inference) pairs
        proposals = filter_proposals(
            anchors, objectness.data, deltas.data, image_sizes, [len(a) for a in per_level],
            pre_nms_top_n=self.pre_nms_top_n[phase], post_nms_top_n=self.post_nms_top_n[phase],
            nms_thresh=self.nms_thresh, score_thresh=self.score_thresh)
        info = {"anchors": anchors, "proposal_scores": [p[1] for p in proposals]}
        proposals = [p[0] for p in proposals]
        losses = {}
        if targets is not None:
            labels, reg_targets = [], []
            for t in targets:
                lab, matched = assign_targets_to_anchors(anchors, t["boxes"], self.matcher)
                labels.append(lab)
                # an image without objects: every anchor is negative, no box target is used
                reg_targets.append(RPN_BOX_CODER.encode_single(matched, anchors) if len(t["boxes"])
                                   else np.zeros_like(anchors))
            pos, neg = sample_anchors(labels, self.sampler, rng)
            losses["loss_rpn_cls"], losses["loss_rpn_loc"] = rpn_loss(objectness, deltas, labels, reg_targets,
                                                                      pos, neg)
            info.update(anchor_labels=labels, num_pos_anchors=len(pos))
        return proposals, losses, info
