"""box_area, box_iou, clip_boxes_to_image, remove_small_boxes, BoxCoder."""

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mrcnn_np.ops import BoxCoder, box_area, box_iou, clip_boxes_to_image, remove_small_boxes

FIX = np.load(Path(__file__).parents[1] / "fixtures" / "geometry.npz", allow_pickle=False)
IMPLS = ["reference", "numpy", "numba"]


def valid_boxes(max_n=12, min_side=0.0):
    """Strategy: (n, 4) float32 boxes with x2 >= x1 + min_side, y2 >= y1 + min_side."""
    coords = st.floats(0, 200, width=32)
    sides = st.floats(min_side, 100, width=32)

    @st.composite
    def build(draw):
        n = draw(st.integers(0, max_n))
        xy = draw(arrays(np.float32, (n, 2), elements=coords))
        wh = draw(arrays(np.float32, (n, 2), elements=sides))
        return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    return build()


# ------------------------------------------------------------------ hand-computed cases

def test_box_area_hand():
    boxes = np.array([[0, 0, 2, 3], [1, 1, 1, 5], [4, 4, 2, 2]], dtype=np.float32)
    np.testing.assert_array_equal(box_area(boxes), [6, 0, 4])  # inverted: (-2)*(-2), no clamp


@pytest.mark.parametrize("impl", IMPLS)
def test_box_iou_hand(impl):
    a = np.array([[0, 0, 10, 10]], dtype=np.float32)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 5, 5]], dtype=np.float32)
    iou = box_iou(a, b, impl=impl)
    # overlap 50 / union 150; identical; disjoint; contained 25 / 100
    np.testing.assert_allclose(iou, [[1 / 3, 1, 0, 0.25]], rtol=1e-6)
    assert iou.dtype == np.float32 and iou.shape == (1, 4)


@pytest.mark.parametrize("impl", IMPLS)
def test_box_iou_degenerate_is_zero_not_nan(impl):
    # documented difference from torchvision: two empty boxes -> 0 (tv: NaN)
    empty = np.array([[7, 7, 7, 7], [5, 5, 5, 20]], dtype=np.float32)
    iou = box_iou(empty, np.concatenate([empty, [[0, 0, 10, 10]]]).astype(np.float32), impl=impl)
    assert not np.isnan(iou).any()
    np.testing.assert_array_equal(iou, np.zeros((2, 3)))


@pytest.mark.parametrize("impl", IMPLS)
def test_box_iou_empty_inputs(impl):
    b = np.zeros((3, 4), np.float32)
    assert box_iou(np.zeros((0, 4), np.float32), b, impl=impl).shape == (0, 3)
    out = box_iou(b, np.zeros((0, 4), np.float64), impl=impl)
    assert out.shape == (3, 0) and out.dtype == np.float64


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((3, 5), np.float32), "shape"),
    (np.zeros((3,), np.float32), "shape"),
    (np.zeros((3, 4), bool), "dtype"),  # integer boxes are accepted, as torchvision
    (np.array([[0, 0, np.nan, 1]], np.float32), "NaN"),
])
def test_box_iou_bad_input(bad, msg):
    with pytest.raises(ValueError, match=msg):
        box_iou(bad, np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="boxes2"):
        box_iou(np.zeros((1, 4), np.float32), bad)


def test_box_iou_float64_and_float16():
    a = np.array([[0, 0, 10, 10]], np.float64)
    assert box_iou(a, a).dtype == np.float64
    assert box_iou(a.astype(np.float16), a.astype(np.float16)).dtype == np.float32


def test_clip_and_remove_small_hand():
    boxes = np.array([[-5, -5, 300, 50], [10, 20, 30, 130]], dtype=np.float32)
    np.testing.assert_array_equal(clip_boxes_to_image(boxes, (120, 200)), [[0, 0, 200, 50], [10, 20, 30, 120]])
    # inclusive boundary: a 1 x 1 box is kept at min_size 1, a 0.999-wide one is not
    small = np.array([[0, 0, 1, 1], [0, 0, 0.999, 5], [0, 0, 5, 0.999]], dtype=np.float32)
    keep = remove_small_boxes(small, 1.0)
    np.testing.assert_array_equal(keep, [0])
    assert keep.dtype == np.int64
    assert remove_small_boxes(np.zeros((0, 4), np.float32), 1.0).shape == (0,)
    with pytest.raises(ValueError, match="size"):
        clip_boxes_to_image(boxes, (120,))


def test_box_coder_verified_examples():
    coder = BoxCoder((10, 10, 5, 5))
    ref = np.array([[10, 20, 50, 80]], np.float32)
    prop = np.array([[12, 18, 48, 90]], np.float32)
    enc = coder.encode(ref, prop)
    np.testing.assert_allclose(enc, [[0.0, -0.555556, 0.526803, -0.911608]], atol=1e-6)
    np.testing.assert_allclose(coder.decode(enc, prop)[:, 0], ref, atol=1e-4)
    dec = coder.decode(np.array([[0, 0, 100, 100]], np.float32), [prop])
    assert dec.shape == (1, 1, 4)
    np.testing.assert_allclose(dec[0, 0], [-1095.0001, -2196.0002, 1155.0001, 2304.0002], rtol=1e-6)
    assert math.isclose(coder.bbox_xform_clip, 4.135166556742356)


def test_box_coder_lists_and_shapes():
    coder = BoxCoder((1, 1, 1, 1))
    a = np.array([[0, 0, 10, 10], [5, 5, 20, 30]], np.float32)
    b = np.array([[1, 1, 9, 12]], np.float32)
    enc = coder.encode([a, b], [a + 1, b + 2])
    assert isinstance(enc, tuple) and [e.shape for e in enc] == [(2, 4), (1, 4)]
    dec = coder.decode(np.zeros((3, 8), np.float32), [a, b])  # k = 2 boxes per row
    assert dec.shape == (3, 2, 4)
    np.testing.assert_allclose(dec[:, 1], np.concatenate([a, b]), atol=1e-5)
    with pytest.raises(ValueError, match="4k"):
        coder.decode(np.zeros((3, 5), np.float32), np.concatenate([a, b]))
    with pytest.raises(ValueError, match="rows"):
        coder.decode(np.zeros((2, 4), np.float32), np.concatenate([a, b]))
    with pytest.raises(ValueError, match="weights"):
        BoxCoder((1, 1, 1))


# ----------------------------------------------------------------------- properties

@given(valid_boxes(), valid_boxes())
def test_iou_symmetric_in_range_and_impls_agree(b1, b2):
    iou = box_iou(b1, b2, impl="numba")
    np.testing.assert_array_equal(iou, box_iou(b2, b1, impl="numba").T)
    assert ((iou >= 0) & (iou <= 1)).all()
    np.testing.assert_allclose(box_iou(b1, b2, impl="numpy"), iou, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(box_iou(b1, b2, impl="reference"), iou, rtol=1e-6, atol=1e-7)


@given(valid_boxes(min_side=0.25))
def test_iou_self_is_one(b):
    np.testing.assert_allclose(np.diag(box_iou(b, b)), 1.0, rtol=1e-6)


@given(valid_boxes(min_side=1.0), st.sampled_from([(1, 1, 1, 1), (10, 10, 5, 5)]))
def test_encode_decode_round_trip(b, weights):
    b = b.astype(np.float64)
    coder = BoxCoder(weights)
    anchors = b + np.array([3.0, -2.0, 10.0, 5.0])  # still positive size
    codes = coder.encode(b, anchors)
    np.testing.assert_allclose(coder.decode(codes, anchors)[:, 0], b, atol=1e-6)


# ---------------------------------------------------------------- golden (torchvision)

@pytest.mark.parametrize("impl", IMPLS)
def test_box_iou_golden(impl):
    ours = box_iou(FIX["iou_boxes1"], FIX["iou_boxes2"], impl=impl)
    tv = FIX["iou"]
    nan = np.isnan(tv)
    assert nan.sum() == 3  # [7,7,7,7] vs the three zero-area boxes: 0 / 0 in torchvision
    np.testing.assert_array_equal(ours[nan], 0.0)
    np.testing.assert_allclose(ours[~nan], tv[~nan], rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["rpn", "box"])
def test_box_coder_golden(name):
    weights = (1, 1, 1, 1) if name == "rpn" else (10, 10, 5, 5)
    coder = BoxCoder(weights)
    enc = coder.encode([FIX["coder_references"]], [FIX["coder_proposals"]])[0]
    np.testing.assert_allclose(enc, FIX[f"coder_{name}_encoded"], rtol=1e-5, atol=1e-6)
    dec = coder.decode(FIX["coder_deltas"], [FIX["coder_proposals"]])
    np.testing.assert_allclose(dec, FIX[f"coder_{name}_decoded"], rtol=1e-6, atol=1e-3)


def test_clip_small_golden():
    np.testing.assert_array_equal(remove_small_boxes(FIX["small_boxes"], 1.0), FIX["small_keep"])
    np.testing.assert_array_equal(clip_boxes_to_image(FIX["clip_boxes"], (120, 200)), FIX["clip_out"])


@pytest.mark.reference
def test_box_ops_live_torchvision(rng):
    import torch
    import torchvision
    from torchvision.models.detection._utils import BoxCoder as TvCoder
    xy = rng.uniform(0, 300, (64, 2))
    b = np.concatenate([xy, xy + rng.uniform(1, 80, (64, 2))], 1).astype(np.float32)
    tb = torch.from_numpy(b)
    np.testing.assert_allclose(box_iou(b[:30], b[30:]), torchvision.ops.box_iou(tb[:30], tb[30:]).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(box_area(b), torchvision.ops.box_area(tb).numpy())
    d = rng.normal(0, 1, (64, 8)).astype(np.float32)
    ours = BoxCoder((10, 10, 5, 5)).decode(d, b)
    theirs = TvCoder((10, 10, 5, 5)).decode(torch.from_numpy(d), [tb]).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-4)
