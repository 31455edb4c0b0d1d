"""The input forms a torchvision user swaps in (issue "Bad input never crashes, lies or
loses data", item 13): RoI boxes as a list of per-image (K_i, 4) arrays, float16 features,
integer boxes in box_area / box_iou, box_convert and masks_to_boxes.

Our own tests, modelled on the kinds of case torchvision's test_ops.py checks (list vs
tensor RoIs, empty inputs, dtypes, format round trips, degenerate masks)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mrcnn_np.ops import (box_area, box_convert, box_iou, masks_to_boxes, roi_align,
                          roi_align_backward, roi_pool, roi_pool_backward, roi_warp,
                          roi_warp_backward)

from ._roi_cases import ALL

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 9, 11)).astype(np.float32)
PER_IMAGE = [np.array([[0.5, 1.0, 6.2, 7.5], [2, 2, 3, 3]], np.float32),
             np.array([[1.0, 0.0, 10.0, 8.0]], np.float32)]
AS_ROIS = np.array([[0, 0.5, 1.0, 6.2, 7.5], [0, 2, 2, 3, 3], [1, 1.0, 0.0, 10.0, 8.0]], np.float32)

OPS = {
    "roi_align": (lambda x, r, **k: roi_align(x, r, (3, 2), 0.5, 2, True, **k),
                  lambda g, r, **k: roi_align_backward(g, r, X.shape, (3, 2), 0.5, 2, True, **k)),
    "roi_pool": (lambda x, r, **k: roi_pool(x, r, (3, 2), 0.5, **k),
                 lambda g, r, **k: roi_pool_backward(g, r, X.shape, (3, 2), 0.5, **k)),
    "roi_warp": (lambda x, r, **k: roi_warp(x, r, (3, 2), 0.5, 2, **k),
                 lambda g, r, **k: roi_warp_backward(g, r, X.shape, (3, 2), 0.5, 2, **k)),
}


# ------------------------------------------------------------------ boxes as a list
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("impl", ALL)
def test_boxes_as_list_equal_the_rois_form(op, impl):
    """A list of per-image boxes is the (K, 5) form with the list index as batch index."""
    fwd, bwd = OPS[op]
    out_l, am_l = fwd(X, PER_IMAGE, return_argmax=True, impl=impl)
    out_r, am_r = fwd(X, AS_ROIS, return_argmax=True, impl=impl)
    np.testing.assert_array_equal(out_l, out_r)
    np.testing.assert_array_equal(am_l, am_r)
    g = RNG.standard_normal(out_r.shape).astype(np.float32)
    kw = {} if op == "roi_align" else {"argmax": am_r}
    np.testing.assert_array_equal(bwd(g, PER_IMAGE, impl=impl, **kw),
                                  bwd(g, AS_ROIS, impl=impl, **kw))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("boxes", [[], [np.zeros((0, 4), np.float32)],
                                   [np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32)]],
                         ids=["empty list", "one empty image", "two empty images"])
def test_empty_box_lists_give_empty_outputs(op, boxes):
    out = OPS[op][0](X, boxes)
    assert out.shape == (0, 3, 3, 2) and out.dtype == np.float32


def test_boxes_list_with_a_bad_entry_names_it():
    with pytest.raises(ValueError, match=r"rois\[1\]"):
        roi_align(X, [PER_IMAGE[0], np.zeros((2, 5), np.float32)], 2)
    with pytest.raises(ValueError, match="batch"):  # three images of boxes for two images
        roi_pool(X, PER_IMAGE + [PER_IMAGE[1]], 2)


# ------------------------------------------------------------------ float16
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("impl", ALL)
def test_float16_is_computed_in_float32_and_returned_as_float16(op, impl):
    fwd, bwd = OPS[op]
    half = X.astype(np.float16)
    out, am = fwd(half, AS_ROIS, return_argmax=True, impl=impl)
    want, want_am = fwd(half.astype(np.float32), AS_ROIS, return_argmax=True, impl=impl)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, want.astype(np.float16))
    np.testing.assert_array_equal(am, want_am)
    g = np.ones(out.shape, np.float16)
    kw = {} if op == "roi_align" else {"argmax": am}
    gin = bwd(g, AS_ROIS, impl=impl, **kw)
    assert gin.dtype == np.float16 and gin.shape == X.shape
    np.testing.assert_array_equal(gin, bwd(g.astype(np.float32), AS_ROIS, impl=impl,
                                           **kw).astype(np.float16))


# ------------------------------------------------------------------ integer boxes
@pytest.mark.parametrize("dtype, area_dtype", [(np.int64, np.int64), (np.int32, np.int32),
                                               (np.int16, np.int32), (np.uint8, np.int32)])
def test_box_area_of_integer_boxes_is_an_integer_area(dtype, area_dtype):
    """Narrow integers are widened to int32 first, so 200 x 200 in uint8 does not wrap."""
    boxes = np.array([[0, 0, 200, 200], [10, 20, 13, 24], [5, 5, 5, 9]], dtype)
    area = box_area(boxes)
    assert area.dtype == area_dtype
    np.testing.assert_array_equal(area, [40000, 12, 0])


@pytest.mark.parametrize("impl", ["reference", "numpy", "numba"])
def test_box_iou_of_integer_boxes_equals_the_float_result(impl):
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [3, 3, 3, 8]], np.int64)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [3, 3, 3, 8]], np.int32)
    iou = box_iou(a, b, impl=impl)
    assert iou.dtype == np.float32
    np.testing.assert_allclose(iou, box_iou(a.astype(np.float64), b.astype(np.float64)),
                               rtol=1e-7)
    np.testing.assert_allclose(iou[:, 0], [1, 25 / 175, 0], rtol=1e-6)
    assert iou[2, 2] == 0  # two identical degenerate boxes: 0, not 0/0 (documented)


def test_box_iou_mixed_integer_and_float_boxes():
    iou = box_iou(np.array([[0, 0, 2, 2]], np.int64), np.array([[1, 1, 3, 3]], np.float64))
    assert iou.dtype == np.float32 and iou[0, 0] == pytest.approx(1 / 7)


# ------------------------------------------------------------------ box_convert
def test_box_convert_worked_numbers():
    xyxy = np.array([[10, 20, 30, 60], [0, 0, 0, 0]], np.float32)
    np.testing.assert_array_equal(box_convert(xyxy, "xyxy", "xywh"), [[10, 20, 20, 40], [0, 0, 0, 0]])
    np.testing.assert_array_equal(box_convert(xyxy, "xyxy", "cxcywh"), [[20, 40, 20, 40], [0, 0, 0, 0]])
    np.testing.assert_array_equal(box_convert([[20, 40, 20, 40]], "cxcywh", "xywh"), [[10, 20, 20, 40]])
    same = box_convert(xyxy, "xyxy", "xyxy")
    np.testing.assert_array_equal(same, xyxy)
    assert same is not xyxy and same.dtype == np.float32
    assert box_convert(np.zeros((0, 4), np.float64), "xywh", "cxcywh").shape == (0, 4)
    half = box_convert(np.array([[1, 1, 2, 2]], np.int64), "xyxy", "cxcywh")
    np.testing.assert_array_equal(half, [[1.5, 1.5, 1, 1]])  # integers: converted in float64


@given(arrays(np.float64, (7, 4), elements=st.floats(-1e3, 1e3)),
       st.sampled_from(["xyxy", "xywh", "cxcywh"]), st.sampled_from(["xyxy", "xywh", "cxcywh"]))
def test_box_convert_round_trip(boxes, a, b):
    back = box_convert(box_convert(boxes, a, b), b, a)
    np.testing.assert_allclose(back, boxes, rtol=1e-12, atol=1e-9)


def test_box_convert_bad_format_names_the_argument():
    with pytest.raises(ValueError, match="in_fmt"):
        box_convert(np.zeros((1, 4)), "xyzw", "xyxy")
    with pytest.raises(ValueError, match="out_fmt"):
        box_convert(np.zeros((1, 4)), "xyxy", "ccwh")
    with pytest.raises(ValueError, match="boxes"):
        box_convert(np.zeros((1, 3)), "xyxy", "xywh")


# ------------------------------------------------------------------ masks_to_boxes
def test_masks_to_boxes_worked_numbers():
    masks = np.zeros((4, 5, 6), bool)
    masks[0, 1:4, 2:5] = True           # rows 1..3, cols 2..4
    masks[1, 2, 3] = True               # one pixel: x1 == x2, y1 == y2
    masks[2, 0, 0] = masks[2, 4, 5] = True  # two far corners
    boxes = masks_to_boxes(masks)       # masks[3] is empty
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes, [[2, 1, 4, 3], [3, 2, 3, 2], [0, 0, 5, 4], [0, 0, 0, 0]])


def test_masks_to_boxes_takes_any_nonzero_value_and_empty_stacks():
    m = np.zeros((1, 3, 3), np.float32)
    m[0, 1, 2] = 0.25
    np.testing.assert_array_equal(masks_to_boxes(m), [[2, 1, 2, 1]])
    assert masks_to_boxes(np.zeros((0, 4, 4), np.uint8)).shape == (0, 4)
    with pytest.raises(ValueError, match="masks"):
        masks_to_boxes(np.zeros((4, 4)))


@given(arrays(np.bool_, (3, 6, 7)))
def test_masks_to_boxes_is_the_tight_box(masks):
    for m, (x1, y1, x2, y2) in zip(masks, masks_to_boxes(masks)):
        ys, xs = np.nonzero(m)
        if len(ys):
            assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max(), ys.max())
        else:
            assert (x1, y1, x2, y2) == (0, 0, 0, 0)
