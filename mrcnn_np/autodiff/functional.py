"""Elementwise, reduction and shape ops on Tensors, plus the whole op namespace.

Each op is a forward/backward pair on plain arrays and a thin wrapper that records the
backward on the tape (see :mod:`.tensor`). Broadcasting follows NumPy; the backward of a
broadcast operand sums the gradient over the broadcast axes (:func:`unbroadcast`).

Import this module as ``F`` for everything: ``F.conv2d``, ``F.relu``, ``F.cross_entropy``...
"""

from __future__ import annotations

import numpy as np

from .tensor import Tensor, as_tensor, get_array_module, make_result, unbroadcast

__all__ = ["add", "sub", "mul", "div", "matmul", "sum", "mean", "reshape", "flatten",
           "transpose", "concat", "stack", "getitem", "exp", "log"]


def _binary_parts(a, b):
    """Both operands as Tensors. A Python scalar takes the other operand's dtype (as in
    torch), so ``loss * 0.5`` stays float32 instead of being promoted to float64."""
    if isinstance(a, (int, float)) and isinstance(b, Tensor):
        a = Tensor(b.data.dtype.type(a))
    elif isinstance(b, (int, float)) and isinstance(a, Tensor):
        b = Tensor(a.data.dtype.type(b))
    a, b = as_tensor(a), as_tensor(b)
    return a, b, a.data, b.data


def add(a, b) -> Tensor:
    """a + b with NumPy broadcasting (bias-like shapes)."""
    a, b, x, y = _binary_parts(a, b)
    sa, sb = x.shape, y.shape
    return make_result(x + y, (a, b),
                       lambda g: (unbroadcast(g, sa), unbroadcast(g, sb)), "add")


def sub(a, b) -> Tensor:
    a, b, x, y = _binary_parts(a, b)
    sa, sb = x.shape, y.shape
    return make_result(x - y, (a, b),
                       lambda g: (unbroadcast(g, sa), unbroadcast(-g, sb)), "sub")


def mul(a, b) -> Tensor:
    """Elementwise product with broadcasting: d(a*b)/da = b."""
    a, b, x, y = _binary_parts(a, b)

    def backward(g):
        return (unbroadcast(g * y, x.shape) if a.requires_grad else None,
                unbroadcast(g * x, y.shape) if b.requires_grad else None)
    return make_result(x * y, (a, b), backward, "mul")


def div(a, b) -> Tensor:
    a, b, x, y = _binary_parts(a, b)

    def backward(g):
        return (unbroadcast(g / y, x.shape) if a.requires_grad else None,
                unbroadcast(-g * x / (y * y), y.shape) if b.requires_grad else None)
    return make_result(x / y, (a, b), backward, "div")


def matmul(a, b) -> Tensor:
    """a @ b for 2-D operands (M, K) @ (K, P)."""
    a, b, x, y = _binary_parts(a, b)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[0]:
        raise ValueError(f"matmul needs (M, K) @ (K, P), got {x.shape} @ {y.shape}")
    return make_result(x @ y, (a, b), lambda g: (g @ y.T if a.requires_grad else None,
                                                 x.T @ g if b.requires_grad else None), "matmul")


def exp(a) -> Tensor:
    a = as_tensor(a)
    out = get_array_module(a.data).exp(a.data)
    return make_result(out, (a,), lambda g: (g * out,), "exp")


def log(a) -> Tensor:
    a = as_tensor(a)
    x = a.data
    return make_result(get_array_module(x).log(x), (a,), lambda g: (g / x,), "log")


def sum(a, axis=None, keepdims=False) -> Tensor:  # noqa: A001  (mirrors numpy/torch)
    a = as_tensor(a)
    x = a.data
    xp = get_array_module(x)

    def backward(g):
        if not keepdims and axis is not None:
            g = xp.expand_dims(g, axis)
        return (xp.broadcast_to(g, x.shape),)
    return make_result(x.sum(axis=axis, keepdims=keepdims), (a,), backward, "sum")


def mean(a, axis=None, keepdims=False) -> Tensor:
    a = as_tensor(a)
    x = a.data
    xp = get_array_module(x)
    out = x.mean(axis=axis, keepdims=keepdims)
    count = x.size // max(out.size, 1) if x.size else 1

    def backward(g):
        if not keepdims and axis is not None:
            g = xp.expand_dims(g, axis)
        return (xp.broadcast_to(g / count, x.shape),)
    return make_result(out, (a,), backward, "mean")


def reshape(a, shape) -> Tensor:
    a = as_tensor(a)
    x = a.data
    return make_result(x.reshape(shape), (a,), lambda g: (g.reshape(x.shape),), "reshape")


def flatten(a, start_dim=1) -> Tensor:
    """Merge all axes from ``start_dim`` on: (R, C, H, W) -> (R, C*H*W) in (c, y, x) order."""
    a = as_tensor(a)
    return reshape(a, tuple(a.shape[:start_dim]) + (-1,))


def transpose(a, axes=None) -> Tensor:
    a = as_tensor(a)
    x = a.data
    xp = get_array_module(x)
    inv = None if axes is None else tuple(int(i) for i in np.argsort(axes))
    return make_result(xp.transpose(x, axes), (a,), lambda g: (xp.transpose(g, inv),), "transpose")


def concat(tensors, axis=0) -> Tensor:
    """Concatenate along ``axis``; the backward splits the gradient back."""
    ts = tuple(as_tensor(t) for t in tensors)
    if not ts:
        raise ValueError("concat needs at least one tensor")
    xp = get_array_module(ts[0].data)
    sizes = [t.shape[axis] for t in ts]
    bounds = np.cumsum(sizes)[:-1]

    def backward(g):
        return tuple(xp.split(g, bounds, axis=axis))
    return make_result(xp.concatenate([t.data for t in ts], axis=axis), ts, backward, "concat")


def stack(tensors, axis=0) -> Tensor:
    ts = [reshape(t, t.shape[:axis] + (1,) + t.shape[axis:]) for t in map(as_tensor, tensors)]
    return concat(ts, axis=axis)


def _is_basic_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (slice, int, np.integer)) or i is None or i is Ellipsis for i in items)


def getitem(a, index) -> Tensor:
    """a[index]: slices, or gathers of rows/elements (sampled RoIs, per-class channels).

    The backward scatters the gradient back; repeated indices add up (``np.add.at``).
    """
    a = as_tensor(a)
    x = a.data
    xp = get_array_module(x)
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if getattr(index, "dtype", None) == bool:       # boolean mask -> row indices (for add.at)
        index = xp.nonzero(index)[0] if index.ndim == 1 else xp.nonzero(index)
    basic = _is_basic_index(index)

    def backward(g):
        dx = xp.zeros_like(x)
        if basic:
            dx[index] = g
        elif xp is np:
            np.add.at(dx, index, g)
        else:
            xp.add.at(dx, index, g)
        return (dx,)
    return make_result(x[index], (a,), backward, "getitem")


# ------------------------------------------------------------------ the op namespace
from .activations import log_softmax, sigmoid, softmax  # noqa: E402
from .conv import conv2d  # noqa: E402
from .conv_transpose import conv_transpose2d  # noqa: E402
from .layers import linear, max_pool2d, relu, upsample_nearest  # noqa: E402
from .losses import (binary_cross_entropy_with_logits, cross_entropy, smooth_l1_loss,  # noqa: E402
                     spatial_softmax_cross_entropy)
from .norm import frozen_batch_norm, group_norm  # noqa: E402
from .roi import crop_and_resize, roi_align, roi_pool, roi_warp  # noqa: E402

__all__ += ["conv2d", "conv_transpose2d", "linear", "relu", "max_pool2d", "upsample_nearest",
            "group_norm", "frozen_batch_norm", "sigmoid", "softmax", "log_softmax",
            "cross_entropy", "smooth_l1_loss", "binary_cross_entropy_with_logits",
            "spatial_softmax_cross_entropy", "roi_align", "roi_pool", "roi_warp", "crop_and_resize"]
from .upsample import upsample_bilinear  # noqa: E402
__all__ += ["upsample_bilinear"]
