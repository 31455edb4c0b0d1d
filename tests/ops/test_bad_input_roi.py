"""Bad or extreme input to the RoI ops and NMS: every twin, the CUDA one included, answers
the same -- a clear error or the same documented result (issue "Bad input never crashes,
lies or loses data", items 8 and 10)."""

import numpy as np
import pytest

from mrcnn_np.ops import nms, roi_align, roi_align_backward, roi_pool, roi_warp

from ._roi_cases import ALL, ALL_RUNNABLE

X = np.arange(2 * 25, dtype=np.float32).reshape(1, 2, 5, 5)
ZERO_SIZE = np.array([[0, 2, 2, 2, 2]], np.float32)  # aligned + adaptive: no sample at all


# ------------------------------------------------------------------ item 8: max argmax
@pytest.mark.parametrize("impl", ALL)
def test_max_backward_of_zero_size_aligned_roi_is_zero(impl):
    """The forward gives argmax -1 (no sample); the backward passes nothing back, no crash."""
    out, am = roi_align(X, ZERO_SIZE, 2, 1.0, -1, True, aggregation="max", return_argmax=True,
                        impl=impl)
    assert not out.any() and (am == -1).all()
    g = roi_align_backward(np.ones_like(out), ZERO_SIZE, X.shape, 2, 1.0, -1, True,
                           aggregation="max", argmax=am, impl=impl)
    assert g.shape == X.shape and not g.any()


@pytest.mark.parametrize("impl", ALL)
@pytest.mark.parametrize("rois, sr, aligned, bad", [
    (ZERO_SIZE, -1, True, 0),                               # no sample: only -1 is valid
    (np.array([[0, 0, 0, 4, 4]], np.float32), 2, False, 4),   # 2 x 2 grid: 0..3
    (np.array([[0, 0, 0, 4, 4]], np.float32), 2, False, -2),  # below -1
])
def test_out_of_range_argmax_is_refused(impl, rois, sr, aligned, bad):
    """An argmax naming no sample of its bin raises a ValueError naming argmax (the CUDA
    kernel, given it, divided by a zero grid width -- SIGFPE -- or read out of its bin)."""
    g = np.ones((1, 2, 2, 2), np.float32)
    am = np.full(g.shape, bad, np.int32)
    with pytest.raises(ValueError, match="argmax"):
        roi_align_backward(g, rois, X.shape, 2, 1.0, sr, aligned, aggregation="max", argmax=am,
                           impl=impl)


# ------------------------------------------------------------------ item 10: huge coordinates
HUGE = [
    [0, -3e38, -3e38, 3e38, 3e38],
    [0, 3e38, 3e38, 3e38, 3e38],
    [0, 0, 0, 3e38, 3e38],
    [0, -3e38, 0, 1, 1],
    [0, 1, 1, 3, 3],                    # an ordinary RoI next to them
]


@pytest.mark.parametrize("scale", [1.0, 2.0])   # 3e38 * 2 overflows float32 to inf
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_coordinates_agree_in_every_twin(scale, dtype):
    """Coordinates near the float limit: no OverflowError, no hang, the same numbers
    everywhere (an adaptive grid beyond 2**31 - 1 samples gets none; RoIPool's rounded
    corners are clamped to +-2**29 cells)."""
    x, rois = X.astype(dtype), np.array(HUGE, dtype)
    calls = {
        "align adaptive": lambda i: roi_align(x, rois, 2, scale, -1, False, impl=i),
        "align aligned": lambda i: roi_align(x, rois, 2, scale, 0, True, impl=i),
        "align sr=2": lambda i: roi_align(x, rois, 2, scale, 2, False, impl=i),
        "align max": lambda i: roi_align(x, rois, 2, scale, -1, True, aggregation="max", impl=i),
        "pool": lambda i: roi_pool(x, rois, 2, scale, impl=i),
    }
    for name, call in calls.items():
        with np.errstate(all="ignore"):
            results = {impl: call(impl) for impl in ALL_RUNNABLE}
        want = results["reference"]
        assert np.isfinite(want).all(), name
        for impl, got in results.items():
            np.testing.assert_array_equal(got, want, err_msg=f"{name}, impl={impl}")
    # the ordinary RoI is unaffected by its neighbours
    np.testing.assert_array_equal(calls["pool"]("numba")[4], roi_pool(x, rois[4:], 2, scale)[0])


def test_roi_warp_of_overflowing_rois_names_the_rois():
    """RoIWarp rounds the scaled corners first; ones that overflow to inf are refused."""
    rois = np.array([[0, 0, 0, 3e38, 3e38]], np.float32)
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="rois"):
        roi_warp(X, rois, 2, 2.0)


# ------------------------------------------------------------------ item 10: nms threshold
@pytest.mark.parametrize("impl", ALL)
@pytest.mark.parametrize("bad", [None, "high", [0.5]])
def test_nms_threshold_that_is_not_a_number_names_the_argument(impl, bad):
    boxes = np.array([[0, 0, 1, 1]], np.float32)
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(boxes, np.ones(1, np.float32), bad, impl=impl)


# ------------------------------------------------------------------ no hang on enormous RoIs
@pytest.mark.parametrize("impl", ["reference", "numpy", "numba"])
def test_an_enormous_finite_roi_with_adaptive_sampling_is_refused_not_a_hang(impl):
    """A 1e9-pixel RoI with adaptive sampling would read ~1e16 samples per bin (hours in every
    twin); it is refused, naming the RoI, and a positive sampling_ratio still works."""
    rois = np.array([[0, 1, 1, 3, 3], [0, 0, 0, 1e9, 1e9]], np.float32)
    with pytest.raises(ValueError, match=r"rois\[1\].*sampling_ratio"):
        roi_align(X, rois, 2, 1.0, -1, False, impl=impl)
    with pytest.raises(ValueError, match=r"rois\[1\]"):
        roi_align_backward(np.ones((2, X.shape[1], 2, 2), np.float32), rois, X.shape, 2, 1.0, 0, True, impl=impl)
    assert np.isfinite(roi_align(X, rois, 2, 1.0, 2, False, impl=impl)).all()
