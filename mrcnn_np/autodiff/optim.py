"""SGD with momentum and weight decay, the warmup + step learning-rate schedule, clipping.

SGD (PyTorch's update rule, so it can be compared step by step with ``torch.optim.SGD``)::

    g   = grad + weight_decay * p
    buf = g                          (first step)
    buf = momentum * buf + (1 - dampening) * g
    p  -= lr * (g + momentum * buf  if nesterov else  buf)

Mask R-CNN §3.1 trains with SGD, momentum 0.9, weight decay 1e-4, lr 0.02 for 160k
iterations, divided by 10 at 120k; Detectron adds a linear warmup. The schedule here is
``lr(it) = base_lr * warmup(it) * gamma ** (number of milestones <= it)`` with
``warmup(it) = warmup_factor * (1 - it / warmup_iters) + it / warmup_iters`` for
``it < warmup_iters`` (torchvision's reference "linear" warmup; 1 afterwards).

Parameters are updated in place (``p.data -= ...``), so the arrays a Module holds remain
the same objects.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

__all__ = ["SGD", "WarmupMultiStepLR", "clip_grad_norm_"]


class SGD:
    """params: iterable of Parameters, or of dicts {"params": [...], "lr": ..., ...} (groups)."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, dampening=0.0, nesterov=False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")
        params = list(params)
        if not params:
            raise ValueError("SGD got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, dampening=dampening,
                        nesterov=nesterov)
        self.param_groups = []
        for g in params:
            group = dict(defaults, **{k: v for k, v in g.items() if k != "params"})
            group["params"] = list(g["params"])
            group.setdefault("lr_scale", 1.0)
            self.param_groups.append(group)
        self._all = [p for g in self.param_groups for p in g["params"]]
        self.momentum_buffers = [None] * len(self._all)
        self.steps = 0

    def zero_grad(self):
        for p in self._all:
            p.grad = None

    def step(self):
        i = 0
        for group in self.param_groups:
            lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
            damp, nest = group["dampening"], group["nesterov"]
            for p in group["params"]:
                g = p.grad
                if g is not None and p.requires_grad:
                    if wd:
                        g = g + wd * p.data
                    if mom:
                        buf = self.momentum_buffers[i]
                        if buf is None:
                            buf = self.momentum_buffers[i] = g.copy()
                        else:
                            buf *= mom
                            buf += (1.0 - damp) * g if damp else g
                        g = g + mom * buf if nest else buf
                    p.data -= lr * g
                i += 1
        self.steps += 1

    def state_dict(self) -> dict:
        """Plain arrays (savable with np.savez): step count, group lrs, momentum buffers."""
        out = {"steps": np.array(self.steps, np.int64),
               "lrs": np.array([g["lr"] for g in self.param_groups], np.float64)}
        for i, b in enumerate(self.momentum_buffers):
            if b is not None:
                out[f"momentum_buffer.{i}"] = b
        return out

    def load_state_dict(self, state: dict):
        lrs = np.asarray(state["lrs"])
        if len(lrs) != len(self.param_groups):
            raise ValueError(f"state has {len(lrs)} parameter groups, optimizer has {len(self.param_groups)}")
        for g, lr in zip(self.param_groups, lrs):
            g["lr"] = float(lr)
        self.steps = int(state["steps"])
        bufs = [None] * len(self._all)
        for k, v in state.items():
            if k.startswith("momentum_buffer."):
                i = int(k.split(".")[1])
                if i >= len(self._all) or tuple(v.shape) != tuple(self._all[i].shape):
                    raise ValueError(f"{k} has shape {tuple(v.shape)}, which does not match parameter {i}"
                                     f"{'' if i >= len(self._all) else ' of shape ' + str(tuple(self._all[i].shape))}")
                bufs[i] = np.array(v, dtype=self._all[i].dtype)
        self.momentum_buffers = bufs


class WarmupMultiStepLR:
    """Linear warmup then step decay: ``lr(it) = base_lr * warmup(it) * gamma ** k``."""

    def __init__(self, base_lr, warmup_iters=0, warmup_factor=1e-3, milestones=(), gamma=0.1):
        milestones = list(milestones)
        if milestones != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {milestones}")
        if warmup_iters < 0 or not 0 <= warmup_factor <= 1:
            raise ValueError(f"need warmup_iters >= 0 and warmup_factor in [0, 1], got {warmup_iters}, {warmup_factor}")
        self.base_lr, self.warmup_iters, self.warmup_factor = base_lr, warmup_iters, warmup_factor
        self.milestones, self.gamma = milestones, gamma

    def factor(self, iteration: int) -> float:
        f = self.gamma ** bisect.bisect_right(self.milestones, iteration)
        if iteration < self.warmup_iters:
            alpha = iteration / self.warmup_iters
            f *= self.warmup_factor * (1 - alpha) + alpha
        return f

    def __call__(self, iteration: int) -> float:
        return self.base_lr * self.factor(iteration)

    def apply(self, optimizer: SGD, iteration: int) -> float:
        """Set every group's lr to lr(iteration) * group["lr_scale"]; returns lr(iteration)."""
        lr = self(iteration)
        for g in optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        return lr


def clip_grad_norm_(params, max_norm: float) -> float:
    """Scale gradients so their global L2 norm is at most max_norm; returns the norm before."""
    grads = [p.grad for p in params if p.grad is not None]
    total = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g *= coef
    return total
