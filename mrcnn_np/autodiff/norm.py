"""Normalisation layers: GroupNorm and frozen (affine) batch norm.

GroupNorm (Wu & He 2018; used by the GN baselines of Mask R-CNN and by our teaching
model, which trains with batch 4 where BatchNorm statistics would be useless): split the
C channels into G groups, normalise each (image, group) over its channels and pixels::

    mu, var = mean and (biased) variance of x[n, group g]      (torch: eps = 1e-5)
    xhat = (x - mu) / sqrt(var + eps);   y = xhat * gamma[c] + beta[c]

Backward (per (n, g), with dxhat = dy * gamma and m elements in the group)::

    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    dgamma[c] = sum_{n,h,w} dy * xhat;   dbeta[c] = sum_{n,h,w} dy

FrozenBatchNorm2d (Mask R-CNN §3.1: "BN statistics are frozen" with ImageNet weights):
``y = x * scale + shift`` with ``scale = weight / sqrt(running_var + eps)`` and
``shift = bias - running_mean * scale``; only x gets a gradient, ``dx = dy * scale``.

Shapes: x (N, C, H, W); gamma, beta, weight, bias, running_* (C,).
Implementations: ``_numpy`` (vectorised, also CuPy) and ``_numba`` (one fused pass per
(n, g), the CPU default).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..ops.dispatch import resolve_impl
from .im2col import PARALLEL_MIN
from .tensor import Tensor, as_tensor, make_result

__all__ = ["group_norm_forward", "group_norm_backward", "group_norm", "frozen_batch_norm_forward",
           "frozen_batch_norm_backward", "frozen_batch_norm"]


def _check(x, num_groups, gamma, beta):
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"group_norm input must have shape (N, C, H, W), got {getattr(x, 'shape', None)}")
    C = x.shape[1]
    if num_groups < 1 or C % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide the channel count C={C}")
    for name, a in (("weight", gamma), ("bias", beta)):
        if a is not None and tuple(a.shape) != (C,):
            raise ValueError(f"group_norm {name} must have shape ({C},), got {tuple(a.shape)}")


# ------------------------------------------------------------------ numpy twin
def group_norm_forward_numpy(x, num_groups, gamma, beta, eps):
    N, C, H, W = x.shape
    xg = x.reshape(N, num_groups, -1)
    mu = xg.mean(axis=2, keepdims=True)
    xc = xg - mu
    var = (xc * xc).mean(axis=2, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps) if type(x).__module__ == "numpy" else (var + eps) ** -0.5
    xhat = (xc * rstd).reshape(N, C, H, W)
    y = xhat * gamma.reshape(1, C, 1, 1) + beta.reshape(1, C, 1, 1)
    return y, (xhat, rstd.reshape(N, num_groups), gamma)


def group_norm_backward_numpy(dy, cache):
    xhat, rstd, gamma = cache
    N, C, H, W = xhat.shape
    G = rstd.shape[1]
    dgamma = (dy * xhat).sum(axis=(0, 2, 3))
    dbeta = dy.sum(axis=(0, 2, 3))
    dxhat = (dy * gamma.reshape(1, C, 1, 1)).reshape(N, G, -1)
    xh = xhat.reshape(N, G, -1)
    dx = dxhat - dxhat.mean(axis=2, keepdims=True) - xh * (dxhat * xh).mean(axis=2, keepdims=True)
    dx *= rstd[:, :, None]
    return dx.reshape(N, C, H, W), dgamma, dbeta


# ------------------------------------------------------------------ numba (fused)
@njit(cache=True, inline="always")
def _gn_forward_task(x, t, G, gamma, beta, eps, y, mean, rstd):
    """Normalise group t = n * G + g: two passes for mean and variance, one to write y."""
    N, C, H, W = x.shape
    Cg = C // G
    m = Cg * H * W
    n = t // G
    g = t % G
    s = 0.0
    for c in range(g * Cg, (g + 1) * Cg):
        for h in range(H):
            for w in range(W):
                s += x[n, c, h, w]
    mu = s / m
    ss = 0.0
    for c in range(g * Cg, (g + 1) * Cg):
        for h in range(H):
            for w in range(W):
                d = x[n, c, h, w] - mu
                ss += d * d
    r = 1.0 / np.sqrt(ss / m + eps)
    mean[n, g] = mu
    rstd[n, g] = r
    for c in range(g * Cg, (g + 1) * Cg):
        a = gamma[c] * r                         # y = x * a + b, one multiply-add per pixel
        b = beta[c] - mu * a
        for h in range(H):
            for w in range(W):
                y[n, c, h, w] = x[n, c, h, w] * a + b


@njit(cache=True, inline="always")
def _gn_backward_task(dy, x, t, G, gamma, mean, rstd, dx, dgamma_nc, dbeta_nc):
    N, C, H, W = x.shape
    Cg = C // G
    m = Cg * H * W
    n = t // G
    g = t % G
    mu = mean[n, g]
    r = rstd[n, g]
    s1 = 0.0                                     # sum dxhat
    s2 = 0.0                                     # sum dxhat * xhat
    for c in range(g * Cg, (g + 1) * Cg):
        sdy = 0.0
        sdyx = 0.0
        for h in range(H):
            for w in range(W):
                d = dy[n, c, h, w]
                sdy += d
                sdyx += d * ((x[n, c, h, w] - mu) * r)
        dgamma_nc[n, c] = sdyx
        dbeta_nc[n, c] = sdy
        s1 += sdy * gamma[c]
        s2 += sdyx * gamma[c]
    k1 = s1 / m
    k2 = s2 / m
    for c in range(g * Cg, (g + 1) * Cg):
        gc = gamma[c] * r
        for h in range(H):
            for w in range(W):
                xh = (x[n, c, h, w] - mu) * r
                dx[n, c, h, w] = gc * dy[n, c, h, w] - r * (k1 + xh * k2)


@njit(cache=True)
def _gn_forward_serial(x, G, gamma, beta, eps, y, mean, rstd):
    for t in range(x.shape[0] * G):
        _gn_forward_task(x, t, G, gamma, beta, eps, y, mean, rstd)


@njit(parallel=True, cache=True)
def _gn_forward_parallel(x, G, gamma, beta, eps, y, mean, rstd):
    for t in prange(x.shape[0] * G):
        _gn_forward_task(x, t, G, gamma, beta, eps, y, mean, rstd)


@njit(cache=True)
def _gn_backward_serial(dy, x, G, gamma, mean, rstd, dx, dgamma_nc, dbeta_nc):
    for t in range(x.shape[0] * G):
        _gn_backward_task(dy, x, t, G, gamma, mean, rstd, dx, dgamma_nc, dbeta_nc)


@njit(parallel=True, cache=True)
def _gn_backward_parallel(dy, x, G, gamma, mean, rstd, dx, dgamma_nc, dbeta_nc):
    for t in prange(x.shape[0] * G):
        _gn_backward_task(dy, x, t, G, gamma, mean, rstd, dx, dgamma_nc, dbeta_nc)


def group_norm_forward_numba(x, num_groups, gamma, beta, eps):
    x = np.ascontiguousarray(x)
    N = x.shape[0]
    y = np.empty_like(x)
    mean = np.empty((N, num_groups), np.float64)
    rstd = np.empty((N, num_groups), np.float64)
    kernel = _gn_forward_parallel if x.size >= PARALLEL_MIN else _gn_forward_serial
    kernel(x, num_groups, gamma, beta, float(eps), y, mean, rstd)
    return y, (x, mean, rstd, gamma)


def group_norm_backward_numba(dy, cache):
    x, mean, rstd, gamma = cache
    N, C = x.shape[:2]
    dx = np.empty_like(x)
    dgamma_nc = np.empty((N, C), np.float64)
    dbeta_nc = np.empty((N, C), np.float64)
    kernel = _gn_backward_parallel if x.size >= PARALLEL_MIN else _gn_backward_serial
    kernel(np.ascontiguousarray(dy), x, mean.shape[1], gamma, mean, rstd, dx, dgamma_nc, dbeta_nc)
    return dx, dgamma_nc.sum(0).astype(x.dtype), dbeta_nc.sum(0).astype(x.dtype)


def group_norm_forward(x, num_groups, gamma=None, beta=None, eps=1e-5, *, impl=None):
    """GroupNorm forward: x (N, C, H, W) -> y, cache. gamma/beta default to 1/0."""
    _check(x, num_groups, gamma, beta)
    C = x.shape[1]
    gamma = np.ones(C, x.dtype) if gamma is None else gamma
    beta = np.zeros(C, x.dtype) if beta is None else beta
    impl = resolve_impl(impl, x, available=("numpy", "numba", "cupy"))
    if impl == "numba":
        y, cache = group_norm_forward_numba(x, num_groups, gamma, beta, eps)
    else:
        y, cache = group_norm_forward_numpy(x, num_groups, gamma, beta, eps)
    return y, (impl, cache)


def group_norm_backward(dy, cache):
    """-> dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    impl, inner = cache
    if impl == "numba":
        return group_norm_backward_numba(dy, inner)
    return group_norm_backward_numpy(dy, inner)


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5, *, impl=None):
    """Differentiable GroupNorm on Tensors (torch ``F.group_norm`` semantics)."""
    x = as_tensor(x)
    parents = (x,) + tuple(as_tensor(t) for t in (weight, bias) if t is not None)
    y, cache = group_norm_forward(x.data, num_groups, None if weight is None else parents[1].data,
                                  None if bias is None else parents[-1].data, eps, impl=impl)

    def backward(g):
        dx, dgamma, dbeta = group_norm_backward(g, cache)
        grads = [dx]
        if weight is not None:
            grads.append(dgamma)
        if bias is not None:
            grads.append(dbeta)
        return tuple(grads)
    return make_result(y, parents, backward, "group_norm")


# ------------------------------------------------------------------ frozen batch norm
def frozen_batch_norm_forward(x, weight, bias, running_mean, running_var, eps=1e-5):
    """y = x * scale + shift per channel; the statistics are constants."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"frozen_batch_norm input must have shape (N, C, H, W), got {getattr(x, 'shape', None)}")
    C = x.shape[1]
    for name, a in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if tuple(a.shape) != (C,):
            raise ValueError(f"frozen_batch_norm {name} must have shape ({C},), got {tuple(a.shape)}")
    scale = (weight * (running_var + eps) ** -0.5).astype(x.dtype)
    shift = (bias - running_mean * scale).astype(x.dtype)
    return x * scale.reshape(1, C, 1, 1) + shift.reshape(1, C, 1, 1), scale


def frozen_batch_norm_backward(dy, scale):
    return dy * scale.reshape(1, -1, 1, 1)


def frozen_batch_norm(x, weight, bias, running_mean, running_var, eps=1e-5):
    """Differentiable in x only (weight, bias and statistics are frozen arrays)."""
    x = as_tensor(x)
    arrs = [a.data if isinstance(a, Tensor) else a for a in (weight, bias, running_mean, running_var)]
    y, scale = frozen_batch_norm_forward(x.data, *arrs, eps=eps)
    return make_result(y, (x,), lambda g: (frozen_batch_norm_backward(g, scale),), "frozen_batch_norm")
