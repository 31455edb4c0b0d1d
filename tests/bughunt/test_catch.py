"""Focused tests that catch bug-hunt bugs no older test pins down (mrcnn_np/bughunt/bugs.py).

Each one checks a property of the clean code by hand-computed values; ``bughunt check``
(tests/bughunt/test_check.py) proves that it fails with its bug planted.
"""

import numpy as np
import pytest

from mrcnn_np.detection.rpn import RPN, assign_targets_to_anchors, filter_proposals
from mrcnn_np.ops.boxes import BoxCoder
from mrcnn_np.ops.masks import project_masks_on_boxes
from mrcnn_np.ops.roi_align import roi_align
from mrcnn_np.ops.roi_pool import roi_pool

IMPLS = ["reference", "numpy", "numba"]


@pytest.mark.parametrize("impl", IMPLS)
def test_aligned_roi_align_reads_pixel_centres(impl):
    # f(y, x) = x; a box over pixels 0..3 (image px [0, 4)) has its pixel centres at x = 0..3 in
    # feature coordinates, mean 1.5. aligned=False (legacy) reads the box as [0, 4]: mean 2.0.
    feat = np.tile(np.arange(16, dtype=np.float32), (1, 1, 8, 1))
    rois = np.array([[0, 0, 0, 4, 4]], np.float32)
    aligned = roi_align(feat, rois, 1, 1.0, 2, True, impl=impl)
    legacy = roi_align(feat, rois, 1, 1.0, 2, False, impl=impl)
    assert aligned[0, 0, 0, 0] == pytest.approx(1.5)
    assert legacy[0, 0, 0, 0] == pytest.approx(2.0)


def test_mask_target_is_cut_to_the_roi():
    # an 8 x 8 square object; a proposal exactly on it sees object everywhere (the last row and
    # column of legacy RoIAlign samples straddle the object's edge: 0.5, the corner 0.25)
    gt = np.zeros((1, 32, 32), np.uint8)
    gt[0, 8:16, 8:16] = 1
    target = project_masks_on_boxes(gt, np.array([[8, 8, 16, 16]], np.float32), np.array([0]), 8)[0]
    np.testing.assert_array_equal(target[:-1, :-1], 1.0)
    assert target.min() == 0.25
    # a proposal on the image's other half sees no object
    empty = project_masks_on_boxes(gt, np.array([[16, 16, 32, 32]], np.float32), np.array([0]), 8)[0]
    assert empty.max() == 0.0


def test_rpn_gives_every_object_a_positive_anchor():
    # a 10 x 10 object among 32 x 32 anchors: its best IoU (100 / 1024) is far below 0.7, yet
    # the RPN's matcher must still make its best anchors positive (low-quality matches)
    rpn = RPN(4, ((32,),), rng=np.random.default_rng(0))
    anchors = rpn.anchor_generator((64, 64), [(16, 16)])
    gt = np.array([[20, 20, 30, 30]], np.float32)
    labels, matched = assign_targets_to_anchors(anchors, gt, rpn.matcher)
    assert (labels == 1).sum() >= 1
    np.testing.assert_array_equal(matched[labels == 1], np.repeat(gt, (labels == 1).sum(), 0))


@pytest.mark.parametrize("impl", IMPLS)
def test_roi_pool_rounds_halves_away_from_zero(impl):
    # f(y, x) = -x: a bin's max is its first column. x1 = 40 px at stride 16 is 2.5 cells,
    # which C's round (torchvision) sends to 3; x2 = 72 px = 4.5 cells -> 5
    feat = -np.tile(np.arange(8, dtype=np.float32), (1, 1, 8, 1))
    out, argmax = roi_pool(feat, np.array([[0, 40, 0, 72, 16]], np.float32), 1, 1 / 16,
                           return_argmax=True, impl=impl)
    assert out[0, 0, 0, 0] == -3.0
    assert argmax[0, 0, 0, 0] == 3   # row 0, column 3


def test_proposals_have_positive_size():
    # anchor 1 lies wholly left of the 32 x 32 image: clipped, it has width 0 and must go, or the
    # box head's targets against it divide by 0 (dx) and take log(w / 0) (dw)
    anchors = np.array([[4, 4, 20, 20], [-30, 4, -10, 20]], np.float32)
    (boxes, scores), = filter_proposals(anchors, np.array([[2.0, 1.0]], np.float32), np.zeros((1, 2, 4), np.float32),
                                        [(32, 32)], [2])
    np.testing.assert_array_equal(boxes, anchors[:1])
    targets = BoxCoder((10.0, 10.0, 5.0, 5.0)).encode_single(np.tile(np.float32([2, 2, 18, 18]), (len(boxes), 1)),
                                                              boxes)
    assert np.isfinite(targets).all()
