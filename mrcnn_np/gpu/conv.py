"""Convolution on the GPU: im2col kernel + one GEMM (cuBLAS through ``cupy.matmul``).

    forward   cols = im2col(x)                       (N, C*kh*kw, Ho*Wo)   kernels/im2col.cu
              out  = W2 @ cols + b                   (N, O, Ho*Wo)         cuBLAS
    backward  dW2  = sum_n dout[n] @ cols[n].T       (O, C*kh*kw)          cuBLAS
              dx   = col2im(W2.T @ dout)             (N, C, H, W)          kernels/col2im.cu
              db   = dout summed over (N, Ho, Wo)

with W2 = weight.reshape(O, C*kh*kw). The column layout is the project's (the same as
torch's ``F.unfold`` and :mod:`mrcnn_np.autodiff.im2col`)::

    cols[n, (c*kh + i)*kw + j, oh*Wo + ow] = x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]

CuPy arrays run on the GPU; NumPy arrays run the same kernels through the CPU host shim
(and NumPy's matmul). Shapes: N images, C in / O out channels, kh x kw kernel.
"""

from __future__ import annotations

import numpy as np

from .launch import array_module, launch


def _ints2(v, name):
    """An int or an (h, w) pair as a tuple of two Python ints."""
    t = (int(v), int(v)) if np.isscalar(v) else tuple(int(a) for a in v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or an (h, w) pair, got {v!r}")
    return t


def conv_geometry(x_shape, kernel_size, stride=1, padding=0, dilation=1, rows=None):
    """(k, s, p, d, Ho, Wo, oh0, oh1): the four pairs, the output size and the band of
    output rows (``rows``, default all) of a convolution over an (N, C, H, W) input.

    The rules of the CPU twin (``mrcnn_np.autodiff.im2col.conv_params``), restated here so
    that the GPU layer stands alone (it imports nothing from ``ops`` or ``autodiff``);
    tests/gpu/test_conv_kernels.py checks both give the same answers and errors.
    """
    if len(x_shape) != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {tuple(x_shape)}")
    k, s = _ints2(kernel_size, "kernel_size"), _ints2(stride, "stride")
    p, d = _ints2(padding, "padding"), _ints2(dilation, "dilation")
    if min(k + s + d) < 1 or min(p) < 0:
        raise ValueError(f"need kernel_size, stride, dilation >= 1 and padding >= 0, got "
                         f"kernel_size={k}, stride={s}, padding={p}, dilation={d}")
    out = [(size + 2 * p[a] - d[a] * (k[a] - 1) - 1) // s[a] + 1
           for a, size in enumerate(x_shape[2:4])]
    if min(out) < 1:
        raise ValueError(f"input of spatial size {tuple(x_shape[2:])} is too small for "
                         f"kernel_size={k}, padding={p}, dilation={d} (output {out[0]}x{out[1]})")
    band = (0, out[0]) if rows is None else tuple(rows)
    return (k, s, p, d, out[0], out[1], *band)


def _conv_args(C, H, W, k, s, p, d, oh0, oh1, Wo):
    return dict(channels=C, height=H, width=W, kernel_h=k[0], kernel_w=k[1], stride_h=s[0],
                stride_w=s[1], pad_h=p[0], pad_w=p[1], dilation_h=d[0], dilation_w=d[1],
                row_begin=oh0, out_h=oh1 - oh0, out_w=Wo)


# -- the CUDA twins, with the internal signature of mrcnn_np.autodiff.im2col's tables
def im2col_cuda(x, k, s, p, d, Ho, Wo, oh0, oh1):
    """cols (N, C*kh*kw, (oh1-oh0)*Wo) of output rows oh0..oh1 (k, s, p, d are pairs)."""
    xp = array_module(x)
    N, C, H, W = x.shape
    x = xp.ascontiguousarray(x)
    cols = xp.empty((N, C * k[0] * k[1], (oh1 - oh0) * Wo), dtype=x.dtype)
    launch("im2col_kernel", cols.size, dict(total=cols.size, x=x, cols=cols,
                                            **_conv_args(C, H, W, k, s, p, d, oh0, oh1, Wo)),
           x.dtype)
    return cols


def col2im_cuda(cols, x_shape, k, s, p, d, Ho, Wo, oh0, oh1, out=None):
    """Sum the columns of output rows oh0..oh1 back onto (N, C, H, W); adds into ``out``."""
    xp = array_module(cols, out)
    N, C, H, W = x_shape
    cols = xp.ascontiguousarray(cols)
    if out is not None and (tuple(out.shape) != tuple(x_shape) or out.dtype != cols.dtype
                            or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous {cols.dtype} array of shape {tuple(x_shape)}")
    dx = xp.empty(tuple(x_shape), dtype=cols.dtype) if out is None else out
    launch("col2im_kernel", dx.size, dict(total=dx.size, cols=cols, dx=dx,
                                          accumulate=int(out is not None),
                                          **_conv_args(C, H, W, k, s, p, d, oh0, oh1, Wo)),
           cols.dtype)
    return dx


# -- public API (same signatures as mrcnn_np.autodiff.im2col, minus impl)
def im2col(x, kernel_size, stride=1, padding=0, dilation=1, *, rows=None):
    """Copy every receptive field of x (N, C, H, W) into a column: (N, C*kh*kw, Ho*Wo).

    rows: optional (oh0, oh1) band of output rows (default all).
    """
    return im2col_cuda(x, *conv_geometry(x.shape, kernel_size, stride, padding, dilation, rows))


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1, *, rows=None,
           out=None):
    """Adjoint of :func:`im2col`: (N, C*kh*kw, Ho*Wo) columns -> (N, C, H, W), overlaps summed.

    The kernel indexes ``cols`` by the geometry, so its shape is checked first.
    """
    shape = tuple(int(v) for v in input_shape)
    geo = conv_geometry(shape, kernel_size, stride, padding, dilation, rows)
    (kh, kw), wo, (oh0, oh1) = geo[0], geo[5], geo[6:]
    if tuple(cols.shape) != (shape[0], shape[1] * kh * kw, (oh1 - oh0) * wo):
        raise ValueError(f"cols must have shape {(shape[0], shape[1] * kh * kw, (oh1 - oh0) * wo)} "
                         f"for input_shape {shape}, got {tuple(cols.shape)}")
    return col2im_cuda(cols, shape, *geo, out=out)


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """out (N, O, Ho, Wo) = conv(x (N, C, H, W), weight (O, C, kh, kw)) + bias (O,)."""
    xp = array_module(x, weight, bias)
    if weight.ndim != 4 or x.ndim != 4 or weight.shape[1] != x.shape[1]:
        raise ValueError(f"x (N, C, H, W) and weight (O, C, kh, kw) do not fit: "
                         f"{tuple(x.shape)}, {tuple(weight.shape)}")
    O = weight.shape[0]
    cols = im2col(x, weight.shape[2:], stride, padding, dilation)   # (N, CKK, L)
    Ho, Wo = conv_geometry(x.shape, weight.shape[2:], stride, padding, dilation)[4:6]
    out = xp.matmul(weight.reshape(O, -1), cols)                     # (N, O, L): one batched GEMM
    if bias is not None:
        out += bias.reshape(1, O, 1)
    return out.reshape(x.shape[0], O, Ho, Wo)


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1):
    """Gradients (dx, dweight, dbias) of :func:`conv2d_forward` given grad_output (N, O, Ho, Wo)."""
    xp = array_module(grad_output, x, weight)
    N, O = grad_output.shape[:2]
    g = grad_output.reshape(N, O, -1)                                # (N, O, L)
    cols = im2col(x, weight.shape[2:], stride, padding, dilation)    # recomputed, not stored
    dweight = xp.matmul(g, cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
    dcols = xp.matmul(weight.reshape(O, -1).T, g)                    # (N, CKK, L)
    dx = col2im(dcols, x.shape, weight.shape[2:], stride, padding, dilation)
    dbias = g.sum(axis=(0, 2))
    return dx, dweight, dbias
