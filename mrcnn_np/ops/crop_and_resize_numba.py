"""The numba twin of ``crop_and_resize`` (the CPU default): forward and backward kernels.

The specification is :func:`mrcnn_np.ops.crop_and_resize.crop_and_resize_reference`; these
kernels do the same arithmetic in the same order and the same dtype, so the forward equals
the reference bit for bit (and the backward too: each channel adds up in the reference's
order, RoI by RoI, row by row, column by column). See :mod:`mrcnn_np.ops.crop_and_resize`
for the sampling rule (docs/REFERENCE.md §8.5).

Shapes::

    x (N, H, W, C) channels-last input      batch, start_y, step_y, start_x, step_x (K,)
    out (K, C, CH, CW)                       grad (N, H, W, C) channels-last, accumulated
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bilinear import channel_block, nchw_to_nhwc, nhwc_to_nchw


@njit(cache=True, inline="always")
def _axis_point(c, size, nearest, like):
    """(low, high, lerp, valid) of one sample coordinate: TF's rule, scalar.

    Valid only in [0, size - 1] (NaN is not). bilinear: low = floor, high = ceil,
    lerp = c - low; nearest: low = high = C-rounded c, lerp 0.
    """
    t = like.dtype.type
    if not (c >= 0.0 and c <= size - 1):
        return 0, 0, t(0), False
    f = np.floor(c)
    if nearest:
        i = int(f + (1.0 if c - f >= 0.5 else 0.0))
        return i, i, t(0), True
    lo = int(f)
    return lo, int(np.ceil(c)), t(c - t(lo)), True


@njit(cache=True)
def _axis_tables(start, step, n, size, nearest, like):
    """low, high, lerp, valid of the n sample coordinates ``start + i * step`` of one RoI."""
    t = like.dtype.type
    lo = np.zeros(n, np.int64)
    hi = np.zeros(n, np.int64)
    lerp = np.zeros(n, like.dtype)
    valid = np.zeros(n, np.bool_)
    for i in range(n):
        lo[i], hi[i], lerp[i], valid[i] = _axis_point(start + t(i) * step, size, nearest, like)
    return lo, hi, lerp, valid


@njit(parallel=True, cache=True)
def _forward_kernel(x, batch, start_y, step_y, start_x, step_x, ch, cw, extrapolation, nearest, out):
    """One RoI per task; writes every element of out (K, C, CH, CW)."""
    n, h, w, c_ = x.shape
    t = x.dtype.type
    fill = t(extrapolation)
    for k in prange(batch.shape[0]):
        b = batch[k]
        ylo, yhi, ly, yv = _axis_tables(start_y[k], step_y[k], ch, h, nearest, x)
        xlo, xhi, lx, xv = _axis_tables(start_x[k], step_x[k], cw, w, nearest, x)
        loc = np.empty((ch * cw, c_), x.dtype)  # channels-last, then written out in (C, CH, CW) order
        for i in range(ch):
            for j in range(cw):
                acc = loc[i * cw + j]
                if not (yv[i] and xv[j]):
                    acc[:] = fill
                    continue
                tl, tr = x[b, ylo[i], xlo[j]], x[b, ylo[i], xhi[j]]
                bl, br = x[b, yhi[i], xlo[j]], x[b, yhi[i], xhi[j]]
                for c in range(c_):
                    top = tl[c] + (tr[c] - tl[c]) * lx[j]
                    bottom = bl[c] + (br[c] - bl[c]) * lx[j]
                    acc[c] = top + (bottom - top) * ly[i]
        for c in range(c_):
            for m in range(ch * cw):
                out[k, c, m // cw, m % cw] = loc[m, c]


@njit(parallel=True, cache=True)
def _backward_kernel(g, batch, start_y, step_y, start_x, step_x, nearest, grad, block):
    """g (K, CH, CW, C) channels-last; grad (N, H, W, C) zeros, accumulated.

    Tasks own disjoint channel blocks: no two threads add to the same element.
    """
    k_, ch, cw, c_ = g.shape
    n, h, w, _ = grad.shape
    t = g.dtype.type
    for cb in prange((c_ + block - 1) // block):
        c0, c1 = cb * block, min(c_, cb * block + block)
        for k in range(k_):
            b = batch[k]
            ylo, yhi, ly, yv = _axis_tables(start_y[k], step_y[k], ch, h, nearest, g)
            xlo, xhi, lx, xv = _axis_tables(start_x[k], step_x[k], cw, w, nearest, g)
            for i in range(ch):
                if not yv[i]:
                    continue  # extrapolated: a constant, no gradient
                for j in range(cw):
                    if not xv[j]:
                        continue
                    for c in range(c0, c1):
                        d_top = (t(1) - ly[i]) * g[k, i, j, c]
                        d_bottom = ly[i] * g[k, i, j, c]
                        grad[b, ylo[i], xlo[j], c] += (t(1) - lx[j]) * d_top
                        grad[b, ylo[i], xhi[j], c] += lx[j] * d_top
                        grad[b, yhi[i], xlo[j], c] += (t(1) - lx[j]) * d_bottom
                        grad[b, yhi[i], xhi[j], c] += lx[j] * d_bottom


def crop_and_resize_numba(input, batch, start_y, step_y, start_x, step_x, ch, cw,
                          extrapolation, nearest):
    """Forward: (K, C, CH, CW) from input (N, C, H, W) and the per-RoI sampling grid."""
    out = np.empty((len(batch), input.shape[1], ch, cw), input.dtype)  # the kernel writes all
    if out.size:
        _forward_kernel(nchw_to_nhwc(input), batch, start_y, step_y, start_x, step_x, ch, cw,
                        float(extrapolation), bool(nearest), out)
    return out


def crop_and_resize_backward_numba(grad_output, batch, start_y, step_y, start_x, step_x,
                                   input_shape, nearest):
    """Backward: dL/dinput (N, C, H, W) from dL/dout (K, C, CH, CW)."""
    n, c_, h, w = input_shape
    if grad_output.size == 0 or n * c_ == 0:
        return np.zeros(input_shape, grad_output.dtype)
    g = np.ascontiguousarray(grad_output.transpose(0, 2, 3, 1))
    grad = np.zeros((n, h, w, c_), grad_output.dtype)
    _backward_kernel(g, batch, start_y, step_y, start_x, step_x, bool(nearest), grad,
                     channel_block(c_))
    return nhwc_to_nchw(grad)
