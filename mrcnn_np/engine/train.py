"""The training loop: SGD on the multi-task loss, logging, evaluation, checkpoints, resume.

Mask R-CNN §3.1: "We train on 8 GPUs (so effective minibatch size is 16) for 160k
iterations, with a learning rate of 0.02 which is decreased by 10 at the 120k iteration.
We use a weight decay of 0.0001 and momentum of 0.9." Detectron adds a linear warmup.
``TrainConfig`` keeps that recipe but scales it down: the schedule length, the warmup and
the step milestones (given as *fractions* of the schedule, so a 1,000-iteration run drops
the lr at 75 % like the paper's 120k of 160k) are fields, as is optional gradient clipping
(useful when training from scratch with a small batch).

A config with ``backbone_init`` other than "scratch" starts a fresh run from a pretrained
backbone body (``detection/pretrained.py``); ``freeze_at`` keeps its first layers fixed.

``train`` is built from named pieces:

    run_folder.py   the folder's files (losses.csv, eval.json, checkpoints, model.npz) and
                    the rule that a run never overwrites what it did not create
    resume.py       what a checkpoint holds to continue exactly, restoring it (falling back
                    to an older checkpoint when the newest is unreadable)
    step.py         one iteration: lr -> batch -> forward -> backward -> clip -> SGD step,
                    and divergence (``TrainingDiverged``)
    evaluate.py     ``evaluate_model``: COCO AP on (a subset of) the validation set

Every ``checkpoint_every`` iterations a checkpoint (``checkpoint.py``) is written; every
``eval_every`` iterations the model is scored with COCO AP.

``train(..., resume=True)`` rebuilds the model, optimizer, data stream and generators from
the newest checkpoint and continues: the losses are the same as an uninterrupted run's
(tests/engine/test_train.py checks this). Rows a killed run logged after its last
checkpoint are dropped from losses.csv and recomputed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mrcnn_np.autodiff.optim import SGD, WarmupMultiStepLR
from mrcnn_np.detection.convert import save_weights
from mrcnn_np.detection.mask_rcnn import MaskRCNN, loss_names
from mrcnn_np.detection.pretrained import backbone_weights_path, load_pretrained_backbone
from mrcnn_np.engine.checkpoint import latest_checkpoint, save_checkpoint, write_classes
from mrcnn_np.engine.data import BatchLoader
from mrcnn_np.engine.evaluate import evaluate_model
from mrcnn_np.engine.parallel import ShardWorkers, shard_sizes
from mrcnn_np.engine.resume import RESUME_FREE, jsonable, restore, snapshot
from mrcnn_np.engine.run_folder import COLUMNS, RunFolder, log_columns, read_losses
from mrcnn_np.engine.step import TrainingDiverged, train_step
from mrcnn_np.memory import keep_freed_memory
from mrcnn_np.threads import set_num_threads


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe and the run's bookkeeping (all plain values, saved in checkpoints).

    iterations: SGD steps in the schedule; batch_size: images per step.
    lr, momentum, weight_decay: SGD (paper: 0.02 for batch 16, 0.9, 1e-4).
    warmup_iters, warmup_factor: the lr rises linearly from lr * warmup_factor to lr.
    milestones: fractions of ``iterations`` at which the lr is multiplied by ``gamma``.
    clip: max global L2 norm of the gradient (0: no clipping).
    flip_prob: horizontal flip probability. seed: model init, samplers, data order, flips.
    eval_every: COCO evaluation every this many iterations (0: only at the end), on the
    first ``eval_images`` validation images (0: all). checkpoint_every / keep_checkpoints:
    how often to write a checkpoint and how many to keep. log_every: plain log line period
    (when no progress bar). out_dir: the run folder.
    Every number is checked: a NaN, an inf or a value out of range is a ValueError naming the field.
    """

    iterations: int = 1000
    batch_size: int = 2
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    warmup_factor: float = 0.001
    milestones: tuple = (0.75, 0.9)
    gamma: float = 0.1
    clip: float = 0.0
    flip_prob: float = 0.5
    seed: int = 0
    eval_every: int = 0
    eval_images: int = 50
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 20
    out_dir: str = "runs/teaching"

    def __post_init__(self):
        for name in ("iterations", "batch_size", "warmup_iters", "eval_every", "eval_images", "checkpoint_every",
                     "keep_checkpoints", "log_every", "seed"):
            v = getattr(self, name)
            if not (_is_number(v) and v == int(v)):
                raise ValueError(f"{name} must be an integer, got {v!r}")
        for name in ("iterations", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_iters", "eval_every", "eval_images", "checkpoint_every", "keep_checkpoints",
                     "log_every", "seed"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not (_is_number(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        for name in ("clip", "momentum", "weight_decay"):
            v = getattr(self, name)
            if not (_is_number(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")
        for name in ("warmup_factor", "gamma", "flip_prob"):
            v = getattr(self, name)
            if not (_is_number(v) and 0 <= v <= (1 if name == "flip_prob" else math.inf)):
                raise ValueError(f"{name} must be a finite number >= 0{' and <= 1' * (name == 'flip_prob')}, "
                                 f"got {v}")
        ms = tuple(self.milestones)
        if any(not (_is_number(m) and 0 < m <= 1) for m in ms) or list(ms) != sorted(ms):
            raise ValueError(f"milestones must be increasing fractions in (0, 1], got {ms}")
        object.__setattr__(self, "milestones", ms)

    def milestone_iters(self) -> list:
        """The milestones in iterations."""
        return [int(round(m * self.iterations)) for m in self.milestones]


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def run_digest(model_cfg, cfg: TrainConfig) -> str:
    """8 hex digits identifying a run's recipe (model config + the train config fields that
    resume must match), e.g. to name a run folder that a changed config will not reuse."""
    train = {k: v for k, v in jsonable(cfg).items() if k not in RESUME_FREE}
    text = json.dumps([jsonable(model_cfg), train, cfg.iterations], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def train_config_from_dict(d: dict) -> TrainConfig:
    """A TrainConfig from its JSON form; ValueError naming an unknown or mistyped field."""
    if not isinstance(d, dict):
        raise ValueError(f"a train config must be a JSON object, got {type(d).__name__}")
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"train config: unknown field(s) {unknown}")
    try:
        return TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    except TypeError as e:
        raise ValueError(f"train config: {e}") from None


@dataclass
class TrainResult:
    """What ``train`` returns: the model, where it stopped, the run folder and the evaluations."""

    model: MaskRCNN
    iteration: int                 # completed iterations
    out_dir: Path
    completed: bool                # False if stopped by ``stop_at``
    evals: list = field(default_factory=list)


def _fmt(values: dict) -> str:
    short = {"loss_rpn_cls": "rpn_cls", "loss_rpn_loc": "rpn_loc", "loss_cls": "cls", "loss_box_reg": "box",
             "loss_mask": "mask", "loss_keypoint": "kp"}
    return " ".join(f"{short.get(k, k)} {v:.3f}" for k, v in values.items())


def train(model_cfg, cfg: TrainConfig, train_set, val_set=None, *, resume: bool = False, stop_at=None,
          progress=None, log=print, threads: int | None = 1, workers: int = 1,
          overwrite: bool = False, other_files_ok: bool = True) -> TrainResult:
    """Train Mask R-CNN (``model_cfg``) with the recipe ``cfg`` on ``train_set`` (a CocoDataset).

    val_set: scored with COCO AP every ``cfg.eval_every`` iterations and at the end (None: never).
    resume: continue from the newest readable checkpoint in ``cfg.out_dir`` (start afresh if
    there is none). Without resume, a folder that already holds a run is an error; so is a
    finished run whose checkpoints are gone, and resuming a checkpoint past ``cfg.iterations``
    (``RunFolder.claim``: nothing is overwritten). overwrite: delete the run files already
    in the folder and start afresh instead. other_files_ok: False refuses a folder holding
    files of no run (the command line's rule; a study runner keeps its job.json there).
    stop_at: stop after this many completed iterations without a final checkpoint, as a kill
    would (for tests and the notebook's resume demonstration).
    progress: tqdm bar (True), plain log lines every ``cfg.log_every`` iterations (False);
    default: a bar when stderr is a terminal. log: where plain lines go (default print).
    threads: numba and BLAS threads from now on (``mrcnn_np.threads``); 1 (the default) is the
    fastest for the small teaching model on a shared 2-core machine; None leaves them alone.
    workers: processes per step (``mrcnn_np.engine.parallel``): the batch is split into this
    many shards whose gradients are computed in parallel and averaged. The losses depend on
    it (each shard samples its own anchors and RoIs), so a run resumes only with the same
    number; 1 (the default) is the plain single-process loop.
    Raises TrainingDiverged when a loss or the gradient is not finite; the checkpoints
    already written are kept.
    """
    keep_freed_memory()          # reuse freed arrays: no page faults per step
    if threads is not None:
        set_num_threads(threads)
    sizes = shard_sizes(cfg.batch_size, int(workers))
    run = RunFolder(cfg.out_dir)
    out = run.path
    run.claim(resume, overwrite, other_files_ok)
    model = MaskRCNN(model_cfg, seed=cfg.seed)
    params = list(model.parameters())
    opt = SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = WarmupMultiStepLR(cfg.lr, cfg.warmup_iters, cfg.warmup_factor, cfg.milestone_iters(), cfg.gamma)
    loader = BatchLoader(train_set, cfg.batch_size, np.random.default_rng([cfg.seed, 2]), cfg.flip_prob)

    start, evals = 0, []
    if resume:
        start, ckpt = restore(run.checkpoints(), model_cfg, cfg, model, opt, loader, len(sizes), log)
        if ckpt is None:
            log(f"no checkpoint in {out}: starting from scratch")
        else:
            if start > cfg.iterations:
                raise ValueError(f"cannot resume {out} with iterations={cfg.iterations}: its checkpoint "
                                 f"{ckpt.name} is already at iteration {start} (ask for >= {start} iterations)")
            evals = run.read_evals(start)
            log(f"resuming {out} from {ckpt.name} (iteration {start})")
    if start == 0 and model_cfg.backbone_init != "scratch":  # a fresh run from a pretrained body
        body = backbone_weights_path(model_cfg)
        load_pretrained_backbone(model, body)
        log(f"backbone body from {body}.npz" + (f" (freeze_at {model_cfg.freeze_at})" if model_cfg.freeze_at else ""))
    out.mkdir(parents=True, exist_ok=True)
    run.keep_rows_before(start, log_columns(model_cfg))
    names = loss_names(model_cfg)
    meta_static = {"train_config": jsonable(cfg),
                   "class_names": list(getattr(train_set, "class_names", [])) or None,
                   "label_to_cat_id": {str(k): int(v) for k, v in getattr(train_set, "label_to_cat_id", {}).items()}
                   or None}

    def checkpoint(iteration):
        return save_checkpoint(out, iteration, model, opt, snapshot(meta_static, model, loader, len(sizes)),
                               keep=max(cfg.keep_checkpoints, 1))

    def evaluate(iteration):
        t0 = time.perf_counter()
        res = evaluate_model(model, val_set, cfg.eval_images)
        entry = {"iteration": iteration, "seconds": round(time.perf_counter() - t0, 2),
                 **{t: r["stats"] for t, r in res.items()}, "per_class": {t: r["per_class"] for t, r in res.items()}}
        evals.append(entry)
        run.write_evals(evals)
        log(f"eval @ {iteration}: " + ", ".join(f"{t} AP {r['stats']['AP']:.3f} AP50 {r['stats']['AP50']:.3f}"
                                                 for t, r in res.items()) + f" ({entry['seconds']:.1f} s)")

    show_bar = sys.stderr.isatty() if progress is None else bool(progress)
    bar = None
    if show_bar and start < cfg.iterations:
        from tqdm import tqdm  # noqa: PLC0415
        bar = tqdm(total=cfg.iterations, initial=start, desc="train", file=sys.stderr, dynamic_ncols=True)
        if log is print:  # messages (evaluations) above the bar instead of through it
            log = tqdm.write
    if start < cfg.iterations:
        log(f"training {out}: iterations {start}..{cfg.iterations - 1}, batch {cfg.batch_size}, lr {cfg.lr} "
            f"(warmup {cfg.warmup_iters}, x{cfg.gamma} at {cfg.milestone_iters()})")
    model.train()
    it, completed = start, True
    pool = None
    try:
        if len(sizes) > 1 and start < cfg.iterations:
            pool = ShardWorkers(model_cfg, params, cfg.seed, len(sizes), names, threads)
        with open(run.losses, "a", newline="") as fcsv:
            writer = csv.writer(fcsv)
            for it in range(start, cfg.iterations):
                t0 = time.perf_counter()
                step = train_step(it, model, params, opt, sched, loader, names, cfg.clip, out, pool, sizes)
                dt = time.perf_counter() - t0
                writer.writerow([it, *(repr(step.values.get(k, 0.0)) for k in names), repr(step.total),
                                 repr(step.lr), repr(step.grad_norm), *step.counts, f"{dt:.4f}"])
                fcsv.flush()
                done = it + 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"loss {step.total:.3f} ({_fmt(step.values)}) lr {step.lr:.2g}",
                                        refresh=False)
                elif cfg.log_every and (done % cfg.log_every == 0 or done == cfg.iterations or it == start):
                    log(f"iter {done:>6}/{cfg.iterations}  loss {step.total:.4f}  {_fmt(step.values)}  "
                        f"lr {step.lr:.4g}  |g| {step.grad_norm:.2f}  {dt:.2f} s/it")
                if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.iterations:
                    checkpoint(done)
                if val_set is not None and cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.iterations:
                    evaluate(done)
                    model.train()
                if stop_at is not None and done >= stop_at and done < cfg.iterations:
                    completed = False
                    it = done
                    break
            else:
                it = cfg.iterations
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.close()
    if completed:
        if start < cfg.iterations or latest_checkpoint(out) is None:
            checkpoint(cfg.iterations)
        if val_set is not None and not any(e["iteration"] == cfg.iterations for e in evals):
            evaluate(cfg.iterations)
        save_weights(model, run.model)
        if meta_static["class_names"]:
            write_classes(run.model, meta_static["class_names"],
                          {int(k): v for k, v in meta_static["label_to_cat_id"].items()})
    model.eval()
    return TrainResult(model=model, iteration=it, out_dir=out, completed=completed, evals=evals)


__all__ = ["COLUMNS", "TrainConfig", "TrainResult", "TrainingDiverged", "log_columns",
           "read_losses", "run_digest", "train", "train_config_from_dict"]
