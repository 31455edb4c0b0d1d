"""What each bug does to a small, fixed input: the numbers behind its symptom picture.

``symptom_data(name)`` runs the package *as it is imported* -- clean, or with the bug
planted when it runs inside a planted copy (:func:`mrcnn_np.bughunt.figure.symptom_figure`
does both) -- on an input chosen to show the bug, and returns panels: ``(title, array)``
pairs, a 2-D array drawn as an image, a 1-D one as bars (or a curve when long). Arrays are
plain lists of floats so the result travels as JSON between processes.
"""

from __future__ import annotations

import numpy as np


def _outline(canvas, box, value=1.0):
    """Draw the outline of box [x1, y1, x2, y2] (pixels, clipped) into the 2-D canvas."""
    h, w = canvas.shape
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    xs, xe, ys, ye = max(x1, 0), min(x2, w - 1), max(y1, 0), min(y2, h - 1)
    if xs > xe or ys > ye:
        return canvas
    for y in (y1, y2):
        if 0 <= y < h:
            canvas[y, xs:xe + 1] = value
    for x in (x1, x2):
        if 0 <= x < w:
            canvas[ys:ye + 1, x] = value
    return canvas


def _roialign():
    from ..ops.roi_align import roi_align  # noqa: PLC0415

    img = np.zeros((1, 1, 16, 16), np.float32)
    img[0, 0, 4:8, 4:8] = 1.0          # an object over pixels 4..7
    out = roi_align(img, np.array([[0, 4, 4, 8, 8]], np.float32), 8, 1.0, 2, True)[0, 0]
    return [("feature map: object on pixels 4..7", img[0, 0]),
            ("aligned RoIAlign of its box [4, 8) (8 x 8)", out)]


def _anchor_ratio():
    from ..detection.anchors import cell_anchors  # noqa: PLC0415

    canvas = np.zeros((64, 64), np.float32)
    for a, v in zip(cell_anchors((40,), (0.5, 1.0, 2.0)), (0.4, 0.7, 1.0)):
        _outline(canvas, a + 32, v)
    return [("anchors of size 40, ratios 0.5 (dim), 1, 2 (bright); ratio = height / width", canvas)]


def _anchor_offset():
    from ..detection.anchors import AnchorGenerator  # noqa: PLC0415

    anchors = AnchorGenerator(sizes=((4,),), aspect_ratios=((1.0,),), offset=0.5)((32, 32), [(4, 4)])
    canvas = np.zeros((33, 33), np.float32)
    canvas[::8, :] = canvas[:, ::8] = 0.3               # the feature cells (stride 8)
    for a in anchors:
        _outline(canvas, a, 1.0)
    return [("AnchorGenerator(offset=0.5): 4 px anchors on 8 px cells", canvas)]


def _mask_target():
    from ..ops.masks import project_masks_on_boxes  # noqa: PLC0415

    gt = np.zeros((1, 64, 64), np.uint8)
    gt[0, 8:24, 8:24] = 1
    gt[0, 40:60, 30:50] = 1            # the same instance has a second part far away
    target = project_masks_on_boxes(gt, np.array([[8, 8, 24, 24]], np.float32), np.array([0]), 28)[0]
    return [("ground-truth mask; the RoI is [8, 24) x [8, 24)", gt[0].astype(np.float32)),
            ("28 x 28 mask target of the RoI", target)]


def _zero_box():
    from ..detection.rpn import filter_proposals  # noqa: PLC0415
    from ..ops.boxes import BoxCoder  # noqa: PLC0415

    anchors = np.array([[4, 4, 20, 20], [-30, 4, -10, 20], [8, 40, 24, 60]], np.float32)  # 2 off the image
    (boxes, _), = filter_proposals(anchors, np.array([[3.0, 2.0, 1.0]], np.float32), np.zeros((1, 3, 4), np.float32),
                                   [(32, 32)], [3])
    with np.errstate(divide="ignore", invalid="ignore"):
        targets = BoxCoder((10.0, 10.0, 5.0, 5.0)).encode_single(np.tile(np.float32([2, 2, 18, 18]), (len(boxes), 1)),
                                                                 boxes)
    finite = np.isfinite(targets).all(axis=1)
    return [("proposals of 1 anchor on and 2 off a 32 px image: finite / non-finite box targets",
             np.array([finite.sum(), (~finite).sum()], np.float32))]


def _mask_softmax():
    from ..autodiff.tensor import Tensor  # noqa: PLC0415
    from ..detection.mask_head import mask_loss  # noqa: PLC0415

    rng = np.random.default_rng(0)
    logits = Tensor(rng.normal(size=(1, 3, 6, 6)).astype(np.float32), requires_grad=True)
    loss = mask_loss(logits, np.array([1]), (rng.random((1, 6, 6)) > 0.5).astype(np.float32))
    loss.backward()
    grad = np.abs(logits.grad[0])
    return [("|d loss / d logits| of class channels 0, 1 (the GT class), 2", np.concatenate(list(grad), axis=1))]


def _low_quality():
    from ..detection.rpn import RPN, assign_targets_to_anchors  # noqa: PLC0415

    rpn = RPN(4, ((32,),), rng=np.random.default_rng(0))
    anchors = rpn.anchor_generator((64, 64), [(16, 16)])
    gt = np.array([[20, 20, 30, 30]], np.float32)
    labels, _ = assign_targets_to_anchors(anchors, gt, rpn.matcher)
    canvas = np.zeros((64, 64), np.float32)
    _outline(canvas, gt[0], 0.5)
    for a in anchors[labels == 1]:
        _outline(canvas, a, 1.0)
    return [("a 10 px object (dim) and its positive RPN anchors (bright)", canvas)]


def _sampler():
    from ..detection.sampler import BalancedPositiveNegativeSampler  # noqa: PLC0415

    labels = np.r_[np.ones(300), np.zeros(3000)]
    pos, neg = BalancedPositiveNegativeSampler(256, 0.5)(labels, np.random.default_rng(0))
    return [("sampled of 300 positives, 3000 negatives: positives, negatives", np.array([len(pos), len(neg)]))]


def _roipool():
    from ..ops.roi_pool import roi_pool  # noqa: PLC0415

    # one one-hot map per cell: the pooled max is 1 exactly when the cell is in the RoI's bins
    hot = np.eye(64, dtype=np.float32).reshape(64, 1, 8, 8)
    rois = np.concatenate([np.arange(64, dtype=np.float32)[:, None],
                           np.tile(np.float32([40, 8, 88, 72]), (64, 1))], axis=1)
    covered = roi_pool(hot, rois, 1, 1 / 16)[:, 0, 0, 0].reshape(8, 8)
    return [("cells RoIPool reads for x in [40, 88] px at stride 16 (2.5 .. 5.5 cells)", covered)]


def _nms_ties():
    from ..ops.nms import nms  # noqa: PLC0415

    boxes = np.float32([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    kept = np.zeros(3, np.float32)
    kept[nms(boxes, np.float32([0.9, 0.9, 0.5]), 0.5)] = 1
    return [("kept among boxes 0 and 1 (identical, equal scores) and box 2", kept)]


def _nms_threshold():
    from ..ops.nms import nms  # noqa: PLC0415

    boxes = np.float32([[0, 0, 30, 10], [10, 0, 40, 10]])   # IoU = 20 / 40 = 0.5 exactly
    kept = np.zeros(2, np.float32)
    kept[nms(boxes, np.float32([0.9, 0.8]), 0.5)] = 1
    return [("kept at iou_threshold 0.5 of two boxes with IoU exactly 0.5", kept)]


def _frozen_bn():
    from ..autodiff.norm import frozen_batch_norm_forward  # noqa: PLC0415

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    x[1] += 5.0                                   # a second, brighter image in the batch
    stats = (np.ones(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32), np.ones(3, np.float32))
    alone = frozen_batch_norm_forward(x[:1], *stats)[0][0, 0]
    in_batch = frozen_batch_norm_forward(x, *stats)[0][0, 0]
    return [("image 0 normalised alone minus in a batch with a brighter image", alone - in_batch)]


def _smooth_l1():
    from ..autodiff.losses import smooth_l1_backward, smooth_l1_forward  # noqa: PLC0415

    d = np.linspace(-0.3, 0.3, 61).astype(np.float32)
    _, cache = smooth_l1_forward(d, np.zeros_like(d), 1.0 / 9)
    return [("d smooth_l1 / d x for x in [-0.3, 0.3], beta = 1/9", smooth_l1_backward(np.float32(1), cache))]


SYMPTOMS = {
    "roialign-no-half-offset": _roialign, "anchor-ratio-inverted": _anchor_ratio,
    "anchor-offset-ignored": _anchor_offset, "mask-target-not-cropped": _mask_target,
    "zero-size-box-log0": _zero_box, "mask-softmax-across-classes": _mask_softmax,
    "rpn-low-quality-matches-dropped": _low_quality, "sampler-ignores-positive-fraction": _sampler,
    "roipool-rounds-half-to-even": _roipool, "nms-ties-keep-later-box": _nms_ties,
    "nms-threshold-inclusive": _nms_threshold, "frozen-bn-batch-statistics": _frozen_bn,
    "smooth-l1-gradient-missing-beta": _smooth_l1,
}


def symptom_data(name: str) -> list:
    """[(title, nested list of floats)] for bug ``name``, computed by the imported package."""
    from .patch import get_bug  # noqa: PLC0415

    bug = get_bug(name)
    return [(title, np.asarray(a, np.float64).tolist()) for title, a in SYMPTOMS[bug.name]()]
