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
from dataclasses import asdict
from pathlib import Path

import numpy as np

FORMAT = "mrcnn_np-checkpoint"
_NAME = re.compile(r"^checkpoint_(\d{6,})\.json$")


def write_json_atomic(path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
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


def read_checkpoint(prefix) -> tuple[dict, dict, dict]:
    """(model arrays, optimizer arrays, meta dict) of the checkpoint at ``prefix``."""
    prefix = Path(prefix)
    prefix = prefix.with_suffix("") if prefix.suffix in (".npz", ".json") else prefix
    js, npz = prefix.with_suffix(".json"), prefix.with_suffix(".npz")
    for f in (js, npz):
        if not f.is_file():
            raise ValueError(f"{f}: checkpoint file not found")
    try:
        meta = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{js}: not a checkpoint JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{js}: not a mrcnn_np checkpoint (no 'format': '{FORMAT}')")
    model_arrays, optim_arrays = {}, {}
    with np.load(npz, allow_pickle=False) as f:
        for k in f.files:
            if k.startswith("model/"):
                model_arrays[k[6:]] = f[k]
            elif k.startswith("optim/"):
                optim_arrays[k[6:]] = f[k]
        saved_it = int(f["meta/iteration"]) if "meta/iteration" in f.files else -1
    if saved_it != meta["iteration"]:
        raise ValueError(f"{npz} holds iteration {saved_it} but {js} says {meta['iteration']}")
    return model_arrays, optim_arrays, meta


def load_weights(path, seed: int = 0):
    """(model in eval mode, class_names or None, label_to_cat_id or None) from any of:

    a run folder (its final ``model`` weights, else its newest checkpoint), a checkpoint
    prefix / file, or weights written by ``convert.save_weights`` (prefix, .npz or .json).
    Raises ValueError with the file name when nothing usable is there.
    """
    from mrcnn_np.detection.convert import config_from_dict, load_model  # noqa: PLC0415
    from mrcnn_np.detection.mask_rcnn import MaskRCNN  # noqa: PLC0415

    path = Path(path)
    if path.is_dir():
        if (path / "model.json").is_file():
            path = path / "model"
        elif latest_checkpoint(path) is not None:
            path = latest_checkpoint(path)
        else:
            raise ValueError(f"{path}: no weights in this folder (no model.npz/.json, no checkpoint_*.json)")
    prefix = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    js = prefix.with_suffix(".json")
    if not js.is_file():
        raise ValueError(f"{js}: weights file not found")
    try:
        doc = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{js}: not a mrcnn_np weights JSON ({e})") from None
    classes = _read_classes(prefix)
    if isinstance(doc, dict) and doc.get("format") == FORMAT:
        model_arrays, _, meta = read_checkpoint(prefix)
        model = MaskRCNN(config_from_dict(meta["model_config"]), seed=seed)
        model.load_state_dict(model_arrays)
        ids = meta.get("label_to_cat_id")
        return model.eval(), meta.get("class_names"), ({int(k): v for k, v in ids.items()} if ids else None)
    try:
        model = load_model(prefix, seed=seed)
    except FileNotFoundError as e:
        raise ValueError(str(e)) from None
    except (KeyError, TypeError) as e:
        raise ValueError(f"{prefix.with_suffix('.npz')}: weights do not fit the config in {js} ({e})") from None
    return model, classes[0], classes[1]


def classes_path(prefix) -> Path:
    """``<prefix>.classes.json``: class names and COCO category ids beside a weights file."""
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + ".classes.json")


def write_classes(prefix, class_names, label_to_cat_id) -> None:
    write_json_atomic(classes_path(prefix), {"class_names": list(class_names),
                                             "label_to_cat_id": {str(k): int(v) for k, v in label_to_cat_id.items()}})


def _read_classes(prefix):
    p = classes_path(prefix)
    if not p.is_file():
        return None, None
    doc = json.loads(p.read_text())
    return doc["class_names"], {int(k): v for k, v in doc["label_to_cat_id"].items()}
