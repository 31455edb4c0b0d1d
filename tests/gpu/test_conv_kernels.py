"""im2col.cu / col2im.cu (host shim) equal mrcnn_np.autodiff.im2col; conv = kernels + GEMM."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn_np import gpu

from ._helpers import needs_compiler, twin

pytestmark = needs_compiler

TWIN = "mrcnn_np.autodiff.im2col"


@st.composite
def conv_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h = draw(st.integers(max(1, d[0] * (k[0] - 1) + 1 - 2 * p[0]), 9))
    w = draw(st.integers(max(1, d[1] * (k[1] - 1) + 1 - 2 * p[1]), 9))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = rng.standard_normal((draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)).astype(dtype)
    return x, k, s, p, d, rng


@settings(max_examples=40)
@given(prob=conv_problems(), impl=st.sampled_from(["reference", "numpy"]))
def test_im2col_col2im_equal_numpy_twin(prob, impl):
    im2col, col2im = twin(TWIN, "im2col", "col2im")
    x, k, s, p, d, rng = prob
    cols = gpu.im2col(x, k, s, p, d)
    np.testing.assert_array_equal(cols, im2col(x, k, s, p, d, impl=impl))   # pure copies
    c = rng.standard_normal(cols.shape).astype(x.dtype)
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gpu.col2im(c, x.shape, k, s, p, d),
                               col2im(c, x.shape, k, s, p, d, impl=impl), rtol=tol, atol=tol)
    # adjoint: <im2col(x), c> == <x, col2im(c)>
    lhs, rhs = (cols * c).sum(), (x * gpu.col2im(c, x.shape, k, s, p, d)).sum()
    assert abs(lhs - rhs) <= 100 * tol * (1 + abs(lhs))


def test_row_bands_and_accumulation_equal_numpy_twin(rng):
    im2col, col2im = twin(TWIN, "im2col", "col2im")
    x = rng.standard_normal((2, 3, 8, 7))
    args = ((3, 2), (2, 1), (1, 1), (1, 2))
    cols = gpu.im2col(x, *args, rows=(1, 3))
    np.testing.assert_array_equal(cols, im2col(x, *args, rows=(1, 3), impl="numpy"))
    base = rng.standard_normal(x.shape)
    got = gpu.col2im(cols, x.shape, *args, rows=(1, 3), out=base.copy())
    want = col2im(cols, x.shape, *args, rows=(1, 3), out=base.copy(), impl="numpy")
    np.testing.assert_allclose(got, want, atol=1e-12)


def _conv_direct(x, wt, b, s, p, d):
    """Convolution by its definition, one kernel tap at a time (independent of im2col)."""
    N, C, H, W = x.shape
    O, _, kh, kw = wt.shape
    Ho = (H + 2 * p - d * (kh - 1) - 1) // s + 1
    Wo = (W + 2 * p - d * (kw - 1) - 1) // s + 1
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((N, O, Ho, Wo)) + b[None, :, None, None]
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * d:i * d + s * (Ho - 1) + 1:s, j * d:j * d + s * (Wo - 1) + 1:s]
            out += np.einsum("nchw,oc->nohw", patch, wt[:, :, i, j])
    return out


@pytest.mark.parametrize("s, p, d", [(1, 1, 1), (2, 0, 1), (2, 2, 2)])
def test_conv2d_forward_backward(rng, s, p, d):
    x = rng.standard_normal((2, 3, 9, 8))
    wt = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    out = gpu.conv2d_forward(x, wt, b, s, p, d)
    np.testing.assert_allclose(out, _conv_direct(x, wt, b, s, p, d), atol=1e-12)
    # backward: gradients of L = sum(out * g), checked by central differences (float64)
    g = rng.standard_normal(out.shape)
    dx, dw, db = gpu.conv2d_backward(g, x, wt, s, p, d)
    np.testing.assert_allclose(db, g.sum(axis=(0, 2, 3)), atol=1e-12)
    eps = 1e-6
    for arr, grad in ((x, dx), (wt, dw)):
        for idx in [tuple(rng.integers(0, n) for n in arr.shape) for _ in range(6)]:
            old = arr[idx]
            arr[idx] = old + eps
            up = (gpu.conv2d_forward(x, wt, b, s, p, d) * g).sum()
            arr[idx] = old - eps
            down = (gpu.conv2d_forward(x, wt, b, s, p, d) * g).sum()
            arr[idx] = old
            assert grad[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-7)


def test_conv_bad_input_is_rejected(rng):
    x = rng.standard_normal((1, 3, 4, 4))
    with pytest.raises(ValueError, match="do not fit"):
        gpu.conv2d_forward(x, rng.standard_normal((2, 2, 3, 3)))
    with pytest.raises(ValueError, match="too small"):
        gpu.im2col(x, 5)
    with pytest.raises(ValueError, match="cols must have shape"):
        gpu.col2im(np.zeros((1, 27, 5)), x.shape, 3, 1, 1)


def test_autodiff_impl_cupy_runs_these_kernels(rng):
    """mrcnn_np.autodiff.im2col's tables name these kernels for impl="cupy"; NumPy input
    runs them through the shim: the wiring is checked without a GPU."""
    im2col, col2im = twin(TWIN, "im2col", "col2im")
    import importlib

    from mrcnn_np.gpu import conv as gpu_conv
    mod = importlib.import_module(TWIN)
    assert mod.IM2COL["cupy"] is gpu_conv.im2col_cuda
    assert mod.COL2IM["cupy"] is gpu_conv.col2im_cuda
    x = rng.standard_normal((2, 3, 7, 6))
    cols = im2col(x, 3, 2, 1, 1, impl="cupy")
    np.testing.assert_array_equal(cols, im2col(x, 3, 2, 1, 1, impl="numpy"))
    np.testing.assert_allclose(col2im(cols, x.shape, 3, 2, 1, 1, impl="cupy"),
                               col2im(cols, x.shape, 3, 2, 1, 1, impl="numpy"), atol=1e-12)


@pytest.mark.parametrize("args", [(3, 1, 0, 1), ((3, 2), (2, 1), (1, 0), (1, 2)), (5, 1, 0, 1),
                                  (3, 0, 0, 1), (3, 1, -1, 1), ((1, 2, 3), 1, 0, 1)])
def test_gpu_conv_geometry_equals_cpu_rules(args):
    """gpu.conv.conv_geometry restates autodiff.im2col.conv_params (the GPU layer imports
    nothing from autodiff): the same answers, and the same errors."""
    from mrcnn_np.autodiff.im2col import conv_params
    from mrcnn_np.gpu.conv import conv_geometry
    shape = (1, 2, 4, 5)
    try:
        want = conv_params(shape, *args)
    except ValueError as e:
        with pytest.raises(ValueError, match=str(e).split(",")[0][:20]):
            conv_geometry(shape, *args)
    else:
        assert conv_geometry(shape, *args) == (*want, 0, want[4])  # + the band of rows
