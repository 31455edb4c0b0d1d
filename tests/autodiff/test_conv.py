"""im2col/col2im, conv2d and conv_transpose2d: loops reference, adjoint, chunking, gradients."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mrcnn_np.autodiff import F, Tensor, gradcheck
from mrcnn_np.autodiff import conv as conv_mod
from mrcnn_np.autodiff.conv import conv2d_backward, conv2d_forward, conv2d_reference
from mrcnn_np.autodiff.conv_transpose import conv_transpose2d_forward, conv_transpose2d_reference
from mrcnn_np.autodiff.im2col import col2im, im2col

conv_params = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2),
                        st.integers(1, 2), st.integers(4, 9), st.integers(4, 9))


def test_im2col_tiny_hand_example():
    # 1x1x3x3 image 0..8, 2x2 kernel, stride 1: the 4 columns are the 4 patches
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    cols = im2col(x, 2)
    assert cols.shape == (1, 4, 4)
    np.testing.assert_array_equal(cols[0, :, 0], [0, 1, 3, 4])    # patch at (0, 0)
    np.testing.assert_array_equal(cols[0, 0], [0, 1, 3, 4])       # tap (0,0) over positions
    np.testing.assert_array_equal(cols[0, 3], [4, 5, 7, 8])       # tap (1,1)


@given(conv_params, st.sampled_from(["numpy", "numba"]))
@settings(max_examples=30)
def test_im2col_impls_match_reference_and_col2im_is_adjoint(p, impl):
    kh, kw, s, pad, d, H, W = p
    if (H + 2 * pad - d * (kh - 1) - 1) < 0 or (W + 2 * pad - d * (kw - 1) - 1) < 0:
        return
    rng = np.random.default_rng(kh * 100 + H)
    x = rng.standard_normal((2, 3, H, W))
    ref = im2col(x, (kh, kw), s, pad, d, impl="reference")
    cols = im2col(x, (kh, kw), s, pad, d, impl=impl)
    np.testing.assert_array_equal(cols, ref)
    c = rng.standard_normal(cols.shape)
    back = col2im(c, x.shape, (kh, kw), s, pad, d, impl=impl)
    np.testing.assert_allclose(back, col2im(c, x.shape, (kh, kw), s, pad, d, impl="reference"),
                               rtol=1e-12, atol=1e-12)
    # adjoint: <im2col(x), c> == <x, col2im(c)>
    assert np.isclose((cols * c).sum(), (x * back).sum(), rtol=1e-10)


@pytest.mark.parametrize("cfg", [
    dict(stride=1, padding=1, dilation=1, groups=1, k=3),
    dict(stride=2, padding=1, dilation=1, groups=1, k=3),
    dict(stride=1, padding=2, dilation=2, groups=1, k=3),
    dict(stride=2, padding=0, dilation=1, groups=2, k=3),
    dict(stride=1, padding=0, dilation=1, groups=1, k=1),
    dict(stride=2, padding=0, dilation=1, groups=2, k=1),
    dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=4, k=(3, 2)),
])
def test_conv2d_forward_matches_direct_loops(cfg):
    rng = np.random.default_rng(1)
    k = cfg.pop("k")
    k = (k, k) if isinstance(k, int) else k
    g = cfg["groups"]
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((8, 4 // g) + k).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    out, _ = conv2d_forward(x, w, b, **cfg)
    np.testing.assert_allclose(out, conv2d_reference(x, w, b, **cfg), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cfg", [
    (1, 1, 1, 1, 3), (2, 1, 1, 1, 3), (1, 2, 2, 1, 3), (2, 0, 1, 2, 3), (2, 0, 1, 1, 1), (1, 0, 1, 2, 1),
])
def test_conv2d_gradcheck(seed, cfg):
    s, p, d, g, k = cfg
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4, 6, 5))
    w = rng.standard_normal((4, 4 // g, k, k))
    b = rng.standard_normal(4)
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, s, p, d, g), [x, w, b])


def test_conv2d_without_bias_and_frozen_input_skips_dx():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((1, 2, 5, 5)))           # constant input
    w = Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad is None and w.grad.shape == (3, 2, 3, 3)
    # d(sum out)/dw[o,c,i,j] = sum of the input under tap (i, j)
    cols = im2col(x.data, 3, 1, 1, 1)
    np.testing.assert_allclose(w.grad[0].reshape(-1), cols[0].sum(axis=1), rtol=1e-10)


def test_chunked_conv_equals_single_chunk(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 11, 10)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    out, cache = conv2d_forward(x, w, b, 1, 1, 1, 2)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    grads = conv2d_backward(dout, cache)
    # budget of ~3 output rows: forces row bands inside each image and recomputed columns
    monkeypatch.setattr(conv_mod, "MAX_COLS_BYTES", 36 * 10 * 4 * 3)
    monkeypatch.setattr(conv_mod, "CACHE_COLS_BYTES", 0)
    assert len(list(conv_mod._chunks(3, 11, 36 * 10 * 4))) == 12
    out2, cache2 = conv2d_forward(x, w, b, 1, 1, 1, 2)
    assert cache2[8] is None
    np.testing.assert_allclose(out2, out, rtol=1e-6, atol=1e-6)
    for a, c in zip(conv2d_backward(dout, cache2), grads):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cfg", [(2, 0, 0, 1, 1), (2, 1, 1, 1, 2), (1, 1, 0, 2, 1), (3, 0, 2, 1, 1)])
def test_conv_transpose2d_forward_and_gradcheck(cfg):
    s, p, op, d, g = cfg
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 4, 3))
    w = rng.standard_normal((4, 6 // g, 2, 3))
    b = rng.standard_normal(6)
    out, _ = conv_transpose2d_forward(x, w, b, s, p, op, d, g)
    np.testing.assert_allclose(out, conv_transpose2d_reference(x, w, b, s, p, op, d, g), rtol=1e-10, atol=1e-10)
    gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, s, p, op, g, d), [x, w, b])


def test_mask_head_deconv_doubles_size():
    x = np.ones((2, 3, 14, 14), np.float32)
    w = np.ones((3, 5, 2, 2), np.float32)
    out, _ = conv_transpose2d_forward(x, w, None, stride=2)
    assert out.shape == (2, 5, 28, 28)
    np.testing.assert_array_equal(out, 3.0)      # each output pixel gets exactly one tap per channel


def test_conv_bad_inputs_name_the_shapes():
    x = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"weight of shape \(4, 2, 3, 3\).*\(1, 3, 8, 8\)"):
        conv2d_forward(x, np.zeros((4, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="bias must have shape"):
        conv2d_forward(x, np.zeros((4, 3, 3, 3), np.float32), np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        conv2d_forward(x[0], np.zeros((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="too small"):
        conv2d_forward(x, np.zeros((4, 3, 9, 9), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        conv2d_forward(x, np.zeros((4, 3, 3, 3), np.float64))
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose2d_forward(x, np.zeros((3, 2, 2, 2), np.float32), stride=2, output_padding=2)


@pytest.mark.reference
@pytest.mark.parametrize("cfg", [(1, 1, 1, 1, 3), (2, 3, 1, 1, 7), (1, 1, 1, 4, 3), (2, 0, 1, 1, 1), (1, 2, 2, 2, 3)])
def test_conv2d_matches_torch(cfg):
    import torch
    s, p, d, g, k = cfg
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 13, 11)).astype(np.float32)
    w = (rng.standard_normal((8, 8 // g, k, k)) * 0.2).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv2d(tx, tw, tb, s, p, d, g)
    dout = rng.standard_normal(tout.shape).astype(np.float32)
    tout.backward(torch.tensor(dout))
    X, W, B = Tensor(x, True), Tensor(w, True), Tensor(b, True)
    out = F.conv2d(X, W, B, s, p, d, g)
    out.backward(dout)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-4, atol=1e-4)
    for ours, theirs in ((X, tx), (W, tw), (B, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-4, atol=2e-4)


@pytest.mark.reference
@pytest.mark.parametrize("cfg", [(2, 0, 0, 1, 2), (2, 1, 0, 1, 4), (2, 1, 1, 2, 3)])
def test_conv_transpose2d_matches_torch(cfg):
    import torch
    s, p, op, g, k = cfg
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 6 // g, k, k)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p, op, g)
    dout = rng.standard_normal(tout.shape).astype(np.float32)
    tout.backward(torch.tensor(dout))
    X, W, B = Tensor(x, True), Tensor(w, True), Tensor(b, True)
    out = F.conv_transpose2d(X, W, B, s, p, op, g)
    out.backward(dout)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-4, atol=1e-4)
    for ours, theirs in ((X, tx), (W, tw), (B, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-4, atol=2e-4)


@pytest.mark.parametrize("cfg", [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 2), (2, 2, 0, 1), (1, 1, 0, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_im2col_col2im_row_bands_and_out_match_reference(cfg, dtype):
    # the numba twins work through a zero-padded copy of each plane: bands of output rows
    # and accumulation into a non-zero `out` must still equal the loops exactly
    k, s, pad, d = cfg
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 9, 11)).astype(dtype)
    Ho = (9 + 2 * pad - d * (k - 1) - 1) // s + 1
    for rows in [(0, Ho), (1, Ho - 1), (Ho - 1, Ho)]:
        ref = im2col(x, k, s, pad, d, rows=rows, impl="reference")
        np.testing.assert_array_equal(im2col(x, k, s, pad, d, rows=rows, impl="numba"), ref)
        c = rng.standard_normal(ref.shape).astype(dtype)
        start = rng.standard_normal(x.shape).astype(dtype)
        want = col2im(c, x.shape, k, s, pad, d, rows=rows, out=start.copy(), impl="reference")
        got = col2im(c, x.shape, k, s, pad, d, rows=rows, out=start.copy(), impl="numba")
        np.testing.assert_array_equal(got, want)
