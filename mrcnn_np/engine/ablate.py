"""The paper's ablation tables at teaching scale: many small trainings, one table each.

Mask R-CNN §4.2 (Table 2) isolates one design choice per table and retrains the whole
model for each alternative. We do the same with the ``teaching`` preset on the synthetic
shapes set, several seeds per alternative, and report COCO mask AP (and box AP) as
mean ± std over seeds next to the paper's COCO numbers. Absolute values are not
comparable (different data, a tiny model, minutes of training); the *direction and size of
the differences* within a table are what the paper's argument rests on, so each table's
data set is chosen so that its effect has room to show (``Table.design`` says why).
Every table uses upright shapes (``ShapesConfig(rotate=False)``): with random rotations the
tiny model's errors are mostly wrong classes (learning rotation-invariant shape classes takes
far longer than the minutes a run has), which would bury the box and mask effects the
tables are about under classification noise.

    roi              Table 2c/2d  RoIPool / RoIWarp / RoIAlign (max, avg), C4 (stride 16) and C5 (stride 32)
    mask_loss        Table 2b     per-class sigmoid vs multinomial softmax, plus class-agnostic
    mask_head        Table 2e     MLP vs FCN mask branch
    backbone         Table 2a     C4 vs FPN at two depths
    mask_resolution  (ours)       14 x 14 vs 28 x 28 vs 56 x 56 masks

A table is a list of (variant, seed) runs, all independent: ``run_one(job)`` trains and
evaluates one of them from a plain dict and returns a plain dict. ``run_table`` generates
the data once, then maps ``run_one`` over the jobs in a local process pool (two at once by
default: each training uses one thread, see ``mrcnn_np.threads``) or on a Dask cluster
(``scheduler="tcp://host:8786"``; its workers must see the same file system), aggregates,
and writes ``results/ablation_<table>.md`` and ``.json``. Same seeds, same numbers, on
either executor. Command line: ``python -m mrcnn_np ablate TABLE --seeds 3``.

Shapes::

    V variants, S seeds, V * S runs; metrics in percent (COCO AP x 100, as the paper)
    run result: {"table", "variant", "seed", "metrics": {name: float} or None, "seconds", ...}
    aggregate: {variant: {metric: {"mean", "std" (sample std, None for one seed), "n"}}}
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mrcnn_np.datasets.shapes import ShapesConfig, config_to_dict, ensure_shapes, format_statistics
from mrcnn_np.detection.config import MaskRCNNConfig, preset, with_fields

# The training recipe of every table (TrainConfig fields, plus the data set sizes and the
# default number of seeds); ``Table.recipe`` overrides it per table. Budget: a table of
# V variants x 3 seeds in at most 60 minutes on 2 cores, two runs at a time.
RECIPE = dict(iterations=1200, batch_size=4, lr=0.04, warmup_iters=100, milestones=(0.75, 0.9), clip=0.0,
              train_images=1000, val_images=100, seeds=3)
# --quick: a smoke test of the whole pipeline (CI), not a measurement.
QUICK_RECIPE = dict(iterations=4, batch_size=1, lr=0.01, warmup_iters=2, milestones=(0.75,), clip=10.0,
                    train_images=4, val_images=2, seeds=1)
DATA_SEED = 0          # every variant and seed trains on the same images; the seed varies training
METRICS = ("mask_AP", "mask_AP50", "mask_AP75", "box_AP", "box_AP50", "box_AP75")
_NOT_TRAIN = ("train_images", "val_images", "seeds")


@dataclass(frozen=True)
class Variant:
    """One alternative: config changes (``with_fields`` names) on top of the table's base."""

    label: str
    changes: dict = field(default_factory=dict)
    paper: dict = field(default_factory=dict)     # METRICS names -> the paper's number (missing: not reported)
    group: str = ""                               # differences are taken against the group's first variant


@dataclass(frozen=True)
class Table:
    """One ablation: the paper's table it mirrors, its data set and why, and its variants."""

    name: str
    title: str
    paper_table: str
    paper_setting: str
    data: ShapesConfig
    design: str                                   # why this data set lets the effect show
    variants: tuple
    base: dict = field(default_factory=dict)      # changes applied to the teaching preset for every variant
    recipe: dict = field(default_factory=dict)    # per-table overrides of RECIPE

    def variant(self, label: str) -> Variant:
        for v in self.variants:
            if v.label == label:
                return v
        raise ValueError(f"table {self.name!r} has no variant {label!r}; it has {[v.label for v in self.variants]}")


def _paper(mask, box=None):
    vals = dict(zip(METRICS[:3], mask)) | (dict(zip(METRICS[3:], box)) if box else {})
    return {k: v for k, v in vals.items() if v is not None}


# One feature map for the RPN and the RoIs, so one anchor level with all five sizes.
_ONE_LEVEL = {"rpn.anchor_sizes": ((8, 16, 32, 64, 128),)}
# C4 (Fig. 4 left): res4 at stride 16, res5 as the RoI head, 14 x 14 masks. The paper samples 64
# RoIs per image for C4; res5 on every RoI makes a C4 step about 3x an FPN one at 64 (530-550
# vs 183 ms of CPU time here), so the tables sample 32 to keep a table of C4 runs within its hour.
C4 = {"architecture": "c4", **_ONE_LEVEL, "mask_head.resolution": 14, "roi_heads.batch_size_per_image": 32}
# C5 (Table 2d): the whole ResNet, RoIs pooled at stride 32, the FPN layout's heads.
C5 = {"architecture": "c5", **_ONE_LEVEL}
# Depth: ResNet-101 deepens res4 from 6 to 23 blocks; the deeper teaching net triples res4.
_LAYERS = preset("teaching").backbone.layers
_DEEPER_LAYERS = (*_LAYERS[:2], 3 * _LAYERS[2], *_LAYERS[3:])
_DEEPER = {"backbone.layers": _DEEPER_LAYERS}
# MLP mask head scaled like the FCN: the paper's fc layers are 4x as wide as its 256-channel convs.
_FCN = preset("teaching").mask_head.conv_layers
_MLP_WIDTH = 4 * _FCN[0]

_ROI_OPS = (("RoIPool (max)", "roipool", "max"), ("RoIWarp (max)", "roiwarp", "max"),
            ("RoIWarp (avg)", "roiwarp", "avg"), ("RoIAlign (max)", "roialign", "max"),
            ("RoIAlign (avg)", "roialign", "avg"))
_PAPER_2C = {"roipool/max": (26.9, 48.8, 26.4), "roiwarp/max": (27.2, 49.2, 27.1), "roiwarp/avg": (27.1, 48.9, 27.1),
             "roialign/max": (30.2, 51.0, 31.8), "roialign/avg": (30.3, 51.2, 31.5)}
_PAPER_2D = {"roipool/max": _paper((23.6, 46.5, 21.6), (28.2, 52.7, 26.9)),
             "roialign/avg": _paper((30.9, 51.8, 32.1), (34.0, 55.3, 36.4))}


def _roi_variants():
    out = []
    for arch, stride, paper in ((C4, 16, {k: _paper(v) for k, v in _PAPER_2C.items()}), (C5, 32, _PAPER_2D)):
        for label, op, agg in _ROI_OPS:
            out.append(Variant(f"{label}, stride {stride}", {**arch, "roi_heads.roi_op": op,
                                                             "roi_heads.aggregation": agg},
                               paper.get(f"{op}/{agg}", {}), group=f"stride {stride}"))
    return tuple(out)


TABLES = {t.name: t for t in (
    Table("roi", "RoI operation", "Table 2c/2d", "ResNet-50-C4 (stride 16) and -C5 (stride 32), COCO minival",
          ShapesConfig(min_objects=2, max_objects=6, min_size=24, max_size=64, overlap_prob=0.2, rotate=False,
                       classes=("star",)),
          "Stars 24-64 px across (log-uniform): 1.5-4 cells of the stride-16 map, 0.75-2 of the stride-32 one, so "
          "RoIPool's rounding of box edges to the feature grid (up to half a cell, 8 or 16 px) is large relative "
          "to the object, as for COCO's small objects, and larger at stride 32. One class: with the five shape classes "
          "the one-level models barely learn to classify within the budget (bench/probe_roi_design.py), which "
          "buries the effect; the table measures where boxes and masks land, which is what the rounding harms. Five-pointed stars, "
          "so the masks have corners to get right. Table 2d reports RoIPool and RoIAlign only; its RoIAlign "
          "stands beside our RoIAlign (avg).",
          _roi_variants(),
          # 30 runs, half of them C4 (the slowest step): 600 iterations keep the table within its hour
          recipe=dict(iterations=600)),
    Table("mask_loss", "Mask loss", "Table 2b (and the class-agnostic remark)", "ResNet-50-C4, COCO minival",
          ShapesConfig(min_objects=3, max_objects=8, min_size=16, max_size=56, overlap_prob=0.9, rotate=False),
          "Crowded scenes: 90 % of objects are placed on top of an earlier one, and classes are drawn "
          "independently, so most RoIs contain parts of an object of another class. The softmax loss then "
          "trains the other class's channel down on pixels that look like that class; the per-class sigmoid "
          "does not (the paper's 'decoupling'). Teaching FPN model (the loss does not depend on the backbone).",
          (Variant("softmax (multinomial)", {"mask_head.loss": "softmax"}, _paper((24.8, 44.1, 25.1))),
           Variant("sigmoid (per-class binary)", {"mask_head.loss": "sigmoid"}, _paper((30.3, 51.2, 31.5))),
           Variant("sigmoid, class-agnostic", {"mask_head.loss": "sigmoid", "mask_head.class_agnostic": True},
                   _paper((29.7, None, None))))),
    Table("mask_head", "Mask branch", "Table 2e", "ResNet-50-FPN, COCO minival",
          ShapesConfig(min_objects=1, max_objects=5, min_size=24, max_size=64, overlap_prob=0.3, rotate=False),
          "Medium to large objects (24-64 px) with sharp corners (stars, triangles): a 28 x 28 mask has "
          "detail to get right, which the FCN keeps in its spatial layout and the MLP must learn per pixel. "
          f"The MLP is scaled like the FCN (paper: 1024-wide fc vs 256-channel convs; here {_MLP_WIDTH} vs {_FCN[0]}).",
          (Variant(f"MLP fc {_MLP_WIDTH} → {_MLP_WIDTH} → K·28²",
                   {"mask_head.kind": "mlp", "mask_head.mlp_hidden": (_MLP_WIDTH,) * 2}, _paper((31.5, 53.7, 32.8))),
           Variant(f"MLP fc {_MLP_WIDTH} → {_MLP_WIDTH} → {_MLP_WIDTH} → K·28²",
                   {"mask_head.kind": "mlp", "mask_head.mlp_hidden": (_MLP_WIDTH,) * 3}, _paper((31.5, 54.0, 32.6))),
           Variant(f"FCN {len(_FCN)} × conv {_FCN[0]} + deconv", {"mask_head.kind": "fcn"},
                   _paper((33.6, 55.2, 35.3))))),
    Table("backbone", "Backbone architecture and depth", "Table 2a", "ResNet-50/101, C4 and FPN, COCO minival",
          ShapesConfig(min_objects=1, max_objects=6, min_size=8, max_size=64, overlap_prob=0.3, rotate=False),
          "Object sizes over a factor 8 (8-64 px, log-uniform): the multi-scale setting FPN is made for; a "
          "single stride-16 C4 map must serve an 8 px star and a 64 px hexagon alike. Depth: the deeper "
          "net has three times the res4 blocks (as ResNet-101 deepens res4 from 6 to 23 blocks).",
          (Variant(f"C4, layers {_LAYERS}", dict(C4), _paper((30.3, 51.2, 31.5))),
           Variant(f"C4, layers {_DEEPER_LAYERS}", {**C4, **_DEEPER}, _paper((32.7, 54.2, 34.3))),
           Variant(f"FPN, layers {_LAYERS}", {}, _paper((33.6, 55.2, 35.3))),
           Variant(f"FPN, layers {_DEEPER_LAYERS}", dict(_DEEPER), _paper((35.4, 57.3, 37.5)))),
          recipe=dict(iterations=700)),   # half the runs are C4 (slower steps): within the hour
    Table("mask_resolution", "Mask resolution (not in the paper)", "beyond the paper (it uses 28 x 28 with FPN, "
          "14 x 14 with C4)", "—",
          ShapesConfig(min_objects=1, max_objects=4, min_size=32, max_size=96, overlap_prob=0.3, rotate=False),
          "Large objects (32-96 px): one cell of a 14 x 14 mask covers up to 7 px of a 96 px object, so coarse "
          "masks lose IoU at the strict thresholds (AP75). The FCN's deconvolution doubles its input, so the "
          "RoI features grow with the mask (pool 7, 14, 28).",
          (Variant("14 × 14 (pool 7)", {"mask_head.pool_size": 7, "mask_head.resolution": 14}),
           Variant("28 × 28 (pool 14)", {"mask_head.pool_size": 14, "mask_head.resolution": 28}),
           Variant("56 × 56 (pool 28)", {"mask_head.pool_size": 28, "mask_head.resolution": 56})),
          recipe=dict(iterations=1000)),  # the 56 x 56 head makes the slowest step of all the tables
)}


def get_table(name: str) -> Table:
    if name not in TABLES:
        raise ValueError(f"unknown ablation table {name!r}; choose from {list(TABLES)}")
    return TABLES[name]


def model_config(table: Table, variant: Variant, num_classes: int) -> MaskRCNNConfig:
    """The teaching preset with the table's base changes, then the variant's, sized to the data."""
    size = table.data.image_size
    cfg = with_fields(preset("teaching"), num_classes=num_classes, **{"transform.min_size": (size,),
                                                                      "transform.max_size": size})
    return with_fields(with_fields(cfg, **table.base), **variant.changes)


def table_recipe(table: Table, quick: bool = False) -> dict:
    return dict(QUICK_RECIPE) if quick else {**RECIPE, **table.recipe}


def train_config(recipe: dict, seed: int, out_dir):
    """The ``TrainConfig`` of one run: the recipe's training fields, this seed and folder, no logging."""
    from mrcnn_np.engine.train import TrainConfig  # noqa: PLC0415

    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in recipe.items() if k not in _NOT_TRAIN}
    return TrainConfig(**fields, seed=int(seed), out_dir=str(out_dir), eval_every=0, eval_images=0,
                       checkpoint_every=100, keep_checkpoints=1, log_every=0)


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower().replace("·", "").replace("²", "2")).strip("_")


def _digest(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ---------------------------------------------------------------- one run (runs in a worker)
def run_one(job: dict) -> dict:
    """Train and evaluate one (variant, seed); every argument and the result are plain JSON.

    job: table, variant (label), seed, data_dir, run_dir, recipe (see RECIPE), resume.
    Without resume an earlier run in ``run_dir`` is replaced; with it, a finished run of the
    same job is returned as is and an unfinished one continues from its checkpoint. A run
    that diverges returns ``metrics: None`` and the error instead of stopping the table.
    """
    from mrcnn_np.engine.data import shapes_split  # noqa: PLC0415
    from mrcnn_np.engine.train import train  # noqa: PLC0415

    t0 = time.perf_counter()
    table = get_table(job["table"])
    variant = table.variant(job["variant"])
    run_dir = Path(job["run_dir"])
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools talks; the parent shows progress
        train_set, val_set = shapes_split(job["data_dir"], "train"), shapes_split(job["data_dir"], "val")
    model_cfg = model_config(table, variant, len(train_set.class_names))
    cfg = train_config(job["recipe"], job["seed"], run_dir)
    data_params = json.loads((Path(job["data_dir"]) / "params.json").read_text())
    # what the numbers depend on (not where the folder is)
    digest = _digest(dataclasses.asdict(model_cfg), dataclasses.asdict(dataclasses.replace(cfg, out_dir="")),
                     data_params)
    result_path, job_path = run_dir / "result.json", run_dir / "job.json"
    # resume only a run of this very job (same model, recipe and data); replace anything else of ours
    resume = bool(job.get("resume")) and job_path.is_file() and json.loads(job_path.read_text())["digest"] == digest
    if resume and result_path.is_file():
        return dict(json.loads(result_path.read_text()), reused=True)
    if run_dir.exists() and not resume:
        if not job_path.is_file() and any(run_dir.iterdir()):
            raise ValueError(f"{run_dir} exists and is not an ablation run folder; choose another runs root")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "job.json").write_text(json.dumps(dict(job, digest=digest), indent=1))
    out = {"table": table.name, "variant": variant.label, "seed": int(job["seed"]), "digest": digest,
           "run_dir": str(run_dir), "metrics": None, "error": None, "reused": False}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            res = train(model_cfg, cfg, train_set, val_set, resume=resume, progress=False,
                        log=lambda s: None, threads=1)
    except FloatingPointError as e:                      # TrainingDiverged: a result, not a crash
        out.update(error=str(e), seconds=round(time.perf_counter() - t0, 2))
        return out
    ev = res.evals[-1]
    pct = {kind: {k: (100.0 * v if v >= 0 else None) for k, v in ev[kind].items()} for kind in ("segm", "bbox")}
    out["metrics"] = {f"{pre}_{k}": pct[kind][k] for pre, kind in (("mask", "segm"), ("box", "bbox"))
                      for k in ("AP", "AP50", "AP75")}
    out.update(segm=pct["segm"], bbox=pct["bbox"], eval_seconds=ev["seconds"],
               seconds=round(time.perf_counter() - t0, 2))
    result_path.write_text(json.dumps(out, indent=1))
    return out


# ---------------------------------------------------------------- aggregation
def mean_std(values) -> dict:
    """{"mean", "std", "n"} of the finite values; std is the sample std (ddof 1), None for n < 2."""
    v = [float(x) for x in values if x is not None and math.isfinite(x)]
    if not v:
        return {"mean": None, "std": None, "n": 0}
    m = sum(v) / len(v)
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else None
    return {"mean": m, "std": s, "n": len(v)}


def aggregate(runs, labels) -> dict:
    """{variant label: {metric: mean_std over its seeds}} for the variants ``labels`` (in that order)."""
    out = {}
    for label in labels:
        mine = [r["metrics"] for r in runs if r["variant"] == label and r.get("metrics")]
        out[label] = {m: mean_std([r.get(m) for r in mine]) for m in METRICS}
    return out


# ---------------------------------------------------------------- running a table
def connect(scheduler: str, timeout: float = 10.0):
    """A ``dask.distributed.Client`` of the scheduler at ``scheduler`` ("tcp://host:8786"), or a
    ValueError saying why not (dask missing, malformed address, nobody answering in ``timeout`` s)."""
    try:
        from dask.distributed import Client  # noqa: PLC0415
    except ImportError:
        raise ValueError("--scheduler needs dask.distributed: pip install 'mrcnn_np[cluster]'") from None
    try:
        return Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot connect to the Dask scheduler at {scheduler!r}: {e}") from None


def map_jobs(fn, jobs, workers, client=None):
    """Yield (index, fn(job)) of each job as it finishes: on the Dask ``client``'s cluster if
    given, else in a local pool of ``workers`` processes (``workers=1``: in this process).
    ``fn`` must be importable by the workers (a module-level function); jobs are plain dicts."""
    if client is not None:
        from dask.distributed import as_completed  # noqa: PLC0415

        futures = client.map(fn, jobs, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for f in as_completed(futures, loop=client.loop):
                yield index[f.key], f.result()
        finally:
            client.cancel(futures)
        return
    if workers == 1:
        for i, job in enumerate(jobs):
            yield i, fn(job)
        return
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: PLC0415

    # spawn: a fresh interpreter per worker (forking a process whose numba/BLAS thread pools
    # are running can deadlock the child)
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs))),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        finally:
            for f in futures:
                f.cancel()


def git_commit():
    """(commit hash, has uncommitted changes) of the source tree, or (None, None) outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=30)
        return head.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def command_line(name, seeds, workers=2, scheduler=None, quick=False, out="results", data_root="data",
                 runs_root="runs/ablation", resume=False) -> str:
    parts = ["python -m mrcnn_np ablate", name, f"--seeds {seeds}"]
    parts += [f"--scheduler {scheduler}"] if scheduler else [f"--workers {workers}"]
    parts += ["--quick"] * quick + ["--resume"] * resume
    parts += [f"--out {out}", f"--data-root {data_root}", f"--runs-root {runs_root}"]
    return " ".join(str(p) for p in parts)


def run_table(name: str, seeds: int | None = None, *, workers: int = 2, scheduler: str | None = None,
              quick: bool = False, out="results", data_root="data", runs_root="runs/ablation",
              resume: bool = False, progress: bool = True, connect_timeout: float = 10.0) -> dict:
    """Run every (variant, seed) of table ``name``, write the .md and .json, return the report.

    seeds: how many (0, 1, ..., seeds-1; default from the recipe). workers: local processes.
    scheduler: a Dask scheduler address (then ``workers`` is the cluster's business).
    quick: the tiny QUICK_RECIPE; files get a ``_quick`` suffix so they never replace real results.
    """
    from tqdm import tqdm  # noqa: PLC0415

    table = get_table(name)
    recipe = table_recipe(table, quick)
    seeds = int(recipe["seeds"] if seeds is None else seeds)
    if seeds < 1 or workers < 1:
        raise ValueError(f"seeds and workers must be >= 1, got {seeds} and {workers}")
    suffix = "_quick" if quick else ""
    command = command_line(name, seeds, workers, scheduler, quick, out, data_root, runs_root, resume)
    t0 = time.perf_counter()
    client = connect(scheduler, connect_timeout) if scheduler else None   # a bad address fails before the data
    with client if client is not None else contextlib.nullcontext():
        # the data once, here, before any run starts (the workers only read it)
        commit, dirty = git_commit()   # the code the runs start with (later commits do not change them)
        data_dir = (Path(data_root) / f"ablation_{name}{suffix}").resolve()
        _, stats = ensure_shapes(data_dir, recipe["train_images"], recipe["val_images"], table.data.image_size,
                                 DATA_SEED, table.data, progress=progress)
        data_seconds = time.perf_counter() - t0
        runs_dir = (Path(runs_root) / f"{name}{suffix}").resolve()
        jobs = [dict(table=name, variant=v.label, seed=s, data_dir=str(data_dir), recipe=recipe, resume=resume,
                     run_dir=str(runs_dir / _slug(v.label) / f"seed{s}"))
                for v in table.variants for s in range(seeds)]
        results = [None] * len(jobs)
        with tqdm(total=len(jobs), desc=f"ablate {name}", unit="run", disable=not progress, file=sys.stderr) as bar:
            for i, res in map_jobs(run_one, jobs, workers, client):
                results[i] = res
                ap = (res["metrics"] or {}).get("mask_AP")
                bar.set_postfix_str(f"{res['variant']} s{res['seed']}: "
                                    + (f"mask AP {ap:.1f}" if ap is not None else "diverged"), refresh=False)
                bar.update(1)
    report = {
        "table": name, "title": table.title, "paper_table": table.paper_table, "paper_setting": table.paper_setting,
        "command": command, "seeds": list(range(seeds)), "git_commit": commit, "git_dirty": dirty,
        "wall_seconds": round(time.perf_counter() - t0, 1), "data_seconds": round(data_seconds, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %z"), "quick": quick,
        "executor": f"dask scheduler {scheduler}" if scheduler else f"local process pool, {workers} workers",
        "recipe": recipe, "base": table.base, "design": table.design,
        "data": {"dir": str(data_dir), "config": config_to_dict(table.data), "train_images": recipe["train_images"],
                 "val_images": recipe["val_images"], "seed": DATA_SEED, "stats": stats},
        "variants": [], "runs": results,
    }
    agg = aggregate(results, [v.label for v in table.variants])
    for v in table.variants:
        failed = sum(1 for r in results if r["variant"] == v.label and not r.get("metrics"))
        report["variants"].append({"label": v.label, "group": v.group, "changes": v.changes, "paper": v.paper,
                                   "ours": agg[v.label], "failed_runs": failed})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"ablation_{name}{suffix}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1, default=list) + "\n")
    stem.with_suffix(".md").write_text(format_markdown(report))
    report["files"] = [str(stem.with_suffix(".md")), str(stem.with_suffix(".json"))]
    return report


# ---------------------------------------------------------------- writing
def _pm(stat) -> str:
    if stat is None or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.1f}" + (f" ± {stat['std']:.1f}" if stat.get("std") is not None else "")


def _num(x) -> str:
    return "–" if x is None else f"{x:.1f}"


def _delta(x, ref) -> str:
    return "–" if x is None or ref is None else f"{x - ref:+.1f}"


def results_table(report: dict) -> str:
    """The markdown table: ours (mean ± std over seeds) and the paper's numbers per variant."""
    head = ("| variant | mask AP | AP50 | AP75 | box AP | Δ mask AP | paper AP | AP50 | AP75 | box AP | Δ paper |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    rows, first = [head], {}
    for v in report["variants"]:
        ref = first.setdefault(v["group"], v)
        ours, paper = v["ours"], v["paper"]
        note = f" ({v['failed_runs']} diverged)" if v["failed_runs"] else ""
        rows.append("| " + " | ".join([
            v["label"] + note, *(_pm(ours[m]) for m in ("mask_AP", "mask_AP50", "mask_AP75", "box_AP")),
            _delta(ours["mask_AP"]["mean"], ref["ours"]["mask_AP"]["mean"]),
            *(_num(paper.get(m)) for m in ("mask_AP", "mask_AP50", "mask_AP75", "box_AP")),
            _delta(paper.get("mask_AP"), ref["paper"].get("mask_AP"))]) + " |")
    return "\n".join(rows)


def commit_label(report: dict) -> str:
    """The report's git commit as written in the markdown ("unknown" outside git; dirty trees flagged)."""
    commit = report["git_commit"] or "unknown (not a git checkout)"
    return commit + (" (with uncommitted changes)" if report["git_dirty"] else "")


def format_markdown(report: dict) -> str:
    r = report
    commit = commit_label(r)
    d = r["data"]
    lines = [
        f"# Ablation: {r['title']} — paper {r['paper_table']}" + (" (quick smoke run, not a result)" if r["quick"]
                                                                    else ""),
        "",
        "Teaching-scale Mask R-CNN (`teaching` preset) on the synthetic shapes set; ours: COCO AP x 100 on the "
        f"validation images, mean ± sample std over {len(r['seeds'])} seed(s). Paper: {r['paper_setting']}. "
        "Compare differences within the table (Δ: against the first row of the same group), not absolute values.",
        "",
        results_table(r),
        "",
        "## Why this data set",
        "",
        r["design"],
        "",
        "## Setting",
        "",
        f"- data: `{d['dir']}`, {d['train_images']} training and {d['val_images']} validation images, "
        f"seed {d['seed']}, `ShapesConfig({', '.join(f'{k}={v!r}' for k, v in d['config'].items())})`",
        f"- recipe: `{json.dumps(r['recipe'], default=list)}`",
        *(f"- {v['label']}: `{json.dumps(v['changes'], default=list)}`" for v in r["variants"]),
        "",
        "```",
        format_statistics(d["stats"]),
        "```",
        "",
        "## Reproduce",
        "",
        f"- command: `{r['command']}`",
        f"- seeds: {r['seeds']}; git commit: {commit}",
        f"- wall time: {r['wall_seconds'] / 60:.1f} min (data {r['data_seconds']:.0f} s), {r['executor']}, "
        f"finished {r['finished']}",
        "",
        "## Per run",
        "",
        "| variant | seed | mask AP | AP50 | AP75 | box AP | AP50 | AP75 | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        m = run.get("metrics") or {}
        cells = [_num(m.get(k)) for k in METRICS] if m else ["diverged"] + ["–"] * 5
        lines.append(f"| {run['variant']} | {run['seed']} | " + " | ".join(cells)
                     + f" | {run.get('seconds', 0):.0f}{' (reused)' if run.get('reused') else ''} |")
    if r.get("note"):  # what the numbers alone do not say (how the run went), added to the JSON by hand
        lines += ["", "## Note", "", r["note"]]
    return "\n".join(lines) + "\n"


__all__ = ["METRICS", "QUICK_RECIPE", "RECIPE", "TABLES", "Table", "Variant", "aggregate", "command_line",
           "format_markdown", "get_table", "mean_std", "model_config", "results_table", "run_one", "run_table",
           "train_config"]
