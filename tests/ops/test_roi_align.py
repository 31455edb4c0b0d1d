"""RoIAlign: hand-checkable values, twins agree with the reference, invariants, gradients,
golden values from torchvision (tests/fixtures/roi.npz) and live comparisons."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mrcnn_np.ops import roi_align, roi_align_backward

from ._roi_cases import ALL, ALL_RUNNABLE, IMPLS_FAST, adaptive_grid_ok, roi_problem
from mrcnn_np.autodiff.gradcheck import numerical_gradient

FIXTURE = Path(__file__).parents[1] / "fixtures" / "roi.npz"
ARANGE = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)


# ------------------------------------------------------------------ hand-checkable values
@pytest.mark.parametrize("impl", ALL)
def test_arange_5x5_golden(impl):
    box = np.array([[0, 1, 1, 3, 3]], np.float32)
    not_aligned = roi_align(ARANGE, box, 4, 1.0, 0, False, impl=impl)[0, 0]
    aligned = roi_align(ARANGE, box, 4, 1.0, 0, True, impl=impl)[0, 0]
    np.testing.assert_allclose(not_aligned, [[7.5, 8, 8.5, 9], [10, 10.5, 11, 11.5],
                                             [12.5, 13, 13.5, 14], [15, 15.5, 16, 16.5]])
    np.testing.assert_allclose(aligned, [[4.5, 5, 5.5, 6], [7, 7.5, 8, 8.5],
                                         [9.5, 10, 10.5, 11], [12, 12.5, 13, 13.5]])


@pytest.mark.parametrize("impl", ALL)
def test_zero_size_rois(impl):
    box = np.array([[0, 3, 4, 3, 4]], np.float32)
    # not aligned: forced to 1 x 1, one sample at (y=4.5 -> last row, x=3.5)
    assert roi_align(ARANGE, box, 1, 1.0, -1, False, impl=impl).item() == 23.5
    # aligned + adaptive: zero samples -> 0 everywhere
    assert not roi_align(ARANGE, box, 2, 1.0, -1, True, impl=impl).any()


@pytest.mark.parametrize("impl", ALL)
@pytest.mark.parametrize("y, expected", [(-1.0, 2.0), (-1.01, 0.0), (-0.5, 2.0), (4.8, 22.0),
                                         (5.0, 22.0), (5.2, 0.0), (2.25, 13.25)])
def test_border_rule_single_sample(impl, y, expected):
    """One sample (1 x 1 output, sampling 1) at (y, x=2): the border rules of the C++ kernel."""
    x = ARANGE.astype(np.float64)
    box = np.array([[0, 1.5, y - 0.5, 2.5, y + 0.5]])
    assert roi_align(x, box, 1, 1.0, 1, False, impl=impl).item() == pytest.approx(expected)


@pytest.mark.parametrize("impl", ALL)
def test_backward_golden(impl):
    g = roi_align_backward(np.ones((1, 1, 1, 1), np.float32),
                           np.array([[0, 0.5, 0.5, 2.5, 2.5]], np.float32), (1, 1, 5, 5), 1,
                           1.0, 2, False, impl=impl)
    expected = np.zeros((5, 5), np.float32)
    expected[1:3, 1:3] = 0.25
    np.testing.assert_allclose(g[0, 0], expected)


@pytest.mark.parametrize("impl", ALL)
def test_max_outside_and_empty_bins(impl):
    x = -np.ones((1, 1, 4, 4), np.float32)  # all values negative: an outside sample (0) wins
    out, am = roi_align(x, np.array([[0, 2.5, 2.5, 6.5, 6.5]], np.float32), 1, 1.0, 2,
                        aggregation="max", return_argmax=True, impl=impl)
    assert out.item() == 0.0 and am.item() == 1  # (iy=0, ix=1) at x=5.5 > W: first outside one
    g = roi_align_backward(np.ones_like(out), np.array([[0, 2.5, 2.5, 6.5, 6.5]], np.float32),
                           x.shape, 1, 1.0, 2, aggregation="max", argmax=am, impl=impl)
    assert not g.any()  # the winner read 0 from outside: nothing flows back
    # aligned, adaptive, zero-size: no samples at all -> 0 and argmax -1
    out, am = roi_align(x, np.array([[0, 1, 1, 1, 1]], np.float32), 2, 1.0, -1, True,
                        aggregation="max", return_argmax=True, impl=impl)
    assert not out.any() and (am == -1).all()


# ------------------------------------------------------------------ golden (torchvision)
@pytest.mark.parametrize("impl", ALL)
def test_fixture_forward_backward(impl):
    d = np.load(FIXTURE)
    x, rois = d["align_x"], d["align_rois"]
    for scale in (1.0, 0.5):
        for aligned in (False, True):
            for sr in (-1, 0, 1, 2, 3):
                key = f"align_s{scale}_a{int(aligned)}_sr{sr}"
                out = roi_align(x, rois, (3, 2), scale, sr, aligned, impl=impl)
                assert out.dtype == np.float32
                np.testing.assert_allclose(out, d[key + "_out"], rtol=0, atol=1e-6, err_msg=key)
                gin = roi_align_backward(d[key + "_gout"], rois, x.shape, (3, 2), scale, sr,
                                         aligned, impl=impl)
                np.testing.assert_allclose(gin, d[key + "_gin"], rtol=0, atol=1e-5, err_msg=key)


# ------------------------------------------------------------------ twins == reference
@given(problem=roi_problem(), aligned=st.booleans(), sr=st.integers(-1, 4),
       aggregation=st.sampled_from(["avg", "max"]))
def test_twins_equal_reference(problem, aligned, sr, aggregation):
    x, rois, size, scale, rng = problem
    assume(sr > 0 or adaptive_grid_ok(rois, scale, size, aligned))
    out_r, am_r = roi_align(x, rois, size, scale, sr, aligned, aggregation=aggregation,
                            return_argmax=True, impl="reference")
    g = rng.standard_normal(out_r.shape).astype(x.dtype)
    gin_r = roi_align_backward(g, rois, x.shape, size, scale, sr, aligned,
                               aggregation=aggregation, argmax=am_r, impl="reference")
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    for impl in IMPLS_FAST:
        out, am = roi_align(x, rois, size, scale, sr, aligned, aggregation=aggregation,
                            return_argmax=True, impl=impl)
        assert out.dtype == x.dtype and out.shape == (len(rois), x.shape[1], *size)
        np.testing.assert_allclose(out, out_r, rtol=0, atol=tol)
        np.testing.assert_array_equal(am, am_r)
        gin = roi_align_backward(g, rois, x.shape, size, scale, sr, aligned,
                                 aggregation=aggregation, argmax=am, impl=impl)
        assert gin.dtype == x.dtype
        np.testing.assert_allclose(gin, gin_r, rtol=0, atol=tol * 10)


@given(problem=roi_problem(), aligned=st.booleans(), sr=st.integers(-1, 4))
def test_backward_is_adjoint_of_forward(problem, aligned, sr):
    """<roi_align(x), g> == <x, roi_align_backward(g)>: avg RoIAlign is linear in x."""
    x, rois, size, scale, rng = problem
    x, rois = x.astype(np.float64), rois.astype(np.float64)
    out = roi_align(x, rois, size, scale, sr, aligned)
    g = rng.standard_normal(out.shape)
    gin = roi_align_backward(g, rois, x.shape, size, scale, sr, aligned)
    assert np.vdot(out, g) == pytest.approx(np.vdot(x, gin), rel=1e-9, abs=1e-9)


# ------------------------------------------------------------------ invariants
@given(seed=st.integers(0, 10**6), aligned=st.booleans(), sr=st.integers(0, 4),
       value=st.floats(-100, 100))
@settings(max_examples=30)
def test_constant_map_gives_constant_output(seed, aligned, sr, value):
    rng = np.random.default_rng(seed)
    x = np.full((1, 2, 9, 11), value)
    x1, y1 = rng.uniform(1, 5, 2)
    rois = np.array([[0, x1, y1, x1 + rng.uniform(1, 4), y1 + rng.uniform(1, 3)]])
    out = roi_align(x, rois, (2, 3), 1.0, sr, aligned)
    np.testing.assert_allclose(out, value, rtol=1e-12, atol=1e-12)


@given(problem=roi_problem(), aligned=st.booleans(), sr=st.integers(-1, 3),
       a=st.floats(-3, 3), b=st.floats(-3, 3))
@settings(max_examples=30)
def test_linear_in_input(problem, aligned, sr, a, b):
    x, rois, size, scale, rng = problem
    x, rois = x.astype(np.float64), rois.astype(np.float64)
    y = rng.standard_normal(x.shape)
    lhs = roi_align(a * x + b * y, rois, size, scale, sr, aligned)
    rhs = a * roi_align(x, rois, size, scale, sr, aligned) + b * roi_align(y, rois, size, scale, sr, aligned)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("aggregation", ["avg", "max"])
def test_translation_by_whole_cells(rng, aligned, aggregation):
    """Shifting the map content by (dy, dx) cells and the RoI by (dy, dx) strides is a no-op."""
    x = rng.standard_normal((1, 3, 20, 24))
    stride, dy, dx = 4, 3, 5
    rois = np.array([[0, 9.3, 7.1, 41.7, 30.2], [0, 4.0, 6.0, 20.5, 12.25]])
    shifted = np.zeros_like(x)
    shifted[:, :, dy:, dx:] = x[:, :, :-dy, :-dx]
    moved = rois + np.array([0, dx, dy, dx, dy]) * stride
    a = roi_align(x, rois, 3, 1 / stride, 2, aligned, aggregation=aggregation)
    b = roi_align(shifted, moved, 3, 1 / stride, 2, aligned, aggregation=aggregation)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ gradient checks
@pytest.mark.parametrize("impl", ALL)
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("aggregation", ["avg", "max"])
def test_finite_difference_gradient(rng, impl, aligned, aggregation):
    x = rng.standard_normal((2, 2, 6, 7))  # distinct values: a stable argmax
    # corners off the integer grid, so no sample sits on a kink of the bilinear weights
    rois = np.array([[0, 0.37, 0.61, 4.23, 3.89], [1, -1.33, 2.21, 3.17, 6.73],
                     [1, 2.11, 1.07, 2.43, 1.29]])
    g = rng.standard_normal((3, 2, 2, 3))
    kw = dict(output_size=(2, 3), spatial_scale=1.0, sampling_ratio=2, aligned=aligned,
              aggregation=aggregation)
    _, am = roi_align(x, rois, return_argmax=True, impl=impl, **kw)
    analytic = roi_align_backward(g, rois, x.shape, argmax=am, impl=impl, **kw)
    numeric = numerical_gradient(lambda v: roi_align(v, rois, impl="numpy", **kw), [x.copy()], 0, g)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ input checks
def test_bad_inputs_raise():
    x = np.zeros((1, 1, 4, 4), np.float32)
    good = np.array([[0, 0, 0, 2, 2]], np.float32)
    with pytest.raises(ValueError, match="input"):
        roi_align(np.zeros((1, 4, 4), np.float32), good, 2)
    with pytest.raises(ValueError, match="rois"):
        roi_align(x, good[:, :4], 2)
    with pytest.raises(ValueError, match="batch"):
        roi_align(x, np.array([[1, 0, 0, 2, 2]], np.float32), 2)
    with pytest.raises(ValueError, match="NaN"):
        roi_align(x, np.array([[0, np.nan, 0, 2, 2]], np.float32), 2)
    with pytest.raises(ValueError, match="output_size"):
        roi_align(x, good, 0)
    with pytest.raises(ValueError, match="aggregation"):
        roi_align(x, good, 2, aggregation="mean")
    with pytest.raises(ValueError, match="spatial_scale"):
        roi_align(x, good, 2, spatial_scale=0)
    with pytest.raises(ValueError, match="impl"):
        roi_align(x, good, 2, impl="fortran")
    with pytest.raises(ValueError, match="grad_output"):
        roi_align_backward(np.zeros((1, 1, 3, 3), np.float32), good, x.shape, 2)
    with pytest.raises(ValueError, match="argmax"):
        roi_align_backward(np.zeros((1, 1, 2, 2), np.float32), good, x.shape, 2, aggregation="max")


@pytest.mark.parametrize("impl", ALL)
def test_no_rois(impl):
    x = np.ones((1, 3, 4, 4), np.float32)
    out = roi_align(x, np.zeros((0, 5), np.float32), (2, 2), impl=impl)
    assert out.shape == (0, 3, 2, 2) and out.dtype == np.float32
    g = roi_align_backward(out, np.zeros((0, 5), np.float32), x.shape, 2, impl=impl)
    assert g.shape == x.shape and not g.any()


# ------------------------------------------------------------------ live torchvision
@pytest.mark.reference
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sr", [-1, 0, 2])
def test_live_against_torchvision(rng, aligned, sr):
    import torch
    import torchvision
    x = rng.standard_normal((2, 4, 13, 17)).astype(np.float32)
    xy = rng.uniform(-20, 60, (40, 2))
    wh = rng.uniform(-2, 40, (40, 2))
    rois = np.concatenate([rng.integers(0, 2, (40, 1)), xy, xy + wh], 1).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_()
    ref = torchvision.ops.roi_align(xt, torch.from_numpy(rois), (5, 4), 0.25, sr, aligned)
    g = rng.standard_normal(ref.shape).astype(np.float32)
    ref.backward(torch.from_numpy(g))
    for impl in ALL_RUNNABLE:
        out = roi_align(x, rois, (5, 4), 0.25, sr, aligned, impl=impl)
        np.testing.assert_allclose(out, ref.detach().numpy(), rtol=0, atol=1e-5)
        gin = roi_align_backward(g, rois, x.shape, (5, 4), 0.25, sr, aligned, impl=impl)
        np.testing.assert_allclose(gin, xt.grad.numpy(), rtol=0, atol=1e-5)


def test_max_backward_rejects_foreign_argmax():
    x = np.zeros((1, 1, 4, 4), np.float32)
    rois = np.array([[0, 0, 0, 2, 2]], np.float32)
    _, am = roi_align(x, rois, 1, 1.0, 2, aggregation="max", return_argmax=True)
    with pytest.raises(ValueError, match="argmax"):
        roi_align_backward(np.ones((1, 1, 1, 1), np.float32), rois, x.shape, 1, 1.0, 2,
                           aggregation="max", argmax=am + 4)  # grid is 2 x 2: 4 is outside
