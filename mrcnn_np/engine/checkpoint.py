"""Checkpoints: everything a killed training run needs to continue exactly where it was.

A checkpoint is two files written atomically (a temporary file, then ``os.replace``, so a
crash leaves either the old file or the new one, never half of one):

    checkpoint_000200.npz   arrays, read with allow_pickle=False:
                            model/<parameter or buffer name>, optim/<SGD state key>,
                            meta/iteration (to check that the pair belongs together)
    checkpoint_000200.json  written second, so its presence marks a complete checkpoint:
                            iteration (completed iterations), model_config, train_config,
                            rng (generator states as ``bit_generator.state``: the samplers'
                            ``model.sampling_rng`` and, inside ``loader``, the data order and
                            flip generator), loader (epoch order, position), class_names,
                            label_to_cat_id

No pickle anywhere: loading a checkpoint cannot run code. The last ``keep`` checkpoints of
a run are kept; older ones are deleted after a newer one is complete.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mrcnn_np._checks import file_pair

FORMAT = "mrcnn_np-checkpoint"
_NAME = re.compile(r"^checkpoint_(\d{6,})\.json$")


class CheckpointError(ValueError):
    """A checkpoint or weights file cannot be read (truncated, bad CRC, wrong or missing fields)."""


def write_json_atomic(path, obj, default=None) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and ``os.replace`` (``default``: as
    ``json.dumps``'s, for values JSON has no type for)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=default))
    os.replace(tmp, path)


def checkpoint_path(out_dir, iteration: int) -> Path:
    """The prefix (no suffix) of the checkpoint after ``iteration`` completed iterations."""
    return Path(out_dir) / f"checkpoint_{iteration:06d}"


def list_checkpoints(out_dir) -> list:
    """Complete checkpoints of a run folder as (iteration, prefix), oldest first."""
    out_dir = Path(out_dir)
    found = []
    if out_dir.is_dir():
        for p in out_dir.iterdir():
            m = _NAME.match(p.name)
            if m and p.with_suffix(".npz").is_file():
                found.append((int(m.group(1)), p.with_suffix("")))
    return sorted(found)


def latest_checkpoint(out_dir):
    """Prefix of the newest complete checkpoint in ``out_dir``, or None."""
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def save_checkpoint(out_dir, iteration: int, model, optimizer, meta: dict, keep: int = 2) -> Path:
    """Write checkpoint ``iteration`` (npz first, JSON second) and prune old ones.

    meta: JSON-able dict (train_config, rng, loader, class_names, ...); ``iteration``,
    ``model_config`` and ``format`` are added here. Returns the prefix written.
    """
    prefix = checkpoint_path(out_dir, iteration)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"model/{k}": np.asarray(v) for k, v in model.state_dict().items()}
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in optimizer.state_dict().items()})
    arrays["meta/iteration"] = np.array(iteration, np.int64)
    tmp = prefix.with_name(prefix.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, prefix.with_suffix(".npz"))
    doc = dict(meta, format=FORMAT, iteration=int(iteration), model_config=asdict(model.cfg))
    write_json_atomic(prefix.with_suffix(".json"), doc)
    for it, old in list_checkpoints(out_dir)[:-keep] if keep > 0 else []:
        if it != iteration:
            old.with_suffix(".json").unlink(missing_ok=True)  # JSON first: never a JSON without its npz
            old.with_suffix(".npz").unlink(missing_ok=True)
    return prefix


def read_npz(path) -> dict:
    """{name: array} of an .npz file (allow_pickle=False), every array read now, so that a
    truncated file or a bad CRC is a CheckpointError naming the file, not a BadZipFile later."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: unreadable or truncated .npz ({type(e).__name__}: {e})") from None


def read_json(path, what: str) -> dict:
    """The JSON object (a dict) in ``path``; CheckpointError naming the file otherwise."""
    try:
        doc = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not a {what} ({e})") from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{path}: not a {what} (a JSON {type(doc).__name__}, expected an object)")
    return doc


def read_checkpoint(prefix) -> tuple[dict, dict, dict]:
    """(model arrays, optimizer arrays, meta dict) of the checkpoint at ``prefix``.

    Raises CheckpointError (a ValueError) naming the file when a file is missing, truncated,
    not a checkpoint, or lacks ``iteration`` / ``model_config``."""
    js, npz = file_pair(prefix, "checkpoint file", CheckpointError)
    meta = read_json(js, "checkpoint JSON")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{js}: not a mrcnn_np checkpoint (no 'format': '{FORMAT}')")
    if not isinstance(meta.get("iteration"), int) or meta["iteration"] < 0:
        raise CheckpointError(f"{js}: field 'iteration' is missing or not a non-negative integer")
    if not isinstance(meta.get("model_config"), dict):
        raise CheckpointError(f"{js}: field 'model_config' is missing or not an object")
    arrays = read_npz(npz)
    model_arrays = {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}
    optim_arrays = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
    saved_it = int(arrays["meta/iteration"]) if "meta/iteration" in arrays else -1
    if saved_it != meta["iteration"]:
        raise CheckpointError(f"{npz} holds iteration {saved_it} but {js} says {meta['iteration']}")
    return model_arrays, optim_arrays, meta


def model_from_config(d, source, seed: int = 0):
    """A MaskRCNN built from a config dict read from ``source``; CheckpointError naming the
    field when the dict has an unknown, missing or mistyped field."""
    from mrcnn_np.detection.convert import config_from_dict  # noqa: PLC0415
    from mrcnn_np.detection.mask_rcnn import MaskRCNN  # noqa: PLC0415

    if not isinstance(d, dict) or any(not isinstance(v, dict) for k, v in d.items()
                                      if k in ("backbone", "transform", "rpn", "roi_heads", "mask_head")):
        raise CheckpointError(f"{source}: the model config is not a JSON object of objects")
    try:
        return MaskRCNN(config_from_dict(d), seed=seed)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, ZeroDivisionError, OverflowError) as e:
        raise CheckpointError(f"{source}: not a valid model config ({type(e).__name__}: {e})") from None


def load_arrays(model, arrays: dict, source) -> None:
    """Copy ``arrays`` into ``model``'s state; when the names or shapes do not fit, one
    CheckpointError line: how many keys are missing / unexpected / of another shape, with
    the first few of each (weights of another preset, or of another number of classes)."""
    own = model.state_dict()
    missing = [k for k in own if k not in arrays]
    unexpected = [k for k in arrays if k not in own]
    shape = [k for k in own if k in arrays and tuple(np.shape(arrays[k])) != tuple(own[k].shape)]
    if missing or unexpected or shape:
        def few(keys):
            return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
        parts = [f"{len(v)} {what} ({few(v)})" for what, v in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", shape)) if v]
        raise CheckpointError(f"{source}: the weights do not fit the model config: {len(own)} keys expected; "
                              + "; ".join(parts))
    model.load_state_dict(arrays)


def load_weights(path, seed: int = 0):
    """(model in eval mode, class_names or None, label_to_cat_id or None) from any of:

    a run folder (its final ``model`` weights, else its newest checkpoint), a checkpoint
    prefix / file, or weights written by ``convert.save_weights`` (prefix, .npz or .json).
    Raises ValueError (CheckpointError) with the file name when nothing usable is there.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "model.json").is_file():
            path = path / "model"
        elif latest_checkpoint(path) is not None:
            path = latest_checkpoint(path)
        else:
            raise CheckpointError(f"{path}: no weights in this folder (no model.npz/.json, no checkpoint_*.json)")
    elif path.is_file() and path.suffix not in (".npz", ".json"):
        raise CheckpointError(f"{path}: not a weights file (expected a run folder, weights .npz/.json or a "
                              f"checkpoint)")
    prefix = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    js = prefix.with_suffix(".json")
    if not js.is_file():
        raise CheckpointError(f"{js}: weights file not found" + (" (it is a folder)" if js.is_dir() else ""))
    doc = read_json(js, "mrcnn_np weights JSON")
    if doc.get("format") == FORMAT:
        model_arrays, _, meta = read_checkpoint(prefix)
        model = model_from_config(meta["model_config"], js, seed)
        load_arrays(model, model_arrays, prefix.with_suffix(".npz"))
        names, ids = meta.get("class_names"), meta.get("label_to_cat_id")
        return model.eval(), *_check_classes(names, ids, js)
    npz = prefix.with_suffix(".npz")
    if not npz.is_file():
        raise CheckpointError(f"{npz}: weights file not found")
    model = model_from_config(doc, js, seed)
    load_arrays(model, read_npz(npz), npz)
    return model.eval(), *_read_classes(prefix)


def classes_path(prefix) -> Path:
    """``<prefix>.classes.json``: class names and COCO category ids beside a weights file."""
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + ".classes.json")


def write_classes(prefix, class_names, label_to_cat_id) -> None:
    write_json_atomic(classes_path(prefix), {"class_names": list(class_names),
                                             "label_to_cat_id": {str(k): int(v) for k, v in label_to_cat_id.items()}})


def _check_classes(names, ids, source):
    """(class_names, {label: category id}) as stored, or CheckpointError naming ``source``."""
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise CheckpointError(f"{source}: 'class_names' must be a list of strings")
    if ids is not None:
        try:
            ids = {int(k): int(v) for k, v in ids.items()}
        except (AttributeError, TypeError, ValueError):
            raise CheckpointError(f"{source}: 'label_to_cat_id' must map labels to integer ids") from None
    return names, ids or None


def _read_classes(prefix):
    p = classes_path(prefix)
    if not p.is_file():
        return None, None
    doc = read_json(p, "class names file")
    return _check_classes(doc.get("class_names"), doc.get("label_to_cat_id"), p)
