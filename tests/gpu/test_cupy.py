"""On a real GPU: the CuPy launch of every kernel equals the numba CPU path.

Marked ``gpu``: runs only where cupy and a CUDA device are present (skipped otherwise).
"""

import numpy as np
import pytest

from mrcnn_np import gpu

from ._helpers import twin

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


def _problem(rng, dtype):
    x = rng.standard_normal((2, 4, 23, 19)).astype(dtype)
    xy = rng.uniform(-5, 25, (50, 2))
    wh = rng.uniform(0, 15, (50, 2))
    rois = np.concatenate([rng.integers(0, 2, (50, 1)), xy, xy + wh], 1).astype(dtype)
    return x, rois


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("aligned, sampling_ratio", [(False, 2), (True, -1), (True, 0)])
@pytest.mark.parametrize("aggregation", ["avg", "max"])
def test_roi_align_cupy_equals_numba(cp, rng, dtype, aligned, sampling_ratio, aggregation):
    fwd, bwd = twin("mrcnn_np.ops.roi_align", "roi_align", "roi_align_backward")
    x, rois = _problem(rng, dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    want, want_am = fwd(x, rois, 7, 0.5, sampling_ratio, aligned, aggregation=aggregation,
                        return_argmax=True, impl="numba")
    got, am = gpu.roi_align(cp.asarray(x), cp.asarray(rois), 7, 0.5, sampling_ratio, aligned,
                            aggregation=aggregation, return_argmax=True)
    assert isinstance(got, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(got), want, **tol)
    g = rng.standard_normal(want.shape).astype(dtype)
    want = bwd(g, rois, x.shape, 7, 0.5, sampling_ratio, aligned, aggregation=aggregation,
               argmax=want_am, impl="numba")
    got = gpu.roi_align_backward(cp.asarray(g), cp.asarray(rois), x.shape, 7, 0.5,
                                 sampling_ratio, aligned, aggregation=aggregation, argmax=am)
    np.testing.assert_allclose(cp.asnumpy(got), want, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roi_pool_cupy_equals_numba(cp, rng, dtype):
    fwd, bwd = twin("mrcnn_np.ops.roi_pool", "roi_pool", "roi_pool_backward")
    x, rois = _problem(rng, dtype)
    want, want_am = fwd(x, rois, 7, 0.5, return_argmax=True, impl="numba")
    got, am = gpu.roi_pool(cp.asarray(x), cp.asarray(rois), 7, 0.5, return_argmax=True)
    np.testing.assert_array_equal(cp.asnumpy(got), want)
    np.testing.assert_array_equal(cp.asnumpy(am), want_am)
    g = rng.standard_normal(want.shape).astype(dtype)
    want = bwd(g, rois, x.shape, 7, 0.5, argmax=want_am, impl="numba")
    got = gpu.roi_pool_backward(cp.asarray(g), cp.asarray(rois), x.shape, 7, 0.5, argmax=am)
    np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_cupy_equals_numba(cp, rng, dtype):
    im2col, col2im = twin("mrcnn_np.autodiff.im2col", "im2col", "col2im")
    x = rng.standard_normal((2, 5, 17, 13)).astype(dtype)
    args = ((3, 3), (2, 1), (1, 2), (1, 2))
    cols = gpu.im2col(cp.asarray(x), *args)
    np.testing.assert_array_equal(cp.asnumpy(cols), im2col(x, *args, impl="numba"))
    c = rng.standard_normal(cols.shape).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(cp.asnumpy(gpu.col2im(cp.asarray(c), x.shape, *args)),
                               col2im(c, x.shape, *args, impl="numba"), rtol=tol, atol=tol)
    wt = rng.standard_normal((6, 5, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    out = gpu.conv2d_forward(cp.asarray(x), cp.asarray(wt), cp.asarray(b), *args[1:])
    want = gpu.conv2d_forward(x, wt, b, *args[1:])          # same kernels on the CPU shim
    np.testing.assert_allclose(cp.asnumpy(out), want, rtol=1e-4, atol=1e-4)
    g = rng.standard_normal(want.shape).astype(dtype)
    grads = gpu.conv2d_backward(cp.asarray(g), cp.asarray(x), cp.asarray(wt), *args[1:])
    for got, ref in zip(grads, gpu.conv2d_backward(g, x, wt, *args[1:])):
        np.testing.assert_allclose(cp.asnumpy(got), ref, rtol=1e-4, atol=1e-3)


def test_nms_cupy_equals_numba(cp, rng):
    (nms,) = twin("mrcnn_np.ops.nms", "nms")
    xy = rng.uniform(0, 500, (3000, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 80, (3000, 2))], 1).astype(np.float32)
    scores = rng.random(3000).astype(np.float32)
    got = gpu.nms(cp.asarray(boxes), cp.asarray(scores), 0.5)
    np.testing.assert_array_equal(cp.asnumpy(got), nms(boxes, scores, 0.5, impl="numba"))
