"""Resume state: what a checkpoint must hold for a run to continue exactly, and restoring it.

``snapshot(...)`` is the meta dict written with every checkpoint (the configs, the
generators' states, the loader's position, the worker count); ``restore(...)`` reads the
newest checkpoint back into a freshly built model / optimizer / loader. A checkpoint that
cannot be read (truncated, bad CRC, a JSON with missing or mistyped fields) is skipped
with one log line and the next older one is used: the run then repeats a few iterations
and still ends with the same numbers. A checkpoint of *another* recipe is an error, never
skipped: resuming it would mix two runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from mrcnn_np.engine.checkpoint import CheckpointError, read_checkpoint

# TrainConfig fields that may differ when a run is resumed (bookkeeping; ``iterations`` extends a run).
RESUME_FREE = {"iterations", "eval_every", "eval_images", "checkpoint_every", "keep_checkpoints", "log_every",
               "out_dir"}


def jsonable(cfg) -> dict:
    """A config dataclass as it comes back from a JSON file (tuples -> lists)."""
    return json.loads(json.dumps(asdict(cfg)))


def check_same(saved: dict, current: dict, what: str, free=()) -> None:
    """Raise ValueError naming the fields in which two config dicts differ (except ``free``)."""
    diff = [k for k in set(saved) | set(current) if k not in free and saved.get(k) != current.get(k)]
    if diff:
        k = sorted(diff)[0]
        raise ValueError(f"cannot resume: the checkpoint's {what} differs in {sorted(diff)} "
                         f"(e.g. {k}: saved {saved.get(k)!r}, now {current.get(k)!r})")


def snapshot(static: dict, model, loader, workers: int) -> dict:
    """The meta dict of a checkpoint written now: ``static`` (train config, class names, ...)
    plus the sampling generator's and the loader's states and the number of workers."""
    return dict(static, rng={"sampling": model.sampling_rng.bit_generator.state}, loader=loader.state(),
                workers=workers)


def _apply(prefix, model_cfg, cfg, model, opt, loader, workers: int) -> int:
    """Load checkpoint ``prefix`` into the objects; returns its iteration.
    CheckpointError: the files are unreadable; ValueError: another recipe."""
    model_arrays, optim_arrays, meta = read_checkpoint(prefix)
    for key, kind in (("train_config", dict), ("rng", dict), ("loader", dict)):
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"{prefix}.json: field '{key}' is missing or not a {kind.__name__}")
    check_same(meta["model_config"], jsonable(model_cfg), "model config")
    check_same(meta["train_config"], jsonable(cfg), "train config", RESUME_FREE)
    saved_workers = meta.get("workers", 1)
    if saved_workers != workers:
        raise ValueError(f"{prefix.name} was trained with workers={saved_workers}; resume it with "
                         f"the same number (asked for {workers})")
    try:
        model.load_state_dict(model_arrays)
        opt.load_state_dict(optim_arrays)
        model.sampling_rng.bit_generator.state = meta["rng"]["sampling"]
        loader.load_state(meta["loader"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{prefix}: does not fit this run ({type(e).__name__}: {e})") from None
    return int(meta["iteration"])


def restore(checkpoints: list, model_cfg, cfg, model, opt, loader, workers: int, log=print) -> tuple:
    """Restore the newest readable checkpoint of ``checkpoints`` ((iteration, prefix), oldest
    first) into model, opt and loader. Returns (iteration, prefix), or (0, None) when none
    is none. Each unreadable checkpoint is named in one log line; when none is readable,
    ValueError (the folder is left as it is, for the user to decide)."""
    for _, prefix in reversed(checkpoints):
        try:
            return _apply(prefix, model_cfg, cfg, model, opt, loader, workers), prefix
        except CheckpointError as e:
            log(f"warning: skipping an unreadable checkpoint: {e}")
    if checkpoints:
        raise ValueError(f"{checkpoints[-1][1].parent}: none of its {len(checkpoints)} checkpoint(s) is readable; "
                         f"nothing to resume (pass --overwrite to start the run again)")
    return 0, None


__all__ = ["RESUME_FREE", "check_same", "jsonable", "restore", "snapshot"]
