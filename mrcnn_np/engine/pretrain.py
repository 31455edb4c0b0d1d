"""Pre-training a backbone body on the synthetic classification set (the paper's ImageNet step).

``pretrain(PretrainConfig(...))`` trains ``detection.pretrained.BodyClassifier`` (the
detection model's ResNet body + global average pooling + one fc layer) with cross-entropy
and the detection recipe's optimiser: SGD with momentum and weight decay, a linear warmup
and step decay (``autodiff/optim.py``). Batch ``it`` is images ``it*B .. it*B+B-1`` of the
train split of ``datasets/pretrain_shapes.py``: the data stream is a pure function of the
iteration, so a resumed run sees exactly the images an uninterrupted one would (no loader
state to save). Top-1 accuracy is measured on the first ``eval_images`` of the held-out
val split every ``eval_every`` iterations and at the end.

The run folder (``out_dir``):

    log.csv                 iteration, loss, batch top-1, lr, seconds per iteration
    eval.json               [{iteration, top1, images}, ...]
    checkpoint_*.npz/.json  ``engine/checkpoint.py`` (atomic; the newest ``keep_checkpoints``)
    body.npz / body.json    the body's (and the fc layer's) weights and what made them
                            (``detection/pretrained.py``), with the top-1 of a small check
                            (the first ``CHECK_IMAGES`` val images) that a test repeats

``workers``: the forward and backward pass run in one process; ``workers - 1`` helper
processes draw the next batches meanwhile (``BatchStream``; drawing 64 images takes about
a third of a step). The data-parallel helpers of ``engine/parallel.py`` are built around
the detection model's losses and targets, and a second thread does not pay off here
(measured: 0.170 vs 0.175 s per step of the teaching body), so prefetching is what uses a
second core. The images do not depend on ``workers``: neither do the numbers.

A folder is used only when it is empty, missing, or a pre-training run's (resumed with
``resume``); ``overwrite`` deletes that run's files (and no other) first.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mrcnn_np.autodiff import Tensor, no_grad
from mrcnn_np.autodiff import functional as F
from mrcnn_np.autodiff.optim import SGD, WarmupMultiStepLR
from mrcnn_np.datasets.pretrain_shapes import CLASSES, PretrainShapesConfig, make_batch
from mrcnn_np.detection.backbone import BackboneConfig
from mrcnn_np.detection.pretrained import BodyClassifier, save_body
from mrcnn_np.detection.transform import IMAGENET_MEAN, IMAGENET_STD
from mrcnn_np.engine.checkpoint import CheckpointError, list_checkpoints, read_checkpoint, save_checkpoint
from mrcnn_np.engine.checkpoint import write_json_atomic
from mrcnn_np.memory import keep_freed_memory
from mrcnn_np.threads import set_num_threads

CHECK_IMAGES = 128   # held-out images whose top-1 body.json records for the load test
RUN_FILES = ("log.csv", "eval.json", "body.npz", "body.json")
# PretrainConfig fields a resumed run may change (bookkeeping; ``iterations`` extends a run).
RESUME_FREE = ("iterations", "eval_every", "eval_images", "checkpoint_every", "keep_checkpoints", "out_dir")


@dataclass(frozen=True)
class PretrainConfig:
    """The recipe of a pre-training run (plain values; saved with every checkpoint).

    body: the ``BackboneConfig`` to pretrain. iterations, batch_size, lr, momentum,
    weight_decay, warmup_iters, warmup_factor, milestones (fractions of ``iterations``),
    gamma: SGD as in ``engine/train.py``. seed: the weights' init and the data stream.
    data: the image generator's config. eval_every / eval_images: top-1 on the val split
    (0: at the end only). checkpoint_every / keep_checkpoints: checkpoints.
    """

    body: BackboneConfig
    iterations: int = 10000
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    warmup_factor: float = 0.01
    milestones: tuple = (0.7, 0.9)
    gamma: float = 0.1
    seed: int = 0
    data: PretrainShapesConfig = field(default_factory=PretrainShapesConfig)
    eval_every: int = 500
    eval_images: int = 1024
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    out_dir: str = "runs/pretrain/teaching"

    def __post_init__(self):
        for name in ("iterations", "batch_size", "warmup_iters", "eval_every", "eval_images", "checkpoint_every",
                     "keep_checkpoints", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if self.iterations < 1 or self.batch_size < 1 or self.eval_images < 1:
            raise ValueError("iterations, batch_size and eval_images must be >= 1")
        for name in ("lr", "momentum", "weight_decay", "warmup_factor", "gamma"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0) or (name == "lr" and v == 0):
                raise ValueError(f"{name} must be a finite number >= 0 (lr > 0), got {v!r}")
        ms = tuple(self.milestones)
        if any(not 0 < m <= 1 for m in ms) or list(ms) != sorted(ms):
            raise ValueError(f"milestones must be increasing fractions in (0, 1], got {ms}")
        object.__setattr__(self, "milestones", ms)

    def milestone_iters(self) -> list:
        return [int(round(m * self.iterations)) for m in self.milestones]

    def as_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


@dataclass
class PretrainResult:
    model: BodyClassifier
    iteration: int
    top1: float | None
    out_dir: Path
    weights: Path | None             # prefix of body.npz/.json (None when stopped early)
    evals: list


class BatchStream:
    """Batch ``it`` of the train split (images ``it*B .. it*B+B-1``), drawn here (workers <= 1)
    or ahead of time by ``workers - 1`` helper processes. Use as a context manager."""

    def __init__(self, cfg: PretrainConfig, workers: int = 1):
        self.cfg, self.ahead, self.pool, self.pending = cfg, max(int(workers) - 1, 0), None, {}
        if self.ahead:
            import multiprocessing as mp  # noqa: PLC0415
            from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415
            self.pool = ProcessPoolExecutor(self.ahead, mp_context=mp.get_context("spawn"))

    def _indices(self, it: int):
        return range(it * self.cfg.batch_size, (it + 1) * self.cfg.batch_size)

    def get(self, it: int) -> tuple:
        """(images (B, S, S, 3) uint8, labels (B,) int64) of iteration ``it``."""
        if self.pool is None:
            return make_batch(self.cfg.seed, "train", self._indices(it), self.cfg.data)
        for k in range(it, min(it + self.ahead + 1, self.cfg.iterations)):
            if k not in self.pending:
                self.pending[k] = self.pool.submit(make_batch, self.cfg.seed, "train", self._indices(k), self.cfg.data)
        for k in [k for k in self.pending if k < it]:
            self.pending.pop(k).cancel()
        return self.pending.pop(it).result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def model_input(images: np.ndarray) -> np.ndarray:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 normalised as the detection model's input
    (``detection/transform.py``: [0, 1], then the ImageNet mean and std)."""
    x = images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    mean = np.asarray(IMAGENET_MEAN, np.float32)[None, :, None, None]
    std = np.asarray(IMAGENET_STD, np.float32)[None, :, None, None]
    return np.ascontiguousarray((x - mean) / std)


def top1_accuracy(model, seed: int, data: PretrainShapesConfig, images: int, batch: int = 128) -> float:
    """Fraction of the first ``images`` val images (of ``seed``, drawn by ``data``) classified right."""
    n = int(images)
    correct = 0
    with no_grad():
        for a in range(0, n, batch):
            x, y = make_batch(seed, "val", range(a, min(a + batch, n)), data)
            correct += int((model(Tensor(model_input(x))).data.argmax(1) == y).sum())
    return correct / n


def git_commit() -> str | None:
    """The repository's HEAD commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def claim(out: Path, resume: bool, overwrite: bool) -> None:
    """Raise ValueError unless a pre-training run may write into ``out`` (module docstring)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: the run folder is a file, not a folder")
    if not out.is_dir():
        return
    ours = [n for n in RUN_FILES if (out / n).exists()] + [p.name for p in sorted(out.glob("checkpoint_*"))]
    others = sorted(p.name for p in out.iterdir() if p.name not in ours and not p.name.endswith(".tmp"))
    hint = "choose another --out, or --overwrite it"
    if others:
        raise ValueError(f"{out} holds files that are not a pre-training run's ({others[0]!r}); {hint}")
    if overwrite:
        for n in ours:
            (out / n).unlink()
    elif list_checkpoints(out) and not resume:
        raise ValueError(f"{out} already holds a pre-training run; resume it (--resume), or {hint}")
    elif (out / "body.json").exists() and not list_checkpoints(out):
        raise ValueError(f"{out} holds finished body weights and no checkpoint to resume; {hint}")
    elif ours and not resume:
        raise ValueError(f"{out} already holds a pre-training run's {ours[0]} (no checkpoint yet); restart it "
                         f"(--resume), or {hint}")


def restore(out: Path, cfg: PretrainConfig, model, opt, log) -> int:
    """Load the newest readable checkpoint of ``out`` into model and opt; its iteration (0: none)."""
    ckpts = list_checkpoints(out)
    for _, prefix in reversed(ckpts):
        try:
            arrays, optim, meta = read_checkpoint(prefix)
            saved = meta.get("pretrain_config")
            if not isinstance(saved, dict):
                raise CheckpointError(f"{prefix}.json: no 'pretrain_config' (not a pre-training checkpoint)")
            now = cfg.as_dict()
            diff = sorted(k for k in set(saved) | set(now) if k not in RESUME_FREE and saved.get(k) != now.get(k))
            if diff:
                raise ValueError(f"cannot resume {prefix.name}: its recipe differs in {diff} "
                                 f"(e.g. {diff[0]}: saved {saved.get(diff[0])!r}, now {now.get(diff[0])!r})")
            model.load_state_dict(arrays)
            opt.load_state_dict(optim)
            return int(meta["iteration"])
        except CheckpointError as e:
            log(f"warning: skipping an unreadable checkpoint: {e}")
    if ckpts:
        raise ValueError(f"{out}: none of its {len(ckpts)} checkpoint(s) is readable (pass --overwrite)")
    return 0


def pretrain(cfg: PretrainConfig, *, resume: bool = False, overwrite: bool = False, stop_at=None,
             progress=None, log=print, threads: int | None = 1, workers: int = 1,
             command: str | None = None) -> PretrainResult:
    """Pretrain ``cfg.body``; returns the classifier, the final top-1 and the weights' prefix.

    resume: continue from the newest checkpoint in ``cfg.out_dir``. stop_at: stop after this
    many iterations without final weights, as a kill would (tests). progress: tqdm bar (True)
    or log lines (False); default: a bar when stderr is a terminal. threads: numba and BLAS
    threads (None: leave them). workers: processes, the helpers drawing batches ahead (module
    docstring). command: recorded in body.json (default: sys.argv).
    """
    keep_freed_memory()          # reuse freed arrays: no page faults per step
    if threads is not None:
        set_num_threads(threads)
    out = Path(cfg.out_dir)
    claim(out, resume, overwrite)
    model = BodyClassifier(cfg.body, len(CLASSES), seed=cfg.seed)
    params = list(model.parameters())
    opt = SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = WarmupMultiStepLR(cfg.lr, cfg.warmup_iters, cfg.warmup_factor, cfg.milestone_iters(), cfg.gamma)
    start = restore(out, cfg, model, opt, log) if resume else 0
    if start > cfg.iterations:
        raise ValueError(f"cannot resume {out} with iterations={cfg.iterations}: it is at iteration {start}")
    out.mkdir(parents=True, exist_ok=True)
    evals = [e for e in _read_json(out / "eval.json", []) if e["iteration"] <= start]
    rows = []
    if (out / "log.csv").is_file():
        with open(out / "log.csv", newline="") as f:
            rows = [r for r in csv.reader(f)][1:]
    with open(out / "log.csv", "w", newline="") as f:  # drop the rows logged after the checkpoint
        csv.writer(f).writerows([["iteration", "loss", "batch_top1", "lr", "sec_per_iter"],
                                 *[r for r in rows if int(r[0]) < start]])
    meta = {"pretrain_config": cfg.as_dict(), "classes": list(CLASSES)}

    def evaluate(it):
        top1 = top1_accuracy(model, cfg.seed, cfg.data, cfg.eval_images)
        evals.append({"iteration": it, "top1": top1, "images": cfg.eval_images})
        write_json_atomic(out / "eval.json", evals)
        log(f"top-1 @ {it}: {evals[-1]['top1']:.3f} on {cfg.eval_images} val images")

    bar = None
    if (sys.stderr.isatty() if progress is None else progress) and start < cfg.iterations:
        from tqdm import tqdm  # noqa: PLC0415
        bar = tqdm(total=cfg.iterations, initial=start, desc="pretrain", file=sys.stderr, dynamic_ncols=True)
        log = tqdm.write if log is print else log
    log(f"pretraining {out}: iterations {start}..{cfg.iterations - 1}, batch {cfg.batch_size}, lr {cfg.lr}, "
        f"{len(CLASSES)} classes at {cfg.data.image_size} px")
    t_start, it, done = time.perf_counter(), start, start
    try:
        with open(out / "log.csv", "a", newline="") as flog, BatchStream(cfg, workers) as stream:
            writer = csv.writer(flog)
            for it in range(start, cfg.iterations):
                t0 = time.perf_counter()
                lr = sched.apply(opt, it)
                x, y = stream.get(it)
                logits = model(Tensor(model_input(x)))
                loss = F.cross_entropy(logits, y)
                if not math.isfinite(float(loss.data)):
                    raise FloatingPointError(f"the loss is {float(loss.data)} at iteration {it} (lr {lr:.3g}); "
                                             f"lower --lr")
                opt.zero_grad()
                loss.backward()
                opt.step()
                acc = float((logits.data.argmax(1) == y).mean())
                dt = time.perf_counter() - t0
                writer.writerow([it, repr(float(loss.data)), acc, repr(lr), f"{dt:.4f}"])
                flog.flush()
                done = it + 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"loss {float(loss.data):.3f} acc {acc:.2f} lr {lr:.2g}", refresh=False)
                elif done % 50 == 0 or done == cfg.iterations:
                    log(f"iter {done:>6}/{cfg.iterations}  loss {float(loss.data):.4f}  batch top-1 {acc:.2f}  "
                        f"lr {lr:.3g}  {dt:.2f} s/it")
                if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.iterations:
                    save_checkpoint(out, done, model, opt, meta, keep=max(cfg.keep_checkpoints, 1))
                if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.iterations:
                    evaluate(done)
                if stop_at is not None and done >= stop_at and done < cfg.iterations:
                    return PretrainResult(model, done, None, out, None, evals)
    finally:
        if bar is not None:
            bar.close()
    if start < cfg.iterations or not list_checkpoints(out):
        save_checkpoint(out, cfg.iterations, model, opt, meta, keep=max(cfg.keep_checkpoints, 1))
    if not evals or evals[-1]["iteration"] != cfg.iterations:
        evaluate(cfg.iterations)
    info = {"classes": list(CLASSES), "top1": evals[-1]["top1"], "eval_images": cfg.eval_images,
            "iterations": cfg.iterations, "seed": cfg.seed, "image_size": cfg.data.image_size,
            "input_mean": list(IMAGENET_MEAN), "input_std": list(IMAGENET_STD),
            "pretrain_config": cfg.as_dict(), "command": command or " ".join(sys.argv),
            "git_commit": git_commit(), "train_seconds": round(_logged_seconds(out / "log.csv"), 3),
            "seconds_this_session": round(time.perf_counter() - t_start, 3)}
    # A small held-out check that a test can repeat from the file alone (tests/engine/test_pretrain.py).
    info["check"] = {"split": "val", "images": CHECK_IMAGES,
                     "top1": top1_accuracy(model, cfg.seed, cfg.data, CHECK_IMAGES)}
    weights = save_body(model, out / "body", info)
    return PretrainResult(model, cfg.iterations, evals[-1]["top1"], out, weights, evals)


def check_body_file(prefix) -> tuple:
    """(recorded, measured now) top-1 of the small held-out check of a body file: the file's
    classifier on the first ``check.images`` val images of its seed and image generator."""
    from mrcnn_np.detection.pretrained import load_classifier, read_body  # noqa: PLC0415

    _, info = read_body(prefix)
    check, recipe = info.get("check"), info.get("pretrain_config")
    if not isinstance(check, dict) or not isinstance(recipe, dict):
        raise ValueError(f"{prefix}: the body file records no 'check' or 'pretrain_config'")
    data = PretrainShapesConfig(**recipe["data"])
    return check["top1"], top1_accuracy(load_classifier(prefix), recipe["seed"], data, check["images"])


def _logged_seconds(path: Path) -> float:
    """The summed seconds per iteration of log.csv: the training's wall time over every session."""
    with open(path, newline="") as f:
        return sum(float(r["sec_per_iter"]) for r in csv.DictReader(f))


def _read_json(path: Path, default):
    return json.loads(path.read_text()) if path.is_file() else default


def body_from_dict(d: dict) -> BackboneConfig:
    """A BackboneConfig from its JSON form (lists back to tuples)."""
    return BackboneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


__all__ = ["BatchStream", "CHECK_IMAGES", "PretrainConfig", "PretrainResult", "RUN_FILES", "body_from_dict",
           "check_body_file", "claim", "model_input", "pretrain", "top1_accuracy"]
