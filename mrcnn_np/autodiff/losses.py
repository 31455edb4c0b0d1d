"""The losses of Faster/Mask R-CNN as forward/backward pairs.

* ``cross_entropy(logits (R, K), target (R,))``: softmax classification (box head,
  Fast R-CNN loss ``L_cls``); mean over rows, optional class ``weight`` (K,) — then the
  mean is ``sum w[y_i] l_i / sum w[y_i]`` as torch — and ``ignore_index``.
* ``smooth_l1_loss(input, target, beta)``: ``0.5 x^2 / beta`` if ``|x| < beta`` else
  ``|x| - 0.5 beta`` (torchvision uses beta = 1/9 for the RPN and box losses; beta = 0 is
  L1). torchvision *sums* and divides by the number of sampled anchors/RoIs, so the
  default reduction here is "sum" and the caller divides (docs/REFERENCE.md §6, §10).
* ``binary_cross_entropy_with_logits(logits, targets)``: ``max(x,0) - x*t + log(1+e^{-|x|})``
  (stable); RPN objectness and the mask loss (per-pixel sigmoid BCE averaged over
  P x 28 x 28, Mask R-CNN §3 "L_mask"). Targets may be soft (in [0, 1]).
* ``spatial_softmax_cross_entropy(logits (R, K, S, S), target (R, K), valid (R, K))``:
  cross-entropy over the S*S positions of each map, mean over valid maps; keypoints (§5)
  and the multinomial mask-loss ablation (Table 2b). No valid map -> 0 with zero gradient.

Each wrapper returns a scalar Tensor (unless reduction="none").
"""

from __future__ import annotations

import numpy as np

from .activations import log_softmax_forward
from .tensor import as_tensor, get_array_module, make_result

__all__ = ["cross_entropy", "cross_entropy_forward", "cross_entropy_backward", "smooth_l1_loss",
           "smooth_l1_forward", "smooth_l1_backward", "binary_cross_entropy_with_logits",
           "bce_with_logits_forward", "bce_with_logits_backward", "spatial_softmax_cross_entropy"]


def _reduce(loss, reduction, denom=None):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / (loss.size if denom is None else denom)
    raise ValueError(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}")


def _reduce_backward(g, shape, reduction, denom, xp, dtype):
    if reduction == "none":
        return g
    scale = g / denom if reduction == "mean" else g
    return xp.broadcast_to(xp.asarray(scale, dtype), shape)


# ------------------------------------------------------------------ cross-entropy
def cross_entropy_forward(logits, target, weight=None, ignore_index=-100, reduction="mean"):
    """logits (R, K) float, target (R,) int in [0, K) or ignore_index -> loss, cache."""
    xp = get_array_module(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (R, K), got {logits.shape}")
    if target.shape != (logits.shape[0],) or target.dtype.kind not in "iu":
        raise ValueError(f"target must be an int array of shape ({logits.shape[0]},), got "
                         f"{target.shape} {target.dtype}")
    R, K = logits.shape
    valid = target != ignore_index
    if bool(((target[valid] < 0) | (target[valid] >= K)).any()):
        raise ValueError(f"target values must lie in [0, {K}) or equal ignore_index={ignore_index}")
    t = xp.where(valid, target, 0)
    logp = log_softmax_forward(logits, axis=1)
    w = xp.ones(K, logits.dtype) if weight is None else xp.asarray(weight, logits.dtype)
    wi = w[t] * valid                                      # per-row weight, 0 when ignored
    loss = -logp[xp.arange(R), t] * wi
    denom = wi.sum() if reduction == "mean" else None
    out = _reduce(loss, reduction, denom)
    return out, (logp, t, wi, reduction, denom)


def cross_entropy_backward(g, cache):
    logp, t, wi, reduction, denom = cache
    xp = get_array_module(logp)
    R = logp.shape[0]
    if reduction == "none":
        coef = g * wi
    elif reduction == "sum":
        coef = g * wi
    else:
        coef = g * wi / denom
    d = xp.exp(logp)                                       # softmax
    d[xp.arange(R), t] -= 1.0
    d *= coef.reshape(R, 1)
    return d.astype(logp.dtype, copy=False)


def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean"):
    logits = as_tensor(logits)
    target = np.asarray(target) if not hasattr(target, "dtype") else target
    out, cache = cross_entropy_forward(logits.data, target, weight, ignore_index, reduction)
    out = get_array_module(logits.data).asarray(out, logits.dtype)
    return make_result(out, (logits,), lambda g: (cross_entropy_backward(g, cache),), "cross_entropy")


# ------------------------------------------------------------------ smooth L1
def smooth_l1_forward(x, y, beta=1.0 / 9, reduction="sum"):
    """Elementwise smooth L1 between x and y (same shape); beta=0 gives L1."""
    if x.shape != y.shape:
        raise ValueError(f"smooth_l1 input and target shapes differ: {x.shape} vs {y.shape}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    xp = get_array_module(x)
    d = x - y
    ad = xp.abs(d)
    if beta == 0:
        loss = ad
    else:
        loss = xp.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta)
    return _reduce(loss, reduction), (d, beta, reduction)


def smooth_l1_backward(g, cache):
    """-> d loss / d x (the gradient to the target is its negative)."""
    d, beta, reduction = cache
    xp = get_array_module(d)
    grad = xp.sign(d) if beta == 0 else xp.where(xp.abs(d) < beta, d / beta, xp.sign(d))
    scale = _reduce_backward(g, d.shape, reduction, d.size, xp, d.dtype)
    return (grad * scale).astype(d.dtype, copy=False)


def smooth_l1_loss(input, target, beta=1.0 / 9, reduction="sum"):
    """Smooth L1 (torchvision's ``det_utils.smooth_l1_loss`` form, default sum)."""
    a, b = as_tensor(input), as_tensor(target)
    out, cache = smooth_l1_forward(a.data, b.data, beta, reduction)
    out = get_array_module(a.data).asarray(out, a.dtype)

    def backward(g):
        dx = smooth_l1_backward(g, cache)
        return dx, (-dx if b.requires_grad else None)
    return make_result(out, (a, b), backward, "smooth_l1_loss")


# ------------------------------------------------------------------ BCE with logits
def bce_with_logits_forward(x, t, weight=None, reduction="mean"):
    """x logits, t targets in [0, 1] (same shape) -> loss, cache."""
    if x.shape != t.shape:
        raise ValueError(f"logits and targets shapes differ: {x.shape} vs {t.shape}")
    xp = get_array_module(x)
    t = t.astype(x.dtype, copy=False)
    loss = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction), (x, t, weight, reduction)


def bce_with_logits_backward(g, cache):
    from .activations import sigmoid_forward
    x, t, weight, reduction = cache
    xp = get_array_module(x)
    d = sigmoid_forward(x) - t
    if weight is not None:
        d = d * weight
    return (d * _reduce_backward(g, x.shape, reduction, x.size, xp, x.dtype)).astype(x.dtype, copy=False)


def binary_cross_entropy_with_logits(logits, targets, weight=None, reduction="mean"):
    logits = as_tensor(logits)
    t = targets.data if hasattr(targets, "requires_grad") else targets
    xp = get_array_module(logits.data)
    out, cache = bce_with_logits_forward(logits.data, xp.asarray(t), weight, reduction)
    out = xp.asarray(out, logits.dtype)
    return make_result(out, (logits,), lambda g: (bce_with_logits_backward(g, cache),), "bce_with_logits")


# ------------------------------------------------------------------ spatial softmax CE
def spatial_softmax_cross_entropy(logits, target, valid=None):
    """Cross-entropy over the S*S positions of each (r, k) map, mean over valid maps.

    logits: (R, K, S, S) Tensor; target: (R, K) int flat index iy*S + ix;
    valid: (R, K) bool (default all). No valid map -> loss 0 (logits.sum() * 0, as tv).
    """
    logits = as_tensor(logits)
    if logits.ndim != 4:
        raise ValueError(f"logits must have shape (R, K, S, S), got {logits.shape}")
    R, K, S1, S2 = logits.shape
    target = np.asarray(target)
    if target.shape != (R, K):
        raise ValueError(f"target must have shape ({R}, {K}), got {target.shape}")
    valid = np.ones((R, K), bool) if valid is None else np.asarray(valid, bool)
    if valid.shape != (R, K):
        raise ValueError(f"valid must have shape ({R}, {K}), got {valid.shape}")
    flat = logits.reshape(R * K, S1 * S2)
    tgt = np.where(valid, target, -100).reshape(-1).astype(np.int64)
    if not valid.any():
        return flat.sum() * 0.0
    return cross_entropy(flat, tgt, ignore_index=-100)
