"""The training loop: SGD on the multi-task loss, logging, evaluation, checkpoints, resume.

Mask R-CNN §3.1: "We train on 8 GPUs (so effective minibatch size is 16) for 160k
iterations, with a learning rate of 0.02 which is decreased by 10 at the 120k iteration.
We use a weight decay of 0.0001 and momentum of 0.9." Detectron adds a linear warmup.
``TrainConfig`` keeps that recipe but scales it down: the schedule length, the warmup and
the step milestones (given as *fractions* of the schedule, so a 1,000-iteration run drops
the lr at 75 % like the paper's 120k of 160k) are fields, as is optional gradient clipping
(useful when training from scratch with a small batch).

One iteration: lr(it) -> next batch (shuffled, flipped) -> forward (five losses) -> check
every loss is finite -> backward -> gradient norm (clipped if asked) -> SGD step -> one CSV
row. Every ``checkpoint_every`` iterations a checkpoint (``checkpoint.py``) is written;
every ``eval_every`` iterations the model is scored with COCO AP on (a subset of) the
validation set. A run folder holds::

    losses.csv       iteration, the five losses, total, lr, grad_norm, counts, sec_per_iter
    eval.json        [{iteration, bbox: {AP, AP50, ...}, segm: {...}, per_class: {...}}, ...]
    checkpoint_*.npz/.json   the newest ``keep_checkpoints``
    model.npz/.json  final weights (``load_model`` / ``load_weights``), model.classes.json

``train(..., resume=True)`` rebuilds the model, optimizer, data stream and generators from
the newest checkpoint and continues: the losses are the same as an uninterrupted run's
(tests/engine/test_train.py checks this). Rows a killed run logged after its last
checkpoint are dropped from losses.csv and recomputed.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mrcnn_np.autodiff.optim import SGD, WarmupMultiStepLR, clip_grad_norm_
from mrcnn_np.detection.convert import save_weights
from mrcnn_np.detection.mask_rcnn import LOSS_NAMES, MaskRCNN, loss_names
from mrcnn_np.engine.checkpoint import (latest_checkpoint, read_checkpoint, save_checkpoint, write_classes,
                                        write_json_atomic)
from mrcnn_np.engine.data import BatchLoader, sample_to_input
from mrcnn_np.engine.parallel import ShardWorkers, balanced_order, combine, losses_backward, shard_sizes
from mrcnn_np.threads import set_num_threads

COLUMNS = ("iteration", *LOSS_NAMES, "total", "lr", "grad_norm", "num_pos_anchors", "num_pos_rois", "sec_per_iter")


def log_columns(model_cfg) -> tuple:
    """losses.csv columns of a run of ``model_cfg``: ``COLUMNS``, with ``loss_keypoint`` for a keypoint model."""
    return ("iteration", *loss_names(model_cfg), *COLUMNS[1 + len(LOSS_NAMES):])


class TrainingDiverged(FloatingPointError):
    """A loss or the gradient norm became NaN or inf; the message names which and when."""


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
        for name in ("iterations", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_iters", "eval_every", "eval_images", "checkpoint_every", "keep_checkpoints",
                     "log_every", "seed"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        if self.clip < 0 or self.momentum < 0 or self.weight_decay < 0:
            raise ValueError("clip, momentum and weight_decay must be >= 0")
        ms = tuple(self.milestones)
        if any(not 0 < m <= 1 for m in ms) or list(ms) != sorted(ms):
            raise ValueError(f"milestones must be increasing fractions in (0, 1], got {ms}")
        object.__setattr__(self, "milestones", ms)

    def milestone_iters(self) -> list:
        """The milestones in iterations."""
        return [int(round(m * self.iterations)) for m in self.milestones]


# Fields that may differ when a run is resumed (bookkeeping; ``iterations`` extends a run).
_RESUME_FREE = {"iterations", "eval_every", "eval_images", "checkpoint_every", "keep_checkpoints", "log_every",
                "out_dir"}


def run_digest(model_cfg, cfg: TrainConfig) -> str:
    """8 hex digits identifying a run's recipe (model config + the train config fields that
    resume must match), e.g. to name a run folder that a changed config will not reuse."""
    import hashlib  # noqa: PLC0415

    train = {k: v for k, v in _jsonable(cfg).items() if k not in _RESUME_FREE}
    text = json.dumps([_jsonable(model_cfg), train, cfg.iterations], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def train_config_from_dict(d: dict) -> TrainConfig:
    return TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class TrainResult:
    """What ``train`` returns: the model, where it stopped, the run folder and the evaluations."""

    model: MaskRCNN
    iteration: int                 # completed iterations
    out_dir: Path
    completed: bool                # False if stopped by ``stop_at``
    evals: list = field(default_factory=list)


def predict_dataset(model, dataset, indices=None, batch_size: int = 4, mask_readout: str = "class") -> list:
    """Detections for images ``indices`` (default all) of a data set, one dict per image with
    ``image_id``, ``boxes``, ``scores``, ``labels`` and ``masks`` (original pixels)."""
    indices = range(len(dataset)) if indices is None else list(indices)
    preds = []
    for s in range(0, len(indices), batch_size):
        chunk = indices[s:s + batch_size]
        samples = [dataset[i] for i in chunk]
        for sample, det in zip(samples, model.predict([sample_to_input(x)[0] for x in samples], mask_readout=mask_readout)):
            preds.append(dict(det, image_id=sample["image_id"]))
    return preds


def evaluate_model(model, dataset, num_images: int = 0, batch_size: int = 4, mask_readout: str = "class") -> dict:
    """COCO bbox/segm AP of ``model`` on the first ``num_images`` images (0: all), no printing."""
    from mrcnn_np.engine.evaluate import evaluate_coco  # noqa: PLC0415

    n = len(dataset) if num_images <= 0 else min(num_images, len(dataset))
    preds = predict_dataset(model, dataset, range(n), batch_size, mask_readout)
    return evaluate_coco(preds, dataset, print_table=False, image_ids=[dataset.image_ids[i] for i in range(n)])


def read_losses(path) -> dict:
    """losses.csv (path to the file or its run folder) -> {column: (T,) float64 array}."""
    path = Path(path)
    path = path / "losses.csv" if path.is_dir() else path
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    return {c: np.array([float(r[c]) for r in rows]) for c in (reader.fieldnames or COLUMNS)}


def _keep_rows_before(path: Path, start: int, columns=COLUMNS) -> None:
    """Rewrite losses.csv with only the rows of iterations < start (atomically)."""
    rows = []
    if path.is_file():
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["iteration"]) < start]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _check_same(saved: dict, current: dict, what: str, free=()) -> None:
    diff = [k for k in set(saved) | set(current) if k not in free and saved.get(k) != current.get(k)]
    if diff:
        k = sorted(diff)[0]
        raise ValueError(f"cannot resume: the checkpoint's {what} differs in {sorted(diff)} "
                         f"(e.g. {k}: saved {saved.get(k)!r}, now {current.get(k)!r})")


def _jsonable(cfg) -> dict:
    return json.loads(json.dumps(asdict(cfg)))  # tuples -> lists, as they come back from a file


def _fmt(values: dict) -> str:
    short = {"loss_rpn_cls": "rpn_cls", "loss_rpn_loc": "rpn_loc", "loss_cls": "cls", "loss_box_reg": "box",
             "loss_mask": "mask", "loss_keypoint": "kp"}
    return " ".join(f"{short.get(k, k)} {v:.3f}" for k, v in values.items())


def train(model_cfg, cfg: TrainConfig, train_set, val_set=None, *, resume: bool = False, stop_at=None,
          progress=None, log=print, threads: int | None = 1, workers: int = 1) -> TrainResult:
    """Train Mask R-CNN (``model_cfg``) with the recipe ``cfg`` on ``train_set`` (a CocoDataset).

    val_set: scored with COCO AP every ``cfg.eval_every`` iterations and at the end (None: never).
    resume: continue from the newest checkpoint in ``cfg.out_dir`` (start afresh if there is
    none). Without resume, a folder that already holds a run is an error (nothing is overwritten).
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
    if threads is not None:
        set_num_threads(threads)
    sizes = shard_sizes(cfg.batch_size, int(workers))
    out = Path(cfg.out_dir)
    model = MaskRCNN(model_cfg, seed=cfg.seed)
    params = list(model.parameters())
    opt = SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = WarmupMultiStepLR(cfg.lr, cfg.warmup_iters, cfg.warmup_factor, cfg.milestone_iters(), cfg.gamma)
    loader = BatchLoader(train_set, cfg.batch_size, np.random.default_rng([cfg.seed, 2]), cfg.flip_prob)
    csv_path, eval_path = out / "losses.csv", out / "eval.json"

    ckpt = latest_checkpoint(out)
    if ckpt is not None and not resume:
        raise ValueError(f"{out} already holds a run (newest checkpoint {ckpt.name}); resume it or "
                         f"choose another output folder")
    start, evals = 0, []
    if ckpt is not None:
        model_arrays, optim_arrays, meta = read_checkpoint(ckpt)
        _check_same(meta["model_config"], _jsonable(model_cfg), "model config")
        _check_same(meta["train_config"], _jsonable(cfg), "train config", _RESUME_FREE)
        if int(meta.get("workers", 1)) != len(sizes):
            raise ValueError(f"{ckpt.name} was trained with workers={meta.get('workers', 1)}; resume it with "
                             f"the same number (asked for {len(sizes)})")
        model.load_state_dict(model_arrays)
        opt.load_state_dict(optim_arrays)
        model.sampling_rng.bit_generator.state = meta["rng"]["sampling"]
        loader.load_state(meta["loader"])
        start = int(meta["iteration"])
        if eval_path.is_file():
            evals = [e for e in json.loads(eval_path.read_text()) if e["iteration"] <= start]
        log(f"resuming {out} from {ckpt.name} (iteration {start})")
    elif resume:
        log(f"no checkpoint in {out}: starting from scratch")
    out.mkdir(parents=True, exist_ok=True)
    _keep_rows_before(csv_path, start, log_columns(model_cfg))
    names = loss_names(model_cfg)
    meta_static = {"train_config": _jsonable(cfg),
                   "class_names": list(getattr(train_set, "class_names", [])) or None,
                   "label_to_cat_id": {str(k): int(v) for k, v in getattr(train_set, "label_to_cat_id", {}).items()}
                   or None}

    def checkpoint(iteration):
        meta = dict(meta_static, rng={"sampling": model.sampling_rng.bit_generator.state}, loader=loader.state(),
                    workers=len(sizes))
        return save_checkpoint(out, iteration, model, opt, meta, keep=max(cfg.keep_checkpoints, 1))

    def evaluate(iteration):
        t0 = time.perf_counter()
        res = evaluate_model(model, val_set, cfg.eval_images)
        entry = {"iteration": iteration, "seconds": round(time.perf_counter() - t0, 2),
                 **{t: r["stats"] for t, r in res.items()}, "per_class": {t: r["per_class"] for t, r in res.items()}}
        evals.append(entry)
        write_json_atomic(eval_path, evals)
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
    bounds = np.cumsum([0, *sizes])
    try:
        if len(sizes) > 1 and start < cfg.iterations:
            pool = ShardWorkers(model_cfg, params, cfg.seed, len(sizes), names, threads)
        with open(csv_path, "a", newline="") as fcsv:
            writer = csv.writer(fcsv)
            for it in range(start, cfg.iterations):
                t0 = time.perf_counter()
                lr = sched.apply(opt, it)
                images, targets, _ = loader.next_batch()
                if pool is not None:  # shards 1.. to the helpers, shard 0 here
                    order = balanced_order([len(t["boxes"]) for t in targets], sizes)
                    images, targets = [images[i] for i in order], [targets[i] for i in order]
                    pool.submit(it, [(images[a:b], targets[a:b]) for a, b in zip(bounds[1:-1], bounds[2:])])
                    images, targets = images[:sizes[0]], targets[:sizes[0]]
                try:
                    out_losses = model(images, targets)
                except ValueError as e:  # activations overflowed inside the forward pass
                    if "NaN or inf" not in str(e):
                        raise
                    raise _diverged(f"the forward pass failed ({e})", it, lr, out) from None
                opt.zero_grad()
                values, counts, total = losses_backward(out_losses, names)
                if pool is not None:
                    try:
                        helpers = pool.collect()
                    except RuntimeError as e:
                        if "NaN or inf" not in str(e):
                            raise
                        raise _diverged(f"the forward pass failed ({e})", it, lr, out) from None
                    values, counts, total = combine(params, values, counts, total, helpers, sizes)
                _stop_if_not_finite(values, it, lr, out)
                gnorm = clip_grad_norm_(params, cfg.clip if cfg.clip > 0 else math.inf)
                _stop_if_not_finite({"the gradient norm": gnorm}, it, lr, out)
                opt.step()
                if not all(np.isfinite(p.data).all() for p in params):  # lr * grad overflowed
                    raise _diverged("a parameter became NaN or inf in the SGD step", it, lr, out)
                dt = time.perf_counter() - t0
                del out_losses  # free the graph before the next forward
                writer.writerow([it, *(repr(values.get(k, 0.0)) for k in names), repr(total), repr(lr),
                                 repr(gnorm), *counts, f"{dt:.4f}"])
                fcsv.flush()
                done = it + 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"loss {total:.3f} ({_fmt(values)}) lr {lr:.2g}", refresh=False)
                elif cfg.log_every and (done % cfg.log_every == 0 or done == cfg.iterations or it == start):
                    log(f"iter {done:>6}/{cfg.iterations}  loss {total:.4f}  {_fmt(values)}  lr {lr:.4g}  "
                        f"|g| {gnorm:.2f}  {dt:.2f} s/it")
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
        save_weights(model, out / "model")
        if meta_static["class_names"]:
            write_classes(out / "model", meta_static["class_names"],
                          {int(k): v for k, v in meta_static["label_to_cat_id"].items()})
    model.eval()
    return TrainResult(model=model, iteration=it, out_dir=out, completed=completed, evals=evals)


def _stop_if_not_finite(values: dict, it: int, lr: float, out: Path) -> None:
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise _diverged(f"{bad[0]} is {values[bad[0]]}", it, lr, out)


def _diverged(what: str, it: int, lr: float, out: Path) -> TrainingDiverged:
    ckpt = latest_checkpoint(out)
    kept = (f"the last good checkpoint is {ckpt} (kept)" if ckpt is not None
            else "no checkpoint had been written yet")
    return TrainingDiverged(f"{what} at iteration {it} (lr {lr:.4g}); training stopped, {kept}. "
                            f"Lower the learning rate or set gradient clipping.")


__all__ = ["COLUMNS", "TrainConfig", "TrainResult", "TrainingDiverged", "evaluate_model", "log_columns",
           "predict_dataset", "read_losses", "run_digest", "train", "train_config_from_dict"]
