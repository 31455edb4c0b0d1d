"""Sigmoid, softmax and log-softmax (numerically stable forms).

* sigmoid: ``1 / (1 + exp(-x))`` evaluated as ``exp(min(x,0)) / (1 + exp(-|x|))`` so no
  exponential overflows; derivative ``s * (1 - s)``. Mask R-CNN's per-pixel mask
  probabilities (§3 "Mask Representation") and the RPN's objectness.
* softmax over an axis: subtract the maximum first; backward
  ``dx = s * (g - sum(g * s))``.
* log_softmax: ``x - max - log(sum(exp(x - max)))``; backward ``g - softmax * sum(g)``.

Shapes: any; ``axis`` selects the class axis (default last).
"""

from __future__ import annotations

from .tensor import as_tensor, get_array_module, make_result

__all__ = ["sigmoid_forward", "sigmoid", "softmax_forward", "softmax_backward", "softmax",
           "log_softmax_forward", "log_softmax_backward", "log_softmax"]


def sigmoid_forward(x):
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def sigmoid(x):
    x = as_tensor(x)
    s = sigmoid_forward(x.data)
    return make_result(s, (x,), lambda g: (g * s * (1 - s),), "sigmoid")


def softmax_forward(x, axis=-1):
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def softmax_backward(g, s, axis=-1):
    return s * (g - (g * s).sum(axis=axis, keepdims=True))


def softmax(x, axis=-1):
    x = as_tensor(x)
    s = softmax_forward(x.data, axis)
    return make_result(s, (x,), lambda g: (softmax_backward(g, s, axis),), "softmax")


def log_softmax_forward(x, axis=-1):
    xp = get_array_module(x)
    z = x - x.max(axis=axis, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))


def log_softmax_backward(g, logp, axis=-1):
    xp = get_array_module(g)
    return g - xp.exp(logp) * g.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    x = as_tensor(x)
    lp = log_softmax_forward(x.data, axis)
    return make_result(lp, (x,), lambda g: (log_softmax_backward(g, lp, axis),), "log_softmax")
