"""Basic layers as forward/backward pairs: linear, ReLU, max pooling, nearest upsampling.

* ``linear``: ``y = x @ W.T + b`` with torch's weight layout W (out, in) — the box head's
  fc6/fc7 and the predictors (Mask R-CNN §3, Fig. 4).
* ``relu``: ``max(x, 0)``; its gradient is 0 at x <= 0 (as torch).
* ``max_pool2d``: torch semantics (``floor`` output size, implicit -inf padding, first
  maximum wins on ties); the ResNet stem's 3x3/2 pool and FPN's P6 (1x1/2 subsampling).
* ``upsample_nearest``: torch's legacy ``mode="nearest"`` index rule
  ``src = min(floor(dst * in / out), in - 1)`` (FPN top-down pathway, FPN paper §3).

Shapes: x (N, C, H, W) for pooling/upsampling, (R, D) for linear.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._blas import gemm_threads
from .im2col import PARALLEL_MIN, pair
from .tensor import as_tensor, get_array_module, make_result

__all__ = ["linear_forward", "linear_backward", "linear", "relu", "max_pool2d_forward",
           "max_pool2d_backward", "max_pool2d", "nearest_indices", "upsample_nearest_forward",
           "upsample_nearest_backward", "upsample_nearest"]


# ------------------------------------------------------------------ linear
def linear_forward(x, w, b=None):
    """x (R, D_in), w (D_out, D_in), b (D_out,) -> y (R, D_out)."""
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"linear needs x (R, D_in) and weight (D_out, D_in), got {x.shape} and {w.shape}")
    y = x @ w.T
    if b is not None:
        y += b
    return y, (x, w)


def linear_backward(dy, cache):
    x, w = cache
    return dy @ w, dy.T @ x, dy.sum(axis=0)


def linear(x, weight, bias=None):
    x, weight = as_tensor(x), as_tensor(weight)
    parents = (x, weight) if bias is None else (x, weight, as_tensor(bias))
    flops = 2.0 * x.shape[0] * weight.data.size
    with gemm_threads(flops):
        y, cache = linear_forward(x.data, weight.data, None if bias is None else parents[2].data)

    def backward(g):
        with gemm_threads(flops):
            return (g @ weight.data if x.requires_grad else None,
                    g.T @ x.data if weight.requires_grad else None,
                    g.sum(axis=0) if bias is not None else None)[:len(parents)]
    return make_result(y, parents, backward, "linear")


# ------------------------------------------------------------------ relu
def relu(x):
    x = as_tensor(x)
    xp = get_array_module(x.data)
    out = xp.maximum(x.data, 0)
    return make_result(out, (x,), lambda g: (g * (out > 0),), "relu")


# ------------------------------------------------------------------ max pooling
@njit(cache=True, inline="always")
def _max_pool_task(x, out, arg, t, kh, kw, sh, sw, ph, pw):
    """Pool plane t = n * C + c; ties keep the first maximum, NaN wins (torch)."""
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    n = t // C
    c = t % C
    for oh in range(Ho):
        for ow in range(Wo):
            best = -np.inf
            besti = -1
            for i in range(kh):
                ih = oh * sh - ph + i
                if ih < 0 or ih >= H:
                    continue
                for j in range(kw):
                    iw = ow * sw - pw + j
                    if iw < 0 or iw >= W:
                        continue
                    v = x[n, c, ih, iw]
                    if v > best or np.isnan(v) or besti < 0:
                        best = v
                        besti = ih * W + iw
            out[n, c, oh, ow] = best
            arg[n, c, oh, ow] = besti


@njit(cache=True)
def _max_pool_serial(x, out, arg, kh, kw, sh, sw, ph, pw):
    for t in range(x.shape[0] * x.shape[1]):
        _max_pool_task(x, out, arg, t, kh, kw, sh, sw, ph, pw)


@njit(parallel=True, cache=True)
def _max_pool_parallel(x, out, arg, kh, kw, sh, sw, ph, pw):
    for t in prange(x.shape[0] * x.shape[1]):
        _max_pool_task(x, out, arg, t, kh, kw, sh, sw, ph, pw)


@njit(cache=True)
def _max_pool_backward_kernel(g, arg, dx):
    N, C, H, W = dx.shape
    Ho, Wo = g.shape[2], g.shape[3]
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    a = arg[n, c, oh, ow]
                    if a >= 0:
                        dx[n, c, a // W, a % W] += g[n, c, oh, ow]


def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """x (N, C, H, W) -> out (N, C, Ho, Wo), cache with argmax (flat h*W + w per plane)."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"max_pool2d input must have shape (N, C, H, W), got {getattr(x, 'shape', None)}")
    k = pair(kernel_size, "kernel_size")
    s = pair(stride if stride is not None else kernel_size, "stride")
    p = pair(padding, "padding")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"padding {p} must be at most half the kernel size {k} (torch rule)")
    N, C, H, W = x.shape
    Ho, Wo = (H + 2 * p[0] - k[0]) // s[0] + 1, (W + 2 * p[1] - k[1]) // s[1] + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"max_pool2d input {x.shape} is too small for kernel {k}, padding {p}")
    out = np.empty((N, C, Ho, Wo), x.dtype)
    arg = np.empty((N, C, Ho, Wo), np.int64)
    kernel = _max_pool_parallel if x.size >= PARALLEL_MIN else _max_pool_serial
    kernel(np.ascontiguousarray(x), out, arg, k[0], k[1], s[0], s[1], p[0], p[1])
    return out, (x.shape, arg)


def max_pool2d_backward(dout, cache):
    x_shape, arg = cache
    dx = np.zeros(x_shape, dout.dtype)
    _max_pool_backward_kernel(np.ascontiguousarray(dout), arg, dx)
    return dx


def max_pool2d(x, kernel_size, stride=None, padding=0):
    x = as_tensor(x)
    out, cache = max_pool2d_forward(x.data, kernel_size, stride, padding)
    return make_result(out, (x,), lambda g: (max_pool2d_backward(g, cache),), "max_pool2d")


# ------------------------------------------------------------------ nearest upsampling
def nearest_indices(in_size: int, out_size: int, scale_factor=None):
    """Source index of every destination index: torch's legacy 'nearest' rule (float32)."""
    if out_size == in_size:
        return np.arange(out_size)
    if scale_factor is None:
        scale = np.float32(in_size) / np.float32(out_size)
    else:
        scale = np.float32(1.0 / scale_factor)
    src = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_size - 1)


def upsample_nearest_forward(x, size=None, scale_factor=None):
    """x (N, C, H, W) -> (N, C, Ho, Wo) with ``size=(Ho, Wo)`` or ``scale_factor``."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"upsample input must have shape (N, C, H, W), got {getattr(x, 'shape', None)}")
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    H, W = x.shape[2:]
    if size is not None:
        Ho, Wo = pair(size, "size")
        sf = (None, None)
    else:
        sf = (scale_factor, scale_factor) if np.isscalar(scale_factor) else tuple(scale_factor)
        Ho, Wo = int(np.floor(H * sf[0])), int(np.floor(W * sf[1]))
    if Ho < 1 or Wo < 1:
        raise ValueError(f"upsampled size must be positive, got {(Ho, Wo)}")
    iy, ix = nearest_indices(H, Ho, sf[0]), nearest_indices(W, Wo, sf[1])
    xp = get_array_module(x)
    if Ho == 2 * H and Wo == 2 * W and sf[0] in (None, 2) and sf[1] in (None, 2):
        out = xp.broadcast_to(x[:, :, :, None, :, None], x.shape[:2] + (H, 2, W, 2))
        out = out.reshape(x.shape[:2] + (Ho, Wo))   # exact 2x: a copy, no gather
    else:
        out = x[:, :, iy][:, :, :, ix]
    return out, (x.shape, iy, ix)


def _sum_runs(g, idx, size, axis):
    """Gradient of a gather with sorted indices ``idx`` along ``axis``: sum each run."""
    xp = get_array_module(g)
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    sums = xp.add.reduceat(g, starts, axis=axis)
    if len(starts) == size:
        return sums
    shape = list(g.shape)
    shape[axis] = size
    out = xp.zeros(shape, g.dtype)
    sl = [slice(None)] * g.ndim
    sl[axis] = idx[starts]
    out[tuple(sl)] = sums
    return out


def upsample_nearest_backward(dout, cache):
    x_shape, iy, ix = cache
    N, C, H, W = x_shape
    if dout.shape[2:] == (2 * H, 2 * W) and (iy == np.arange(2 * H) // 2).all() and (ix == np.arange(2 * W) // 2).all():
        return dout.reshape(N, C, H, 2, W, 2).sum(axis=(3, 5))     # exact 2x: sum each 2x2 block
    g = _sum_runs(dout, ix, x_shape[3], axis=3)
    return _sum_runs(g, iy, x_shape[2], axis=2)


def upsample_nearest(x, size=None, scale_factor=None):
    x = as_tensor(x)
    out, cache = upsample_nearest_forward(x.data, size, scale_factor)
    return make_result(out, (x,), lambda g: (upsample_nearest_backward(g, cache),), "upsample_nearest")
