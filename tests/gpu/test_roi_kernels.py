"""roi_align.cu and roi_pool.cu, executed on the CPU through the host shim.

1. hand-checkable values (docs/REFERENCE.md sections 7-8, verified there with torchvision);
2. property tests: the kernels equal the NumPy twins in mrcnn_np.ops (forward, argmax and
   backward; float32 and float64) on random inputs, including RoIs partly or wholly off
   the map, zero-size RoIs and every sampling mode;
3. a live comparison with torchvision (marked ``reference``).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn_np import gpu

from ._helpers import needs_compiler, twin

pytestmark = needs_compiler

A25 = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
A36 = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)


def _rois(*boxes, dtype=np.float32):
    return np.array([[0, *b] for b in boxes], dtype)


# ---------------------------------------------------------------- 1. hand-checkable values
@pytest.mark.parametrize("aligned, want", [
    (False, [[7.5, 8, 8.5, 9], [10, 10.5, 11, 11.5], [12.5, 13, 13.5, 14], [15, 15.5, 16, 16.5]]),
    (True, [[4.5, 5, 5.5, 6], [7, 7.5, 8, 8.5], [9.5, 10, 10.5, 11], [12, 12.5, 13, 13.5]]),
])
def test_roi_align_golden_arange(aligned, want):
    out = gpu.roi_align(A25, _rois([1, 1, 3, 3]), 4, 1.0, 0, aligned)
    np.testing.assert_allclose(out[0, 0], want, rtol=0, atol=1e-6)


def test_roi_align_border_cases():
    # not aligned, zero-size RoI forced to 1x1: one sample at (y, x) = (4.5, 3.5) -> row 4
    assert gpu.roi_align(A25, _rois([3, 4, 3, 4]), 1)[0, 0, 0, 0] == pytest.approx(23.5)
    # aligned, zero-size RoI with adaptive sampling: no sample at all -> 0
    assert gpu.roi_align(A25, _rois([3, 3, 3, 3]), 2, aligned=True).max() == 0
    # RoI fully off the map -> 0
    assert gpu.roi_align(A25 + 1, _rois([-10, -10, -6, -6]), 1).max() == 0
    assert gpu.roi_align(A25 + 1, _rois([6, 6, 9, 9]), 1).max() == 0


def test_roi_align_backward_golden():
    g = gpu.roi_align_backward(np.ones((1, 1, 1, 1), np.float32), _rois([0.5, 0.5, 2.5, 2.5]),
                               (1, 1, 5, 5), 1, 1.0, 2, False)
    want = np.zeros((5, 5), np.float32)
    want[1:3, 1:3] = 0.25
    np.testing.assert_allclose(g[0, 0], want, atol=1e-7)


def test_roi_pool_golden():
    out, am = gpu.roi_pool(A36, _rois([1, 1, 2, 2]), 3, return_argmax=True)
    np.testing.assert_array_equal(out[0, 0], [[7, 8, 8], [13, 14, 14], [13, 14, 14]])
    np.testing.assert_array_equal(am[0, 0], [[7, 8, 8], [13, 14, 14], [13, 14, 14]])
    # C round(): half away from zero (np.round would give 0 and 2 here)
    np.testing.assert_array_equal(gpu.roi_pool(A36, _rois([0.5, 0.5, 2.5, 2.5]), 2)[0, 0],
                                  [[14, 15], [20, 21]])
    assert gpu.roi_pool(A36, _rois([-0.5, -0.5, 0.5, 0.5]), 1)[0, 0, 0, 0] == 7
    out, am = gpu.roi_pool(A36, _rois([20, 20, 30, 30]), 2, return_argmax=True)
    assert out.max() == 0 and am.max() == -1          # off the map: empty bins


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="batch indices"):
        gpu.roi_align(A25, np.array([[1, 0, 0, 2, 2]], np.float32), 2)
    with pytest.raises(ValueError, match="rois"):
        gpu.roi_pool(A25, np.zeros((1, 4), np.float32), 2)
    with pytest.raises(ValueError, match="aggregation"):
        gpu.roi_align(A25, _rois([0, 0, 2, 2]), 2, aggregation="sum")
    with pytest.raises(ValueError, match="argmax"):
        gpu.roi_align_backward(np.ones((1, 1, 2, 2), np.float32), _rois([0, 0, 2, 2]),
                               A25.shape, 2, aggregation="max")
    with pytest.raises(ValueError, match="argmax values"):
        gpu.roi_pool_backward(np.ones((1, 1, 1, 1), np.float32), _rois([0, 0, 2, 2]),
                              A25.shape, 1, argmax=np.full((1, 1, 1, 1), 25, np.int32))


def test_empty_rois_give_empty_outputs():
    out = gpu.roi_align(A25, np.zeros((0, 5), np.float32), 3)
    assert out.shape == (0, 1, 3, 3)
    g = gpu.roi_pool_backward(np.zeros((0, 1, 2, 2), np.float32), np.zeros((0, 5), np.float32),
                              A25.shape, 2, argmax=np.zeros((0, 1, 2, 2), np.int32))
    assert g.shape == A25.shape and not g.any()


# ---------------------------------------------------------------- 2. equal to the NumPy twins
@st.composite
def roi_problems(draw):
    """A small random feature map and RoIs, some partly or wholly outside it."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    k = draw(st.integers(0, 5))
    scale = draw(st.sampled_from([1.0, 0.5, 0.25]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    size = max(h, w) / scale
    xy = rng.uniform(-0.3 * size, 1.2 * size, (k, 2))
    wh = rng.uniform(-0.1 * size, 0.8 * size, (k, 2))
    wh[rng.random(k) < 0.15] = 0                            # some zero-size RoIs
    rois = np.concatenate([rng.integers(0, n, (k, 1)), xy, xy + wh], 1).astype(dtype)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    out_size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return x, rois, out_size, scale, rng


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


@settings(max_examples=40)
@given(p=roi_problems(), sampling_ratio=st.sampled_from([-1, 0, 1, 2, 3]),
       aligned=st.booleans(), impl=st.sampled_from(["reference", "numpy"]))
def test_roi_align_avg_equals_numpy_twin(p, sampling_ratio, aligned, impl):
    fwd, bwd = twin("mrcnn_np.ops.roi_align", "roi_align", "roi_align_backward")
    x, rois, out_size, scale, rng = p
    want = fwd(x, rois, out_size, scale, sampling_ratio, aligned, impl=impl)
    got = gpu.roi_align(x, rois, out_size, scale, sampling_ratio, aligned)
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got, want, **_tol(x.dtype))
    g = rng.standard_normal(got.shape).astype(x.dtype)
    want = bwd(g, rois, x.shape, out_size, scale, sampling_ratio, aligned, impl=impl)
    got = gpu.roi_align_backward(g, rois, x.shape, out_size, scale, sampling_ratio, aligned)
    np.testing.assert_allclose(got, want, **_tol(x.dtype))


@settings(max_examples=30)
@given(p=roi_problems(), sampling_ratio=st.sampled_from([-1, 1, 2]), aligned=st.booleans())
def test_roi_align_max_equals_numpy_twin(p, sampling_ratio, aligned):
    fwd, bwd = twin("mrcnn_np.ops.roi_align", "roi_align", "roi_align_backward")
    x, rois, out_size, scale, rng = p
    want, want_am = fwd(x, rois, out_size, scale, sampling_ratio, aligned, aggregation="max",
                        return_argmax=True, impl="numpy")
    got, am = gpu.roi_align(x, rois, out_size, scale, sampling_ratio, aligned,
                            aggregation="max", return_argmax=True)
    np.testing.assert_allclose(got, want, **_tol(x.dtype))
    np.testing.assert_array_equal(am, want_am)
    g = rng.standard_normal(got.shape).astype(x.dtype)
    want = bwd(g, rois, x.shape, out_size, scale, sampling_ratio, aligned, aggregation="max",
               argmax=want_am, impl="numpy")
    got = gpu.roi_align_backward(g, rois, x.shape, out_size, scale, sampling_ratio, aligned,
                                 aggregation="max", argmax=am)
    np.testing.assert_allclose(got, want, **_tol(x.dtype))


@settings(max_examples=40)
@given(p=roi_problems(), impl=st.sampled_from(["reference", "numpy"]))
def test_roi_pool_equals_numpy_twin(p, impl):
    fwd, bwd = twin("mrcnn_np.ops.roi_pool", "roi_pool", "roi_pool_backward")
    x, rois, out_size, scale, rng = p
    want, want_am = fwd(x, rois, out_size, scale, return_argmax=True, impl=impl)
    got, am = gpu.roi_pool(x, rois, out_size, scale, return_argmax=True)
    np.testing.assert_array_equal(got, want)                # max: exact
    np.testing.assert_array_equal(am, want_am)
    g = rng.standard_normal(got.shape).astype(x.dtype)
    want = bwd(g, rois, x.shape, out_size, scale, argmax=want_am, impl=impl)
    got = gpu.roi_pool_backward(g, rois, x.shape, out_size, scale, argmax=am)
    np.testing.assert_allclose(got, want, **_tol(x.dtype))


# ---------------------------------------------------------------- 3. live torchvision
@pytest.mark.reference
@settings(max_examples=25)
@given(p=roi_problems(), sampling_ratio=st.sampled_from([-1, 0, 2]), aligned=st.booleans())
def test_kernels_equal_torchvision(p, sampling_ratio, aligned):
    import torch
    import torchvision
    x, rois, out_size, scale, rng = p
    xt, rt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(rois)
    ref = torchvision.ops.roi_align(xt, rt, out_size, scale, sampling_ratio, aligned)
    g = rng.standard_normal(ref.shape).astype(x.dtype)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_allclose(gpu.roi_align(x, rois, out_size, scale, sampling_ratio, aligned),
                               ref.detach().numpy(), **_tol(x.dtype))
    np.testing.assert_allclose(
        gpu.roi_align_backward(g, rois, x.shape, out_size, scale, sampling_ratio, aligned),
        xt.grad.numpy(), **_tol(x.dtype))
    xt.grad = None
    ref = torchvision.ops.roi_pool(xt, rt, out_size, scale)
    ref.backward(torch.from_numpy(g))
    out, am = gpu.roi_pool(x, rois, out_size, scale, return_argmax=True)
    np.testing.assert_array_equal(out, ref.detach().numpy())
    np.testing.assert_allclose(gpu.roi_pool_backward(g, rois, x.shape, out_size, scale, argmax=am),
                               xt.grad.numpy(), **_tol(x.dtype))


# ---------------------------------------------------------------- 4. the ops dispatch here
def test_ops_impl_cupy_runs_these_kernels(rng):
    """``mrcnn_np.ops.roi_align(..., impl="cupy")`` is wired to mrcnn_np.gpu; with NumPy
    arrays the kernels run through the shim, so the wiring is checked without a GPU."""
    fwd, bwd = twin("mrcnn_np.ops.roi_align", "roi_align", "roi_align_backward")
    x = rng.standard_normal((1, 2, 6, 5))
    rois = np.array([[0, 0.5, 1, 4, 5.5], [0, -2, -1, 3, 2]])
    got = fwd(x, rois, 3, 1.0, 2, True, impl="cupy")
    np.testing.assert_allclose(got, fwd(x, rois, 3, 1.0, 2, True, impl="numpy"), atol=1e-12)
    g = rng.standard_normal(got.shape)
    np.testing.assert_allclose(bwd(g, rois, x.shape, 3, 1.0, 2, True, impl="cupy"),
                               bwd(g, rois, x.shape, 3, 1.0, 2, True, impl="numpy"), atol=1e-12)
    pool, pool_bwd = twin("mrcnn_np.ops.roi_pool", "roi_pool", "roi_pool_backward")
    out, am = pool(x, rois, 3, return_argmax=True, impl="cupy")
    want, want_am = pool(x, rois, 3, return_argmax=True, impl="numpy")
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(am, want_am)
    np.testing.assert_allclose(pool_bwd(g, rois, x.shape, 3, argmax=am, impl="cupy"),
                               pool_bwd(g, rois, x.shape, 3, argmax=want_am, impl="numpy"), atol=1e-12)
