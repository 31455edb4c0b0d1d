"""2-D convolution (stride, padding, dilation, groups) as im2col + matrix product.

Concept: ``out[n, o] = b[o] + sum_{c,i,j} W[o, c, i, j] * x[n, c, oh*s - p + i*d, ...]``;
with the columns of :mod:`.im2col` this is ``out[n] = W.reshape(O, C*kh*kw) @ cols[n]``,
which lands directly in NCHW order. The backward pass is two more products::

    dW    = sum_n dout[n] @ cols[n].T        (O, C*kh*kw)
    dcols = W.T @ dout[n]                    (C*kh*kw, Ho*Wo)  -> col2im -> dx
    db    = dout.sum over (n, oh, ow)

Groups (ResNeXt, paper §4 "ResNeXt-101"): channels split into G groups; group g's rows of
cols are the contiguous block ``g*Cg*kh*kw ... (g+1)*Cg*kh*kw`` (channel-major layout), so
all groups run as one batched product ``(G, Og, CgKK) @ (N, G, CgKK, L)``.
1x1 convolutions without padding need no im2col at all: cols is the (strided) input.

Memory: cols holds kh*kw copies of the input. When all columns of a call fit in
``CACHE_COLS_BYTES`` (64 MB; every layer of the teaching model) they are built at once and
kept for the backward pass. Larger convolutions stream: columns are built in chunks (groups
of images, or bands of output rows) of at most ``MAX_COLS_BYTES`` (8 MB, so a band is still
in cache when the matrix product reads it) and rebuilt in the backward pass; the scratch
space of a ResNet-50 layer at 800x1088 is then a few MB instead of 125 MB.

Shapes: x (N, C, H, W); weight (O, C/G, kh, kw); bias (O,) or None; out (N, O, Ho, Wo).
"""

from __future__ import annotations

import numpy as np

from ._blas import gemm_threads
from .im2col import col2im, conv_params, im2col

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_reference", "MAX_COLS_BYTES",
           "CACHE_COLS_BYTES"]

MAX_COLS_BYTES = 8 * 2**20       # columns of one streamed chunk
CACHE_COLS_BYTES = 64 * 2**20    # build at once and keep for the backward below this size


def _xp(a):
    return np if type(a).__module__ == "numpy" else __import__("cupy")


def check_conv_args(x, weight, bias, groups, transposed=False):
    """Shape checks shared by conv2d and conv_transpose2d; errors name the shapes."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"input must have shape (N, C, H, W), got {getattr(x, 'shape', None)}")
    if getattr(weight, "ndim", None) != 4:
        raise ValueError(f"weight must have 4 dimensions, got shape {getattr(weight, 'shape', None)}")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    C = x.shape[1]
    if transposed:
        if weight.shape[0] != C or C % groups:
            raise ValueError(f"conv_transpose2d weight of shape {tuple(weight.shape)} needs "
                             f"(C_in={C}, C_out/groups, kh, kw) with C_in divisible by groups={groups}; "
                             f"input has shape {tuple(x.shape)}")
        O = weight.shape[1] * groups
    else:
        O = weight.shape[0]
        if C % groups or O % groups or weight.shape[1] * groups != C:
            raise ValueError(f"conv2d weight of shape {tuple(weight.shape)} does not fit input of shape "
                             f"{tuple(x.shape)} with groups={groups}: need weight (O, C/groups={C // groups if C % groups == 0 else '?'}, kh, kw) "
                             f"and O divisible by groups")
    if bias is not None and tuple(bias.shape) != (O,):
        raise ValueError(f"bias must have shape ({O},), got {tuple(bias.shape)}")
    if x.dtype != weight.dtype:
        raise ValueError(f"input dtype {x.dtype} and weight dtype {weight.dtype} differ")
    return O


def _band_impl(x, impl):
    """Streamed chunks are small, but the NumPy twin would pad the whole input per chunk."""
    return impl if impl is not None or _xp(x) is not np else "numba"


def _is_pointwise(k, p):
    return k == (1, 1) and p == (0, 0)


def _pointwise_cols(x, s):
    """1x1 convolution columns: the (subsampled) input itself, (N, C, Ho*Wo)."""
    if s != (1, 1):
        x = _xp(x).ascontiguousarray(x[:, :, ::s[0], ::s[1]])
    N, C, Ho, Wo = x.shape
    return x.reshape(N, C, Ho * Wo)


def _chunks(N, Ho, bytes_per_row):
    """Yield (n0, n1, oh0, oh1): whole images when they fit the budget, else row bands."""
    per_image = bytes_per_row * Ho
    if per_image <= MAX_COLS_BYTES:
        step = max(1, MAX_COLS_BYTES // max(per_image, 1))
        for n0 in range(0, N, step):
            yield n0, min(N, n0 + step), 0, Ho
    else:
        rows = max(1, MAX_COLS_BYTES // bytes_per_row)
        for n in range(N):
            for oh0 in range(0, Ho, rows):
                yield n, n + 1, oh0, min(Ho, oh0 + rows)


def _group_matmul(w2, cols, G, out=None):
    """(O, CKK) weights times (n, CKK, L) columns per group -> (n, O, L).

    Plain 2-D products per image/group: NumPy hands those to BLAS directly, while stacked
    products with transposed operands can fall back to a slow generic loop.
    """
    n, CKK, L = cols.shape
    O = w2.shape[0]
    xp = _xp(cols)
    if out is None:
        out = xp.empty((n, O, L), cols.dtype)
    if G == 1:
        for i in range(n):
            xp.matmul(w2, cols[i], out=out[i])
        return out
    Og, Cg = O // G, CKK // G
    for i in range(n):
        for g in range(G):
            xp.matmul(w2[g * Og:(g + 1) * Og, :], cols[i, g * Cg:(g + 1) * Cg], out=out[i, g * Og:(g + 1) * Og])
    return out


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, impl=None):
    """Convolution forward. Returns out (N, O, Ho, Wo) and a cache for the backward."""
    O = check_conv_args(x, weight, bias, groups)
    N, C, H, W = x.shape
    k, s, p, d, Ho, Wo = conv_params(x.shape, weight.shape[2:], stride, padding, dilation)
    w2 = weight.reshape(O, -1)
    L = Ho * Wo
    with gemm_threads(2.0 * w2.size * L / groups):
        out, cached = _conv2d_forward_body(x, w2, N, O, k, s, p, d, groups, Ho, Wo, L, impl)
    out = out.reshape(N, O, Ho, Wo)
    if bias is not None:
        out += bias.reshape(1, O, 1, 1)
    cache = (x, weight, bias is not None, k, s, p, d, groups, cached, impl)
    return out, cache


def _conv2d_forward_body(x, w2, N, O, k, s, p, d, groups, Ho, Wo, L, impl):
    xp = _xp(x)
    cached = None
    if _is_pointwise(k, p):
        cols = _pointwise_cols(x, s)
        out = _group_matmul(w2, cols, groups)
        cached = cols
    else:
        bytes_per_row = w2.shape[1] * groups * Wo * x.dtype.itemsize
        if N * Ho * bytes_per_row <= CACHE_COLS_BYTES:
            cols = im2col(x, k, s, p, d, impl=impl)
            out = _group_matmul(w2, cols, groups)
            cached = cols
        else:
            chunks = _chunks(N, Ho, bytes_per_row)
            out = xp.empty((N, O, L), x.dtype)
            for n0, n1, oh0, oh1 in chunks:
                cols = im2col(x[n0:n1], k, s, p, d, rows=(oh0, oh1), impl=_band_impl(x, impl))
                out[n0:n1, :, oh0 * Wo:oh1 * Wo] = _group_matmul(w2, cols, groups)
    return out, cached


def conv2d_backward(dout, cache, need_input_grad=True, need_weight_grad=True):
    """Convolution backward: dout (N, O, Ho, Wo) -> (dx, dw, db); unneeded ones are None."""
    x, weight, has_bias, k, s, p, d, G = cache[:8]
    with gemm_threads(2.0 * weight.size * dout.shape[2] * dout.shape[3] / G):
        return _conv2d_backward_body(dout, cache, need_input_grad, need_weight_grad)


def _conv2d_backward_body(dout, cache, need_input_grad, need_weight_grad):
    x, weight, has_bias, k, s, p, d, G, cached, impl = cache
    xp = _xp(dout)
    N, C, H, W = x.shape
    O = weight.shape[0]
    Ho, Wo = dout.shape[2:]
    L = Ho * Wo
    w2 = weight.reshape(O, -1)
    CKK = w2.shape[1] * G
    d2 = xp.ascontiguousarray(dout).reshape(N, O, L)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    dw2 = xp.zeros((G, O // G, CKK // G), weight.dtype) if need_weight_grad else None
    wT = w2.reshape(G, O // G, CKK // G).transpose(0, 2, 1) if need_input_grad else None

    def accumulate(cols, dchunk):
        """Add this chunk's contribution to dW and return its dcols (or None)."""
        n = cols.shape[0]
        Lc = cols.shape[2]
        Og, Cg = O // G, CKK // G
        if need_weight_grad:
            for i in range(n):                  # 2-D BLAS products, accumulated in place
                for g in range(G):
                    # (cols @ dout.T).T, not dout @ cols.T: the same product, but OpenBLAS
                    # runs this long-K shape ~10x faster in this operand order
                    dw2[g] += (cols[i, g * Cg:(g + 1) * Cg] @ dchunk[i, g * Og:(g + 1) * Og].T).T
        if need_input_grad:
            dcols = xp.empty((n, CKK, Lc), cols.dtype)
            for i in range(n):
                for g in range(G):
                    xp.matmul(wT[g], dchunk[i, g * Og:(g + 1) * Og], out=dcols[i, g * Cg:(g + 1) * Cg])
            return dcols
        return None

    dx = None
    if _is_pointwise(k, p):
        cols = cached if cached is not None else _pointwise_cols(x, s)
        dcols = accumulate(cols, d2)
        if need_input_grad:
            if s == (1, 1):
                dx = dcols.reshape(N, C, H, W)
            else:
                dx = xp.zeros_like(x)
                dx[:, :, ::s[0], ::s[1]] = dcols.reshape(N, C, Ho, Wo)
    else:
        dx = xp.zeros_like(x) if need_input_grad else None
        if cached is not None:
            chunks = [(0, N, 0, Ho)]
        else:
            chunks = list(_chunks(N, Ho, CKK * Wo * x.dtype.itemsize))
        for n0, n1, oh0, oh1 in chunks:
            if cached is not None:
                cols = cached
            else:
                cols = im2col(x[n0:n1], k, s, p, d, rows=(oh0, oh1), impl=_band_impl(x, impl))
            dcols = accumulate(cols, d2[n0:n1, :, oh0 * Wo:oh1 * Wo])
            if need_input_grad:
                col2im(dcols, (n1 - n0, C, H, W), k, s, p, d, rows=(oh0, oh1),
                       out=dx[n0:n1], impl=impl)
    dw = dw2.reshape(weight.shape) if need_weight_grad else None
    return dx, dw, db


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct loops over every output element: the specification (tiny inputs only)."""
    O = check_conv_args(x, weight, bias, groups)
    N, C, H, W = x.shape
    k, s, p, d, Ho, Wo = conv_params(x.shape, weight.shape[2:], stride, padding, dilation)
    Cg, Og = C // groups, O // groups
    out = np.zeros((N, O, Ho, Wo), np.float64)
    for n in range(N):
        for o in range(O):
            g = o // Og
            for oh in range(Ho):
                for ow in range(Wo):
                    acc = float(bias[o]) if bias is not None else 0.0
                    for cg in range(Cg):
                        for i in range(k[0]):
                            for j in range(k[1]):
                                ih, iw = oh * s[0] - p[0] + i * d[0], ow * s[1] - p[1] + j * d[1]
                                if 0 <= ih < H and 0 <= iw < W:
                                    acc += weight[o, cg, i, j] * x[n, g * Cg + cg, ih, iw]
                    out[n, o, oh, ow] = acc
    return out.astype(x.dtype)


# ------------------------------------------------------------------ Tensor wrapper
def conv_tensor_op(forward, backward_fn, name, x, weight, bias, *args, impl=None):
    """Wrap a convolution-like forward/backward pair (x, weight, optional bias) as a Tensor op."""
    from .tensor import as_tensor, make_result, needs_grad
    x, weight = as_tensor(x), as_tensor(weight)
    parents = (x, weight) if bias is None else (x, weight, as_tensor(bias))
    out, cache = forward(x.data, weight.data, None if bias is None else parents[2].data, *args, impl=impl)
    if not needs_grad(*parents):
        return make_result(out, parents, None, name)

    def backward(g):
        dx, dw, db = backward_fn(g, cache, x.requires_grad, weight.requires_grad)
        return (dx, dw) if bias is None else (dx, dw, db)
    return make_result(out, parents, backward, name)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, impl=None):
    """Differentiable 2-D convolution on Tensors (torch ``F.conv2d`` semantics)."""
    return conv_tensor_op(conv2d_forward, conv2d_backward, "conv2d", x, weight, bias,
                          stride, padding, dilation, groups, impl=impl)
