"""Finite-difference gradient check: the test every backward pass must pass.

For a function ``f`` of Tensors, pick a random upstream gradient ``r`` and compare the
tape's gradient of ``sum(f(x) * r)`` with central differences
``(L(x + eps e_i) - L(x - eps e_i)) / (2 eps)`` for every element i of every float input.
Run it in float64 (float32 round-off swamps the differences) on tiny shapes.
"""

from __future__ import annotations

import numpy as np

from .tensor import Tensor, no_grad

__all__ = ["gradcheck", "numerical_gradient"]


def numerical_gradient(f, arrays, index, r, eps=1e-6):
    """Central-difference gradient of sum(f(*arrays) * r) with respect to arrays[index]."""
    x = arrays[index]
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = float((f(*arrays) * r).sum())
        flat[i] = old - eps
        fm = float((f(*arrays) * r).sum())
        flat[i] = old
        grad.reshape(-1)[i] = (fp - fm) / (2 * eps)
    return grad


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0, wrt=None):
    """Check the tape gradients of ``fn`` against finite differences.

    fn: callable taking Tensors (float inputs) / raw values (others) and returning a Tensor.
    inputs: list of arrays; float arrays become Tensors with requires_grad (copies).
    wrt: indices of the inputs to check (default: every float64 array).
    Returns the largest absolute error; raises AssertionError naming the input otherwise.
    """
    arrays = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in inputs]
    if wrt is None:
        wrt = [i for i, a in enumerate(arrays) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    for i in wrt:
        if arrays[i].dtype != np.float64:
            raise ValueError(f"gradcheck input {i} must be float64, got {arrays[i].dtype}")
    tensors = [Tensor(a, requires_grad=(i in wrt)) if i in wrt else a for i, a in enumerate(arrays)]
    out = fn(*tensors)
    r = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(r)

    def f_np(*arrs):
        with no_grad():
            args = [Tensor(a) if i in wrt else a for i, a in enumerate(arrs)]
            return fn(*args).data
    worst = 0.0
    for i in wrt:
        analytic = tensors[i].grad if tensors[i].grad is not None else np.zeros_like(arrays[i])
        numeric = numerical_gradient(f_np, arrays, i, r, eps)
        err = np.abs(analytic - numeric)
        tol = atol + rtol * np.abs(numeric)
        if not (err <= tol).all():
            j = np.unravel_index(np.argmax(err - tol), err.shape)
            raise AssertionError(f"gradcheck failed for input {i} at {tuple(int(v) for v in j)}: "
                                 f"analytic {analytic[j]:.6g} vs numeric {numeric[j]:.6g} "
                                 f"(max abs error {err.max():.3g})")
        worst = max(worst, float(err.max()))
    return worst
