"""Tensor and tape: reverse-mode automatic differentiation in one short module.

Concept: every operation on :class:`Tensor` objects computes its result with a plain
array function and, when a gradient is wanted, records *how to send a gradient back*:
the result keeps its parents and a closure ``backward_fn(grad_out) -> grads of the
parents``. Together these records form a graph (the "tape"). ``loss.backward()`` sorts
the graph topologically and walks it from the loss to the leaves, accumulating each
node's gradient with ``+=`` (a node used twice receives two contributions), which is the
chain rule applied node by node. This is how the paper's whole network is trained with
SGD (Mask R-CNN §3.1 "Training"; the losses are summed and back-propagated end to end).

Shapes: a Tensor wraps any NumPy (or CuPy) array; ``.grad`` has the same shape and dtype.

Design notes (why):
* The op functions themselves are plain array code (``*_forward`` / ``*_backward`` in the
  other modules); this file knows nothing about convolutions or losses.
* ``no_grad()`` (or inputs that do not require a gradient) means no closure is stored, so
  the forward caches (im2col columns, masks) are freed immediately.
* Gradient buffers are owned: the first contribution may alias an array produced by a
  backward function, so it is copied before any in-place ``+=`` touches it.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .._checks import array_module

__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "as_tensor", "make_result",
           "get_array_module", "unbroadcast", "describe_graph"]

_GRAD_ENABLED = True


def get_array_module(x):
    """numpy for NumPy arrays (and Tensors of them), cupy for CuPy arrays."""
    if isinstance(x, Tensor):
        x = x.data
    return array_module(x)


def is_grad_enabled() -> bool:
    return _GRAD_ENABLED


@contextlib.contextmanager
def no_grad():
    """Inside this block no graph is recorded (inference, evaluation, target building)."""
    global _GRAD_ENABLED
    prev, _GRAD_ENABLED = _GRAD_ENABLED, False
    try:
        yield
    finally:
        _GRAD_ENABLED = prev


@contextlib.contextmanager
def enable_grad():
    global _GRAD_ENABLED
    prev, _GRAD_ENABLED = _GRAD_ENABLED, True
    try:
        yield
    finally:
        _GRAD_ENABLED = prev


class Tensor:
    """An array plus what is needed to differentiate through it.

    data: the wrapped array (N-d, any float dtype for differentiable use).
    requires_grad: leaves with True collect ``.grad`` after ``backward()``.
    grad: None until a backward pass reaches this tensor (leaves only keep it).
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward_fn", "op", "__weakref__")
    __array_priority__ = 100  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        if not hasattr(data, "__array_interface__") and not hasattr(data, "__cuda_array_interface__"):
            data = np.asarray(data)
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = ()
        self._backward_fn = None
        self.op = "leaf"

    # ------------------------------------------------------------------ basics
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._backward_fn is None)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        g = f", op={self.op}" if self._backward_fn is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"Tensor(shape={tuple(self.shape)}, dtype={self.dtype}{g})"

    def numpy(self):
        """The wrapped array (a NumPy array on the CPU; CuPy arrays are copied to host)."""
        if type(self.data).__module__.startswith("cupy"):
            return self.data.get()
        return self.data

    def item(self):
        return self.data.item()

    def detach(self) -> "Tensor":
        """Same data, cut from the graph (no gradient flows through it)."""
        return Tensor(self.data, requires_grad=False)

    def zero_grad(self):
        self.grad = None

    # ------------------------------------------------------------------ backward
    def backward(self, grad=None, retain_graph: bool = False):
        """Back-propagate from this tensor; leaves with requires_grad accumulate ``.grad``.

        grad: upstream gradient, same shape as ``self``; default 1 for a scalar.
        retain_graph: keep the tape (and the forward caches it holds) for a second
        backward; by default each node's closure is dropped once used, as in torch, so a
        training loop does not hold two iterations' activations at once.
        """
        if not self.requires_grad:
            raise ValueError("backward() called on a tensor that does not require grad "
                             "(no input required grad, or it was built under no_grad())")
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"grad must be given for a non-scalar tensor of shape {self.shape}")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad)
            if grad.shape != self.shape:
                raise ValueError(f"grad has shape {grad.shape}, expected {self.shape}")
        order = _topological_order(self)
        grads = {id(self): grad}
        owned = set()
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward_fn is None:           # a leaf: keep its gradient
                if node.requires_grad:
                    if node.grad is None:
                        node.grad = g if id(node) in owned else g.copy()
                    else:
                        node.grad += g
                continue
            parent_grads = node._backward_fn(g)
            parents = node._parents
            if not retain_graph:
                node._backward_fn, node._parents = _freed_backward, ()
            for p, pg in zip(parents, parent_grads):
                if pg is None or not p.requires_grad:
                    continue
                key = id(p)
                prev = grads.get(key)
                if prev is None:
                    grads[key] = pg
                elif key in owned:
                    prev += pg
                else:                                # first buffer may alias: copy once
                    grads[key] = prev + pg
                    owned.add(key)

    # ------------------------------------------------------------------ operators
    def __add__(self, other):
        from .functional import add
        return add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        from .functional import sub
        return sub(self, other)

    def __rsub__(self, other):
        from .functional import sub
        return sub(other, self)

    def __mul__(self, other):
        from .functional import mul
        return mul(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        from .functional import div
        return div(self, other)

    def __neg__(self):
        from .functional import mul
        return mul(self, -1.0)

    def __matmul__(self, other):
        from .functional import matmul
        return matmul(self, other)

    def __getitem__(self, index):
        from .functional import getitem
        return getitem(self, index)

    def sum(self, axis=None, keepdims=False):
        from .functional import sum as _sum
        return _sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        from .functional import mean
        return mean(self, axis, keepdims)

    def reshape(self, *shape):
        from .functional import reshape
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return reshape(self, shape)

    def flatten(self, start_dim=1):
        from .functional import flatten
        return flatten(self, start_dim)

    def transpose(self, *axes):
        from .functional import transpose
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return transpose(self, axes or None)

    @property
    def T(self):
        return self.transpose()


def _freed_backward(grad):
    raise RuntimeError("backward through a graph a second time: its buffers were freed; "
                       "call backward(retain_graph=True) the first time")


def _topological_order(root):
    """Nodes reachable from ``root`` that require grad, parents before children."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for p in node._parents:
            if p.requires_grad and id(p) not in visited:
                stack.append((p, False))
    return order


def as_tensor(x) -> Tensor:
    """Wrap an array (or scalar) as a constant Tensor; Tensors pass through."""
    return x if isinstance(x, Tensor) else Tensor(x)


def make_result(out, parents, backward_fn, op: str) -> Tensor:
    """Wrap ``out``; record ``backward_fn`` only if grad mode is on and a parent needs it.

    backward_fn(grad_out) returns one gradient (or None) per parent, in order.
    """
    t = Tensor.__new__(Tensor)
    t.data = out
    t.grad = None
    t.op = op
    if _GRAD_ENABLED and any(p.requires_grad for p in parents):
        t.requires_grad = True
        t._parents = parents
        t._backward_fn = backward_fn
    else:
        t.requires_grad = False
        t._parents = ()
        t._backward_fn = None
    return t


def needs_grad(*tensors) -> bool:
    """True when an op on these tensors will record a graph (used to skip caches)."""
    return _GRAD_ENABLED and any(isinstance(t, Tensor) and t.requires_grad for t in tensors)


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting expanded so it has ``shape``."""
    if grad.shape == tuple(shape):
        return grad
    ndiff = grad.ndim - len(shape)
    axes = tuple(range(ndiff)) + tuple(i + ndiff for i, s in enumerate(shape)
                                       if s == 1 and grad.shape[i + ndiff] != 1)
    g = grad.sum(axis=axes, keepdims=True) if axes else grad
    return g.reshape(shape)


def describe_graph(root) -> list[str]:
    """The tape behind ``root`` as text, one node per line, in backward order.

    Each line reads ``#id op shape <- #parent ids``; leaves are marked ``leaf``.
    """
    order = _topological_order(root)
    ids = {id(n): i for i, n in enumerate(order)}
    lines = []
    for n in reversed(order):
        parents = ", ".join(f"#{ids[id(p)]}" for p in n._parents if id(p) in ids)
        kind = n.op if n._backward_fn is not None else "leaf"
        lines.append(f"#{ids[id(n)]:<3d} {kind:<18s} {str(tuple(n.shape)):<18s}"
                     + (f" <- {parents}" if parents else ""))
    return lines
