"""One SGD step of the training loop, and how divergence is detected.

    lr(it) -> next batch (shuffled, flipped) -> [shards 1.. to the helper processes] ->
    forward (five losses) -> backward -> [average the helpers' gradients] -> every loss
    finite? -> gradient norm (clipped if asked) finite? -> SGD step -> parameters finite?

A step that meets NaN or inf raises ``TrainingDiverged`` naming what went wrong, the
iteration and the lr. The forward pass itself may stop on non-finite activations: the
checks inside the ops raise ``NonFiniteError`` (a ValueError subclass), which is caught
here by its class (any other error is a bug and goes through unchanged). NumPy's overflow
warnings are silenced during the step: the user sees the divergence message alone.

The order of the random draws (loader, then the model's samplers) is the training
recipe: changing it changes every loss of every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrcnn_np._checks import NonFiniteError
from mrcnn_np.autodiff.optim import clip_grad_norm_
from mrcnn_np.engine.checkpoint import latest_checkpoint
from mrcnn_np.engine.parallel import balanced_order, combine, losses_backward


class TrainingDiverged(FloatingPointError):
    """A loss or the gradient norm became NaN or inf; the message names which and when."""


@dataclass
class StepResult:
    """What one step logs: the losses (name -> float), the sampling counts
    (positive anchors, positive RoIs), the total loss, the lr and the gradient norm."""

    values: dict
    counts: tuple
    total: float
    lr: float
    grad_norm: float


def train_step(it: int, model, params, opt, sched, loader, names, clip: float, out_dir, pool=None,
               sizes=(1,)) -> StepResult:
    """Run iteration ``it``: one batch, one gradient, one SGD update of ``params``.

    pool: ``ShardWorkers`` computing the gradients of shards 1.. (None: one process);
    sizes: images per shard. out_dir: the run folder (named in a divergence message).
    Raises TrainingDiverged; the parameters are then not to be trusted.
    """
    lr = sched.apply(opt, it)
    images, targets, _ = loader.next_batch()
    with np.errstate(all="ignore"):
        if pool is not None:  # shards 1.. to the helpers, shard 0 here
            bounds = np.cumsum([0, *sizes])
            order = balanced_order([len(t["boxes"]) for t in targets], sizes)
            images, targets = [images[i] for i in order], [targets[i] for i in order]
            pool.submit(it, [(images[a:b], targets[a:b]) for a, b in zip(bounds[1:-1], bounds[2:])])
            images, targets = images[:sizes[0]], targets[:sizes[0]]
        try:
            out_losses = model(images, targets)
        except NonFiniteError as e:  # activations overflowed inside the forward pass
            raise diverged(f"the forward pass failed ({e})", it, lr, out_dir) from None
        opt.zero_grad()
        values, counts, total = losses_backward(out_losses, names)
        del out_losses  # free the graph before the helpers' gradients arrive
        if pool is not None:
            try:
                helpers = pool.collect()
            except NonFiniteError as e:
                raise diverged(f"the forward pass failed ({e})", it, lr, out_dir) from None
            values, counts, total = combine(params, values, counts, total, helpers, sizes)
        stop_if_not_finite(values, it, lr, out_dir)
        gnorm = clip_grad_norm_(params, clip if clip > 0 else math.inf)
        stop_if_not_finite({"the gradient norm": gnorm}, it, lr, out_dir)
        opt.step()
        if not all(np.isfinite(p.data).all() for p in params):  # lr * grad overflowed
            raise diverged("a parameter became NaN or inf in the SGD step", it, lr, out_dir)
    return StepResult(values, counts, total, lr, gnorm)


def stop_if_not_finite(values: dict, it: int, lr: float, out_dir) -> None:
    """Raise TrainingDiverged if one of ``values`` (name -> float) is NaN or inf."""
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise diverged(f"{bad[0]} is {values[bad[0]]}", it, lr, out_dir)


def diverged(what: str, it: int, lr: float, out_dir) -> TrainingDiverged:
    """The exception for divergence at iteration ``it``, naming the last good checkpoint."""
    ckpt = latest_checkpoint(Path(out_dir))
    kept = (f"the last good checkpoint is {ckpt} (kept)" if ckpt is not None
            else "no checkpoint had been written yet")
    return TrainingDiverged(f"{what} at iteration {it} (lr {lr:.4g}); training stopped, {kept}. "
                            f"Lower the learning rate or set gradient clipping.")


__all__ = ["StepResult", "TrainingDiverged", "diverged", "stop_if_not_finite", "train_step"]
