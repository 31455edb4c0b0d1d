"""A run folder: the files one training run writes, and the rule that it never overwrites others'.

    losses.csv              one row per iteration (``COLUMNS``; ``loss_keypoint`` for a keypoint model)
    eval.json               [{iteration, seconds, bbox: {AP, ...}, segm: {...}, per_class: {...}}, ...]
    checkpoint_*.npz/.json  the newest ``keep_checkpoints`` (``checkpoint.py``)
    model.npz/.json         final weights, model.classes.json (class names, COCO category ids)

``RunFolder.claim(resume, overwrite)`` decides, before anything is written, whether a
training run may use the folder:

    missing or empty folder                 start afresh
    holds a checkpoint                      resume it (``resume``), else refuse
    a run without checkpoints: final
      weights (model.json) present          refuse: nothing to resume, and starting again
                                            would replace the finished run's files
      only losses.csv / eval.json (a run
      killed before its first checkpoint)   restart it with ``resume``, else refuse
    other files, none of a run's            refuse (not a run folder) when ``other_files_ok``
                                            is False (the command line); a study runner that
                                            keeps its own job.json / train.log there passes True

``overwrite=True`` lifts the refusals: the run's own files (the names above) are deleted
first and any other file is left alone.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from mrcnn_np.detection.mask_rcnn import LOSS_NAMES, loss_names
from mrcnn_np.engine.checkpoint import list_checkpoints, write_json_atomic

COLUMNS = ("iteration", *LOSS_NAMES, "total", "lr", "grad_norm", "num_pos_anchors", "num_pos_rois", "sec_per_iter")

# Files (other than checkpoints) that a training run writes into its folder.
RUN_FILES = ("losses.csv", "eval.json", "model.npz", "model.json", "model.classes.json")


def log_columns(model_cfg) -> tuple:
    """losses.csv columns of a run of ``model_cfg``: ``COLUMNS``, with ``loss_keypoint`` for a keypoint model."""
    return ("iteration", *loss_names(model_cfg), *COLUMNS[1 + len(LOSS_NAMES):])


def read_losses(path) -> dict:
    """losses.csv (path to the file or its run folder) -> {column: (T,) float64 array}."""
    path = Path(path)
    path = path / "losses.csv" if path.is_dir() else path
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    return {c: np.array([float(r[c]) for r in rows]) for c in (reader.fieldnames or COLUMNS)}


class RunFolder:
    """The paths of one run folder and the operations on its log files."""

    def __init__(self, path):
        self.path = Path(path)
        self.losses = self.path / "losses.csv"
        self.evals = self.path / "eval.json"
        self.model = self.path / "model"  # prefix of model.npz / model.json

    def checkpoints(self) -> list:
        """Complete checkpoints as (iteration, prefix), oldest first."""
        return list_checkpoints(self.path)

    def claim(self, resume: bool, overwrite: bool = False, other_files_ok: bool = True) -> None:
        """Raise ValueError unless a run may write here (see the module docstring); with
        ``overwrite`` delete the run files already there instead."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise ValueError(f"{p}: the run folder is a file, not a folder")
        if not p.is_dir():
            return
        ckpts = self.checkpoints()
        ours = [n for n in RUN_FILES if (p / n).exists()]
        if overwrite:
            for n in ours:
                (p / n).unlink()
            for q in p.glob("checkpoint_*"):
                if q.is_file():
                    q.unlink()
            return
        hint = "choose another output folder, or overwrite it explicitly (--overwrite)"
        if ckpts:
            if not resume:
                raise ValueError(f"{p} already holds a run (newest checkpoint {ckpts[-1][1].name}); resume it "
                                 f"(--resume), or {hint}")
        elif (p / "model.json").exists():
            raise ValueError(f"{p} holds a finished run whose checkpoints are gone: there is nothing to resume "
                             f"and training again would replace its model.npz, losses.csv and eval.json; {hint}")
        elif ours:
            if not resume:
                raise ValueError(f"{p} already holds a run's {', '.join(ours)} (no checkpoint yet); restart it "
                                 f"(--resume), or {hint}")
        elif not other_files_ok:
            others = sorted(q.name for q in p.iterdir())
            if others:
                raise ValueError(f"{p} is not empty and is not a run folder (it holds {others[0]!r}"
                                 f"{', ...' if len(others) > 1 else ''}); {hint}")

    def keep_rows_before(self, start: int, columns=COLUMNS) -> None:
        """Rewrite losses.csv with only the rows of iterations < start (atomically)."""
        rows = []
        if self.losses.is_file():
            with open(self.losses, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["iteration"]) < start]
        tmp = self.losses.with_name(self.losses.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, columns)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.losses)

    def read_evals(self, up_to: int) -> list:
        """The eval.json entries of iterations <= up_to ([] when there is no file)."""
        if not self.evals.is_file():
            return []
        try:
            entries = json.loads(self.evals.read_text())
            return [e for e in entries if int(e["iteration"]) <= up_to]
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, ValueError) as e:
            raise ValueError(f"{self.evals}: not an eval log of this package ({e})") from None

    def write_evals(self, evals: list) -> None:
        write_json_atomic(self.evals, evals)


__all__ = ["COLUMNS", "RUN_FILES", "RunFolder", "log_columns", "read_losses"]
