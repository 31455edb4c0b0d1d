"""RoIWarp: RoIPool's rounded corners + RoIAlign's bilinear bins (Mask R-CNN Table 2c)."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mrcnn_np.ops import quantize_rois, roi_align, roi_warp, roi_warp_backward

from ._roi_cases import ALL, IMPLS_FAST, adaptive_grid_ok, roi_problem
from mrcnn_np.autodiff.gradcheck import numerical_gradient

ARANGE = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)


def test_quantize_rois_uses_c_rounding():
    rois = np.array([[0, 3.0, -1.0, 5.0, -3.0], [1, 2.9, 1.1, 0.99, 7.0]], np.float32)
    np.testing.assert_array_equal(quantize_rois(rois, 0.5),
                                  [[0, 2, -1, 3, -2], [1, 1, 1, 0, 4]])  # 1.5->2, -0.5->-1, 2.5->3


@pytest.mark.parametrize("impl", ALL)
def test_hand_values(impl):
    # [1, 1, 3, 3]: 2 x 2 samples at 1.5 and 2.5 -> values 9, 10, 14, 15
    box = np.array([[0, 1, 1, 3, 3]], np.float32)
    assert roi_warp(ARANGE, box, 1, 1.0, 2, aggregation="avg", impl=impl).item() == 12.0
    assert roi_warp(ARANGE, box, 1, 1.0, 2, aggregation="max", impl=impl).item() == 15.0
    # a box that rounds to the same cells pools the same features: the misalignment
    moved = np.array([[0, 0.6, 0.6, 3.4, 3.4]], np.float32)
    assert roi_warp(ARANGE, moved, 1, 1.0, 2, aggregation="avg", impl=impl).item() == 12.0
    assert roi_align(ARANGE, moved, 1, 1.0, 2, impl=impl).item() != 12.0


@pytest.mark.parametrize("aggregation", ["avg", "max"])
def test_equals_roi_align_on_quantized_boxes(rng, aggregation):
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    xy = rng.uniform(-8, 30, (20, 2))
    rois = np.concatenate([rng.integers(0, 2, (20, 1)), xy, xy + rng.uniform(0, 20, (20, 2))],
                          1).astype(np.float32)
    warp = roi_warp(x, rois, (3, 4), 0.5, 2, aggregation=aggregation)
    q = np.concatenate([rois[:, :1], np.sign(rois[:, 1:] * 0.5)
                        * np.floor(np.abs(rois[:, 1:] * 0.5) + 0.5)], 1)  # exact for these
    align = roi_align(x, q, (3, 4), 1.0, 2, False, aggregation=aggregation)
    np.testing.assert_array_equal(warp, align)


@given(problem=roi_problem(), sr=st.integers(-1, 4), aggregation=st.sampled_from(["avg", "max"]))
def test_twins_equal_reference(problem, sr, aggregation):
    x, rois, size, scale, rng = problem
    assume(sr > 0 or adaptive_grid_ok(quantize_rois(rois, scale), 1.0, size, False))
    out_r, am_r = roi_warp(x, rois, size, scale, sr, aggregation=aggregation,
                           return_argmax=True, impl="reference")
    g = rng.standard_normal(out_r.shape).astype(x.dtype)
    gin_r = roi_warp_backward(g, rois, x.shape, size, scale, sr, aggregation=aggregation,
                              argmax=am_r, impl="reference")
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    for impl in IMPLS_FAST:
        out, am = roi_warp(x, rois, size, scale, sr, aggregation=aggregation,
                           return_argmax=True, impl=impl)
        assert out.dtype == x.dtype
        np.testing.assert_allclose(out, out_r, rtol=0, atol=tol)
        np.testing.assert_array_equal(am, am_r)
        gin = roi_warp_backward(g, rois, x.shape, size, scale, sr, aggregation=aggregation,
                                argmax=am, impl=impl)
        np.testing.assert_allclose(gin, gin_r, rtol=0, atol=tol * 10)


def test_insensitive_to_sub_cell_shifts(rng):
    """The RoI is rounded first, so moving it by less than the rounding changes nothing."""
    x = rng.standard_normal((1, 2, 12, 12))
    rois = np.array([[0, 8.0, 8.0, 28.0, 24.0]])  # stride 4: cells 2, 2, 7, 6; shifts < 2 px round back
    for d in (-1.5, 0.7, 1.9):
        np.testing.assert_array_equal(roi_warp(x, rois + [0, d, d, d, d], 3, 0.25),
                                      roi_warp(x, rois, 3, 0.25))


@pytest.mark.parametrize("impl", ALL)
@pytest.mark.parametrize("aggregation", ["avg", "max"])
def test_finite_difference_gradient(rng, impl, aggregation):
    x = rng.standard_normal((1, 2, 6, 7))
    rois = np.array([[0, 0.3, 1.2, 9.7, 11.1], [0, -3.1, -2.2, 6.4, 4.4]])
    g = rng.standard_normal((2, 2, 2, 3))
    kw = dict(output_size=(2, 3), spatial_scale=0.5, sampling_ratio=3, aggregation=aggregation)
    _, am = roi_warp(x, rois, return_argmax=True, impl=impl, **kw)
    analytic = roi_warp_backward(g, rois, x.shape, argmax=am, impl=impl, **kw)
    numeric = numerical_gradient(lambda v: roi_warp(v, rois, **kw), [x.copy()], 0, g)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)
