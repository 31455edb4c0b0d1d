"""RoIPool: C rounding, bins, empty bins, ties, twins == reference, gradients, golden values."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

from mrcnn_np.ops import roi_pool, roi_pool_backward
from mrcnn_np.ops.bilinear import c_round

from ._roi_cases import ALL, ALL_RUNNABLE, IMPLS_FAST, roi_problem
from mrcnn_np.autodiff.gradcheck import numerical_gradient

FIXTURE = Path(__file__).parents[1] / "fixtures" / "roi.npz"
ARANGE6 = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)


def test_c_round_halves_away_from_zero():
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.49999997, 2.4, -2.6], np.float32)
    np.testing.assert_array_equal(c_round(v), [1, 2, 3, -1, -2, -3, 0, 0, 2, -3])
    assert not np.array_equal(np.round(v[:6]), c_round(v[:6]))  # why np.round is not used


@pytest.mark.parametrize("impl", ALL)
def test_reference_values(impl):
    r = lambda *b: np.array([[0, *b]], np.float32)  # noqa: E731
    # an RoI smaller than the grid repeats pixels
    np.testing.assert_array_equal(roi_pool(ARANGE6, r(1, 1, 2, 2), 3, impl=impl)[0, 0],
                                  [[7, 8, 8], [13, 14, 14], [13, 14, 14]])
    # C rounding: 0.5 -> 1 and 2.5 -> 3 (np.round would give 0 and 2)
    np.testing.assert_array_equal(roi_pool(ARANGE6, r(0.5, 0.5, 2.5, 2.5), 2, impl=impl)[0, 0],
                                  [[14, 15], [20, 21]])
    # negative halves: -0.5 -> -1, 0.5 -> 1: rows/cols -1..1 clipped to 0..1 -> max 7
    assert roi_pool(ARANGE6, r(-0.5, -0.5, 0.5, 0.5), 1, impl=impl).item() == 7
    # fully outside: all bins empty -> 0 and argmax -1
    out, am = roi_pool(ARANGE6, r(10, 10, 12, 12), 2, return_argmax=True, impl=impl)
    assert not out.any() and (am == -1).all()


@pytest.mark.parametrize("impl", ALL)
def test_ties_keep_first_and_lowest(impl):
    x = np.full((1, 1, 3, 3), 5.0, np.float32)
    out, am = roi_pool(x, np.array([[0, 0, 0, 2, 2]], np.float32), 1, return_argmax=True, impl=impl)
    assert out.item() == 5 and am.item() == 0  # scan order: the first pixel wins
    x = np.full((1, 1, 2, 2), -np.inf, np.float32)
    out, am = roi_pool(x, np.array([[0, 0, 0, 1, 1]], np.float32), 1, return_argmax=True, impl=impl)
    assert out.item() == -np.finfo(np.float32).max and am.item() == -1


@pytest.mark.parametrize("impl", ALL)
def test_fixture_forward_argmax_backward(impl):
    d = np.load(FIXTURE)
    x, rois = d["pool_x"], d["pool_rois"]
    for ps in ((3, 3), (2, 4)):
        key = f"pool_{ps[0]}x{ps[1]}"
        out, am = roi_pool(x, rois, ps, 0.5, return_argmax=True, impl=impl)
        np.testing.assert_array_equal(out, d[key + "_out"])
        np.testing.assert_array_equal(am, d[key + "_argmax"])
        assert am.dtype == np.int32
        gin = roi_pool_backward(d[key + "_gout"], rois, x.shape, ps, 0.5, argmax=am, impl=impl)
        np.testing.assert_allclose(gin, d[key + "_gin"], rtol=0, atol=1e-6)


@given(problem=roi_problem())
def test_twins_equal_reference(problem):
    x, rois, size, scale, rng = problem
    x = np.round(x * 2) / 2  # repeated values: the tie rule is exercised too
    out_r, am_r = roi_pool(x, rois, size, scale, return_argmax=True, impl="reference")
    g = rng.standard_normal(out_r.shape).astype(x.dtype)
    gin_r = roi_pool_backward(g, rois, x.shape, size, scale, argmax=am_r, impl="reference")
    for impl in IMPLS_FAST:
        out, am = roi_pool(x, rois, size, scale, return_argmax=True, impl=impl)
        assert out.dtype == x.dtype
        np.testing.assert_array_equal(out, out_r)
        np.testing.assert_array_equal(am, am_r)
        gin = roi_pool_backward(g, rois, x.shape, size, scale, argmax=am, impl=impl)
        np.testing.assert_allclose(gin, gin_r, rtol=0, atol=1e-5)


@pytest.mark.parametrize("impl", ALL)
def test_finite_difference_gradient(rng, impl):
    x = rng.standard_normal((2, 2, 7, 8))  # distinct values: the argmax is stable
    rois = np.array([[0, 0.3, 1.2, 9.7, 11.1], [1, -3.1, -2.2, 6.4, 4.4], [1, 4.0, 4.0, 5.0, 5.0]])
    g = rng.standard_normal((3, 2, 3, 2))
    _, am = roi_pool(x, rois, (3, 2), 0.5, return_argmax=True, impl=impl)
    analytic = roi_pool_backward(g, rois, x.shape, (3, 2), 0.5, argmax=am, impl=impl)
    numeric = numerical_gradient(lambda v: roi_pool(v, rois, (3, 2), 0.5), [x.copy()], 0, g)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


def test_bad_inputs_raise():
    x = np.zeros((1, 1, 4, 4), np.float32)
    good = np.array([[0, 0, 0, 2, 2]], np.float32)
    with pytest.raises(ValueError, match="batch"):
        roi_pool(x, np.array([[2, 0, 0, 2, 2]], np.float32), 2)
    with pytest.raises(ValueError, match="output_size"):
        roi_pool(x, good, (2, -1))
    with pytest.raises(ValueError, match="argmax"):
        roi_pool_backward(np.zeros((1, 1, 2, 2), np.float32), good, x.shape, 2,
                          argmax=np.full((1, 1, 2, 2), 16))
    with pytest.raises(ValueError, match="input"):
        roi_pool(np.zeros((1, 1, 0, 4), np.float32), good, 2)


@pytest.mark.reference
def test_live_against_torchvision(rng):
    import torch
    import torchvision
    x = rng.standard_normal((2, 3, 11, 13)).astype(np.float32)
    xy = rng.uniform(-30, 60, (50, 2))
    wh = rng.uniform(-4, 50, (50, 2))
    rois = np.concatenate([rng.integers(0, 2, (50, 1)), np.round(xy * 2) / 2,
                           np.round((xy + wh) * 2) / 2], 1).astype(np.float32)  # many .5 ties
    ref, ref_am = torch.ops.torchvision.roi_pool(torch.from_numpy(x), torch.from_numpy(rois),
                                                 0.25, 4, 3)
    for impl in ALL_RUNNABLE:
        out, am = roi_pool(x, rois, (4, 3), 0.25, return_argmax=True, impl=impl)
        np.testing.assert_array_equal(out, ref.numpy())
        np.testing.assert_array_equal(am, ref_am.numpy())
