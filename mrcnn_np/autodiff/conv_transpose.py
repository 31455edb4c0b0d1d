"""Transposed convolution ("deconvolution"): the adjoint of a convolution.

Concept: a transposed convolution runs a convolution's input-gradient computation as a
forward pass: every input pixel spreads ``W[c, :, :, :] * x[n, c, h, w]`` onto a
kh x kw window of the (larger) output, windows ``stride`` apart, overlaps summed. With
the im2col machinery::

    cols[n] = W.reshape(C_in, C_out*kh*kw).T @ x[n].reshape(C_in, H*W)   (C_out*kh*kw, H*W)
    out[n]  = col2im(cols[n])                                            (C_out, Ho, Wo)
    Ho = (H - 1)*s - 2p + d*(k - 1) + output_padding + 1

Backward: ``dx = W @ im2col(dout)``, ``dW = x @ im2col(dout).T``, ``db = sum(dout)``.
Mask R-CNN's mask head uses a 2x2 stride-2 deconvolution to go from 14x14 to 28x28
(paper §3, Fig. 4); Keypoint R-CNN a 4x4 stride-2 one with padding 1.

Shapes: x (N, C_in, H, W); weight (C_in, C_out/G, kh, kw) (torch layout); bias (C_out,).
"""

from __future__ import annotations

import numpy as np

from ._blas import gemm_threads
from .conv import MAX_COLS_BYTES, check_conv_args, conv_tensor_op
from .im2col import col2im, im2col, pair
from .tensor import get_array_module

__all__ = ["conv_transpose2d_forward", "conv_transpose2d_backward", "conv_transpose2d_reference",
           "conv_transpose_output_shape"]


def conv_transpose_output_shape(H, W, kernel_size, stride, padding, output_padding, dilation):
    (kh, kw), (sh, sw) = kernel_size, stride
    (ph, pw), (oph, opw), (dh, dw) = padding, output_padding, dilation
    return ((H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1,
            (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1)


def _setup(x, weight, bias, stride, padding, output_padding, dilation, groups):
    Cout = check_conv_args(x, weight, bias, groups, transposed=True)
    k = tuple(int(v) for v in weight.shape[2:])
    s, p = pair(stride, "stride"), pair(padding, "padding")
    op, d = pair(output_padding, "output_padding"), pair(dilation, "dilation")
    if op[0] >= s[0] or op[1] >= s[1] or min(op) < 0:
        raise ValueError(f"output_padding {op} must be >= 0 and smaller than stride {s}")
    Ho, Wo = conv_transpose_output_shape(x.shape[2], x.shape[3], k, s, p, op, d)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"conv_transpose2d output size {Ho}x{Wo} is empty for input {tuple(x.shape)}")
    return Cout, k, s, p, op, d, Ho, Wo


def _image_chunks(N, per_image_bytes):
    step = max(1, MAX_COLS_BYTES // max(per_image_bytes, 1))
    return [(n0, min(N, n0 + step)) for n0 in range(0, N, step)]


def conv_transpose2d_forward(x, weight, bias=None, stride=1, padding=0, output_padding=0,
                             dilation=1, groups=1, *, impl=None):
    """Transposed convolution forward: returns out (N, C_out, Ho, Wo) and a cache."""
    with gemm_threads(2.0 * weight.size * x.shape[2] * x.shape[3] / groups):
        return _conv_transpose2d_forward_body(x, weight, bias, stride, padding, output_padding,
                                              dilation, groups, impl)


def _conv_transpose2d_forward_body(x, weight, bias, stride, padding, output_padding, dilation,
                                   groups, impl):
    Cout, k, s, p, op, d, Ho, Wo = _setup(x, weight, bias, stride, padding, output_padding,
                                          dilation, groups)
    xp = get_array_module(x)
    N, Cin, H, W = x.shape
    G = groups
    wg = weight.reshape(G, Cin // G, -1)                     # (G, Cin_g, Cout_g*kk)
    wgT = wg.transpose(0, 2, 1)
    out = xp.zeros((N, Cout, Ho, Wo), x.dtype)
    kk = k[0] * k[1]
    Cig, Cok = Cin // G, (Cout // G) * kk
    for n0, n1 in _image_chunks(N, Cout * kk * H * W * x.dtype.itemsize):
        xg = x[n0:n1].reshape(n1 - n0, Cin, H * W)
        cols = xp.empty((n1 - n0, Cout * kk, H * W), x.dtype)
        for i in range(n1 - n0):                 # 2-D BLAS products per image and group
            for g in range(G):
                xp.matmul(wgT[g], xg[i, g * Cig:(g + 1) * Cig], out=cols[i, g * Cok:(g + 1) * Cok])
        col2im(cols, (n1 - n0, Cout, Ho, Wo), k, s, p, d, out=out[n0:n1], impl=impl)
    if bias is not None:
        out += bias.reshape(1, Cout, 1, 1)
    return out, (x, weight, bias is not None, k, s, p, d, G, impl)


def conv_transpose2d_backward(dout, cache, need_input_grad=True, need_weight_grad=True):
    """Backward: dout (N, C_out, Ho, Wo) -> (dx, dw, db); unneeded ones are None."""
    x, weight, G = cache[0], cache[1], cache[7]
    with gemm_threads(2.0 * weight.size * x.shape[2] * x.shape[3] / G):
        return _conv_transpose2d_backward_body(dout, cache, need_input_grad, need_weight_grad)


def _conv_transpose2d_backward_body(dout, cache, need_input_grad, need_weight_grad):
    x, weight, has_bias, k, s, p, d, G, impl = cache
    xp = get_array_module(dout)
    N, Cin, H, W = x.shape
    Cout = dout.shape[1]
    kk = k[0] * k[1]
    Cig, Cok = Cin // G, (Cout // G) * kk
    wg = weight.reshape(G, Cin // G, -1)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    dx = xp.empty_like(x) if need_input_grad else None
    dwg = xp.zeros_like(wg) if need_weight_grad else None
    for n0, n1 in _image_chunks(N, Cout * kk * H * W * x.dtype.itemsize):
        n = n1 - n0
        dcols = im2col(xp.ascontiguousarray(dout[n0:n1]), k, s, p, d, impl=impl)
        xg = x[n0:n1].reshape(n, Cin, H * W)
        dxg = dx[n0:n1].reshape(n, Cin, H * W) if need_input_grad else None
        for i in range(n):
            for g in range(G):
                dc = dcols[i, g * Cok:(g + 1) * Cok]
                if need_input_grad:
                    xp.matmul(wg[g], dc, out=dxg[i, g * Cig:(g + 1) * Cig])
                if need_weight_grad:
                    dwg[g] += (dc @ xg[i, g * Cig:(g + 1) * Cig].T).T   # fast operand order (see conv.py)
    dw = dwg.reshape(weight.shape) if need_weight_grad else None
    return dx, dw, db


def conv_transpose2d_reference(x, weight, bias=None, stride=1, padding=0, output_padding=0,
                               dilation=1, groups=1):
    """Direct scatter loops: each input pixel adds its weighted kernel to the output."""
    Cout, k, s, p, op, d, Ho, Wo = _setup(x, weight, bias, stride, padding, output_padding,
                                          dilation, groups)
    N, Cin, H, W = x.shape
    Cin_g, Cout_g = Cin // groups, Cout // groups
    out = np.zeros((N, Cout, Ho, Wo), np.float64)
    for n in range(N):
        for c in range(Cin):
            g = c // Cin_g
            for h in range(H):
                for w in range(W):
                    for oc in range(Cout_g):
                        for i in range(k[0]):
                            for j in range(k[1]):
                                oh, ow = h * s[0] - p[0] + i * d[0], w * s[1] - p[1] + j * d[1]
                                if 0 <= oh < Ho and 0 <= ow < Wo:
                                    out[n, g * Cout_g + oc, oh, ow] += weight[c, oc, i, j] * x[n, c, h, w]
    if bias is not None:
        out += np.asarray(bias, np.float64).reshape(1, Cout, 1, 1)
    return out.astype(x.dtype)


# ------------------------------------------------------------------ Tensor wrapper
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, impl=None):
    """Differentiable transposed convolution (torch ``F.conv_transpose2d`` argument order)."""
    return conv_tensor_op(conv_transpose2d_forward, conv_transpose2d_backward, "conv_transpose2d",
                          x, weight, bias, stride, padding, output_padding, dilation, groups, impl=impl)
