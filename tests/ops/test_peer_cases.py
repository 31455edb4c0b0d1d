"""Peer cases: our own tests of the kinds of case torchvision's test_ops.py checks for
roi_align, roi_pool, nms, batched_nms and the box ops (no code taken from it; each
docstring names the kind of case). Run on every twin, the CUDA one included."""

import numpy as np
import pytest

from mrcnn_np.ops import (batched_nms, box_area, box_convert, box_iou, nms, roi_align,
                          roi_pool)

from ._roi_cases import ALL


# ------------------------------------------------------------------ RoI ops
@pytest.mark.parametrize("impl", ALL)
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_of_a_constant_map_is_that_constant(impl, aligned):
    """Kind: constant input -> every bin of an RoI inside the map reads the constant."""
    x = np.full((2, 3, 10, 10), 4.5, np.float32)
    rois = np.array([[0, 1, 1, 8, 8], [1, 0.5, 2.5, 6, 9], [1, 3, 3, 3.5, 3.5]], np.float32)
    out = roi_align(x, rois, (5, 4), 1.0, 2, aligned, impl=impl)
    np.testing.assert_allclose(out, 4.5, rtol=1e-6)


@pytest.mark.parametrize("impl", ALL)
def test_roi_pool_of_the_whole_map_is_block_max_pooling(impl):
    """Kind: an RoI covering the whole map equals plain max pooling of equal blocks."""
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32)
    out = roi_pool(x, np.array([[0, 0, 0, 5, 5]], np.float32), 3, 1.0, impl=impl)
    want = x.reshape(1, 2, 3, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("impl", ALL)
def test_roi_ops_batch_index_selects_the_image(impl):
    """Kind: the first column picks the image; the same box on two images differs."""
    x = np.stack([np.zeros((1, 5, 5)), np.ones((1, 5, 5))]).astype(np.float32)
    rois = np.array([[0, 0, 0, 4, 4], [1, 0, 0, 4, 4]], np.float32)
    for out in (roi_align(x, rois, 2, impl=impl), roi_pool(x, rois, 2, impl=impl)):
        assert not out[0].any() and (out[1] == 1).all()


# ------------------------------------------------------------------ nms / batched_nms
@pytest.mark.parametrize("impl", ALL)
def test_nms_on_empty_input_is_empty_int64(impl):
    """Kind: no boxes -> an empty int64 index array."""
    keep = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5, impl=impl)
    assert keep.shape == (0,) and keep.dtype == np.int64


@pytest.mark.parametrize("impl", ALL)
def test_nms_threshold_is_strict(impl):
    """Kind: a pair at exactly the threshold survives; just above it, it is suppressed."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float64)   # IoU 0.5
    scores = np.array([0.9, 0.8])
    np.testing.assert_array_equal(nms(boxes, scores, 0.5, impl=impl), [0, 1])
    np.testing.assert_array_equal(nms(boxes, scores, 0.4999, impl=impl), [0])


@pytest.mark.parametrize("impl", ALL)
def test_batched_nms_keeps_overlaps_of_different_classes(impl):
    """Kind: batched_nms with idxs -- identical boxes of two classes both survive, the same
    boxes in one class do not; the result is by decreasing score."""
    boxes = np.array([[0, 0, 10, 10]] * 3 + [[50, 50, 60, 60]], np.float32)
    scores = np.array([0.5, 0.9, 0.7, 0.6], np.float32)
    keep = batched_nms(boxes, scores, np.array([0, 1, 0, 1]), 0.5, impl=impl)
    np.testing.assert_array_equal(keep, [1, 2, 3])
    keep = batched_nms(boxes, scores, np.zeros(4, np.int64), 0.5, impl=impl)
    np.testing.assert_array_equal(keep, [1, 3])


@pytest.mark.parametrize("impl", ALL)
def test_batched_nms_equals_nms_per_class(impl):
    """Kind: batched_nms == ordinary nms run on each class and merged by score."""
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 50, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (60, 2))], 1).astype(np.float32)
    scores = rng.random(60).astype(np.float32)
    idxs = rng.integers(0, 4, 60)
    keep = batched_nms(boxes, scores, idxs, 0.4, impl=impl)
    per_class = np.concatenate([np.flatnonzero(idxs == c)[nms(boxes[idxs == c], scores[idxs == c],
                                                              0.4, impl=impl)]
                                for c in range(4)])
    np.testing.assert_array_equal(np.sort(keep), np.sort(per_class))
    assert (np.diff(scores[keep]) <= 0).all()


def test_batched_nms_empty_input():
    """Kind: batched_nms with no boxes -> empty int64."""
    keep = batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), 0.5)
    assert keep.shape == (0,) and keep.dtype == np.int64


# ------------------------------------------------------------------ box ops
def test_box_iou_of_degenerate_boxes():
    """Kind: degenerate (zero-area) boxes -- IoU 0 against anything, never NaN (documented
    difference: torchvision gives 0/0 = NaN for two identical empty boxes)."""
    normal = np.array([[0, 0, 10, 10]], np.float32)
    degenerate = np.array([[5, 5, 5, 5], [0, 0, 10, 0]], np.float32)
    iou = box_iou(degenerate, np.concatenate([normal, degenerate]))
    assert not np.isnan(iou).any() and not iou.any()
    assert box_iou(normal, normal)[0, 0] == 1


def test_box_area_of_degenerate_and_inverted_boxes():
    """Kind: zero-size boxes have area 0; an inverted box keeps its sign (no clamping)."""
    np.testing.assert_array_equal(box_area(np.array([[1, 1, 1, 5], [0, 0, 4, 0], [4, 0, 0, 3]],
                                                    np.float32)), [0, 0, -12])


def test_box_ops_on_empty_inputs():
    """Kind: empty box sets keep their shapes."""
    e = np.zeros((0, 4), np.float32)
    assert box_area(e).shape == (0,)
    assert box_iou(e, np.zeros((3, 4), np.float32)).shape == (0, 3)
    assert box_convert(e, "xyxy", "cxcywh").shape == (0, 4)


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_box_convert_then_box_area_is_invariant(fmt):
    """Kind: converting away and back changes no area, and w * h is the area."""
    boxes = np.array([[1, 2, 4, 8], [0, 0, 0.5, 0.25]], np.float64)
    other = box_convert(boxes, "xyxy", fmt)
    np.testing.assert_allclose(other[:, 2] * other[:, 3], box_area(boxes))
    np.testing.assert_allclose(box_area(box_convert(other, fmt, "xyxy")), box_area(boxes))
