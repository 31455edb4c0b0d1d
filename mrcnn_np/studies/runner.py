"""The study runner: variants x seeds -> independent trainings -> mean ± std -> a JSON and a markdown report.

A ``Study`` declares what differs between experiments (the paper's ablation tables, keypoints
Table 4, the demo): its variants (config changes on top of a base), its recipe (the
``TrainConfig`` fields and the data set sizes), its data set, and a few hooks (build the
model config, score a trained model, write the markdown). Everything else is here, once:

1. make (or reuse) the data set, once, before any run starts (the runs only read it);
2. one job per (variant, seed), a plain dict, run by ``run_job`` in this process, in a local
   pool of spawned processes, or on a Dask cluster (``executors.py``): same seeds, same numbers;
3. each job owns a run folder ``<runs-root>/<study>/<variant>/seed<s>`` with ``job.json``
   (the job and its identity: the recipe's digest ``mrcnn_np.engine.run_digest``, the data
   set's parameters and the processes per step), ``train.log``, the training's files and, once
   scored, ``result.json``. With ``resume`` a finished run of the same identity is reused and
   an unfinished one continues from its checkpoint; otherwise (or for another identity) our
   folder is replaced. A folder without ``job.json`` is not ours: an error, never deleted.
   A run that diverges is a result (``metrics: None``), not a crash of the whole study;
4. the report: mean ± sample std over seeds per variant, the command, the seeds, the git
   commit the runs started from, wall times; ``<out>/<stem>.json`` and ``.md``. ``quick``
   runs the study's tiny recipe into ``*_quick`` folders and files, never replacing results.
5. ``backbone_init="pretrained"`` (and ``freeze_at``) start every run from the shipped
   pretrained body (``detection/pretrained.py``), ``"scratch"`` from random weights. Each study
   has a default (``Study.backbone_init``: the demo's is pretrained, the tables' scratch); the
   other choice gets a ``_pretrained`` or ``_scratch`` suffix on the run folders and the report
   (and ``_freeze<k>``), so it never replaces the default's runs, and the data set is the same.

Shapes::

    V variants, S seeds -> V * S jobs, variant-major: job = {study, variant, seed, data_dir, run_dir, recipe, resume}
    result = {study, variant, seed, run_dir, digest, metrics: {name: percent or None} or None, error, seconds, ...}
    report["variants"][i]["ours"] = {metric: {"mean", "std", "n"}}
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mrcnn_np.studies.executors import connect, describe, map_jobs
from mrcnn_np.studies.report import aggregate, git_commit, mean_std, write_report

DATA_SEED = 0                   # every variant and seed trains on the same images; the seed varies training
NOT_TRAIN = ("train_images", "val_images", "seeds")   # recipe keys that are not TrainConfig fields


@dataclass(frozen=True)
class Variant:
    """One alternative: config changes (``with_fields`` names) on top of the study's base."""

    label: str
    changes: dict = field(default_factory=dict)
    paper: dict = field(default_factory=dict)     # the paper's numbers for this row (missing: not reported)
    group: str = ""                               # differences are taken against the group's first variant


@dataclass(frozen=True, kw_only=True)
class Study:
    """What one study declares; ``run_study`` does the rest (see the module docstring)."""

    name: str                       # registry name (``studies.registry``), also the job's key
    title: str
    command: str                    # after ``python -m mrcnn_np``: "ablate roi", "keypoints", "demo"
    variants: tuple
    recipe: dict                    # TrainConfig fields + train_images, val_images (+ seeds: the default count)
    quick_recipe: dict              # --quick: a smoke test of the whole pipeline, not a measurement
    metrics: tuple                  # result metrics aggregated as mean ± std
    model_config: Callable          # (study, variant, train_set) -> MaskRCNNConfig
    evaluate: Callable              # (study, job, TrainResult, val_set) -> result fields (at least "metrics")
    format_markdown: Callable       # report -> markdown text
    data_folder: str                # the data set: <data-root>/<data_folder>[_quick]
    runs_folder: str                # the run folders: <runs-root>/<runs_folder>[_quick]/<variant>/seed<s>
    stem: str                       # the report: <out>/<stem>[_quick].json and .md
    dataset: str = "shapes"         # "shapes" (``data`` is its ShapesConfig) or "keypoints" (stick figures)
    data: object = None
    image_size: int = 128           # of the keypoints set (a shapes set's is ``data.image_size``)
    bookkeeping: dict = field(default_factory=dict)   # TrainConfig fields beside the recipe's (logging, checkpoints)
    train_kwargs: dict = field(default_factory=dict)  # train(): workers (processes per step), progress
    eval_in_training: bool = False  # give train() the validation set (its final evaluation is then the result's)
    resume_default: bool = False    # --resume unless --no-resume (the demo: running it again reuses its run)
    show_training: bool = False     # also write the training's log lines to stderr (else only to train.log)
    paper_table: str = ""
    paper_setting: str = ""
    design: str = ""                # why this data set lets the effect show
    backbone_init: str = "scratch"  # where the body starts unless told: "scratch" or "pretrained"
    base: dict = field(default_factory=dict)          # model changes for every variant
    extra: dict = field(default_factory=dict)         # copied into the report
    claims: tuple = ()              # the paper's claims it tests (studies.findings.Claim): the report's findings
    summary: Callable = None        # result -> the words of its progress line
    finish: Callable = None         # (study, report, out folder, suffix, log) -> None: figures, extra fields
    workshop_recipe: dict = None    # --workshop: a short recipe whose main finding shows (None: the study has none)
    workshop_variants: tuple = ()   # the variants a workshop runs (labels; empty: all)
    workshop_init: str = "pretrained"   # where a workshop run's body starts unless told

    def variant(self, label: str) -> Variant:
        for v in self.variants:
            if v.label == label:
                return v
        raise ValueError(f"study {self.name!r} has no variant {label!r}; it has {[v.label for v in self.variants]}")

    def recipe_for(self, quick: bool = False, workshop: bool = False) -> dict:
        if workshop:
            if self.workshop_recipe is None:
                raise ValueError(f"study {self.name!r} has no workshop recipe (--workshop)")
            if quick:
                raise ValueError("--quick and --workshop are two different recipes: choose one")
            return dict(self.workshop_recipe)
        return dict(self.quick_recipe if quick else self.recipe)

    def variants_for(self, workshop: bool = False) -> tuple:
        """The variants a run of the study trains: all, or the workshop's subset."""
        if workshop and self.workshop_variants:
            return tuple(self.variant(label) for label in self.workshop_variants)
        return self.variants

    def find_variant(self, name: str, workshop: bool = False) -> Variant:
        """The variant called ``name``: its label or its folder name (``slug``), as a student types it."""
        choices = self.variants_for(workshop)
        for v in choices:
            if name in (v.label, slug(v.label)) or slug(name) == slug(v.label):
                return v
        raise ValueError(f"--variant {name!r}: table {self.name!r} has no such variant{' in its workshop recipe' * workshop}"
                         "; choose from " + ", ".join(slug(v.label) for v in choices))


def slug(label: str) -> str:
    """A variant label as a folder name: "RoIAlign (avg), stride 16" -> "roialign_avg_stride_16"."""
    text = label.lower().replace("&", "and").replace("·", "").replace("²", "2")
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def train_config(study: Study, recipe: dict, seed: int, out_dir):
    """The ``TrainConfig`` of one run: the recipe's training fields, the study's bookkeeping, this seed and folder."""
    from mrcnn_np.engine import TrainConfig  # noqa: PLC0415

    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in recipe.items() if k not in NOT_TRAIN}
    return TrainConfig(**fields, **study.bookkeeping, seed=int(seed), out_dir=str(out_dir))


@contextlib.contextmanager
def quiet():
    """Swallow stdout (pycocotools and the data loaders talk; the parent process reports progress)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# ---------------------------------------------------------------- the run folder
def identity(model_cfg, cfg, data_dir, step_workers: int) -> dict:
    """What a run's numbers depend on, not where its folder is: the recipe's digest (model and
    training config), the data set's parameters, and the processes per step (each shard samples
    its own anchors and RoIs)."""
    from mrcnn_np.engine import run_digest  # noqa: PLC0415

    return {"digest": run_digest(model_cfg, cfg), "data": json.loads((Path(data_dir) / "params.json").read_text()),
            "step_workers": int(step_workers)}


def prepare_run_dir(run_dir: Path, ident: dict, resume: bool):
    """Ready ``run_dir`` for a job of identity ``ident``: (resume the training?, the finished result or None).

    Only a folder of ours (with a job.json) is ever replaced; resuming needs the same identity."""
    job_path, result_path = run_dir / "job.json", run_dir / "result.json"
    ours = job_path.is_file()
    same = bool(resume) and ours and json.loads(job_path.read_text()).get("identity") == ident
    if same and result_path.is_file():
        return True, json.loads(result_path.read_text())
    if run_dir.exists() and not same:
        if not ours and any(run_dir.iterdir()):
            raise ValueError(f"{run_dir} exists and is not a study's run folder (no job.json); "
                             "choose another --runs-root")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return same, None


# ---------------------------------------------------------------- one job (runs in a worker)
def run_job(job: dict) -> dict:
    """Train and score one (variant, seed) of a study; the job and the result are plain JSON."""
    from mrcnn_np.engine import TrainingDiverged, train  # noqa: PLC0415
    from mrcnn_np.engine.data import shapes_split  # noqa: PLC0415
    from mrcnn_np.studies.registry import get_study  # noqa: PLC0415

    t0 = time.perf_counter()
    study = get_study(job["study"])
    variant = study.variant(job["variant"])
    run_dir = Path(job["run_dir"])
    with quiet():
        train_set, val_set = shapes_split(job["data_dir"], "train"), shapes_split(job["data_dir"], "val")
    model_cfg = study.model_config(study, variant, train_set)
    if job.get("model_changes"):                        # --backbone-init / --freeze-at
        from mrcnn_np.detection.config import with_fields  # noqa: PLC0415
        model_cfg = with_fields(model_cfg, **job["model_changes"])
    cfg = train_config(study, job["recipe"], job["seed"], run_dir)
    kwargs = dict({"progress": False, "workers": 1}, **study.train_kwargs)
    ident = identity(model_cfg, cfg, job["data_dir"], kwargs["workers"])
    resume, finished = prepare_run_dir(run_dir, ident, job.get("resume"))
    if finished is not None:
        return dict(finished, reused=True)
    (run_dir / "job.json").write_text(json.dumps(dict(job, identity=ident), indent=1, default=list))
    out = {"study": study.name, "variant": variant.label, "seed": int(job["seed"]), "digest": ident["digest"],
           "run_dir": str(run_dir), "metrics": None, "error": None, "reused": False}
    with open(run_dir / "train.log", "a") as logf, quiet():
        def log(line):
            logf.write(line + "\n")
            logf.flush()
            if study.show_training:
                print(line, file=sys.stderr, flush=True)
        try:
            res = train(model_cfg, cfg, train_set, val_set if study.eval_in_training else None, resume=resume,
                        log=log, threads=1, **kwargs)
        except TrainingDiverged as e:                       # a result, not a crash of the study
            out.update(error=str(e), seconds=round(time.perf_counter() - t0, 1))
            return out
    out["train_seconds"] = round(time.perf_counter() - t0, 1)
    t1 = time.perf_counter()
    with quiet():
        out.update(study.evaluate(study, job, res, val_set))
    out.setdefault("eval_seconds", round(time.perf_counter() - t1, 1))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    (run_dir / "result.json").write_text(json.dumps(out, indent=1))
    return out


# ---------------------------------------------------------------- the whole study
def ensure_data(study: Study, data_dir: Path, recipe: dict, progress: bool = True):
    """Make (or reuse, same parameters) the study's data set: (reused, statistics, the statistics as text)."""
    if study.dataset == "keypoints":
        from mrcnn_np.datasets.keypoints import ensure_keypoints, format_keypoint_statistics  # noqa: PLC0415

        reused, stats = ensure_keypoints(data_dir, recipe["train_images"], recipe["val_images"], study.image_size,
                                         DATA_SEED, progress=progress)
        return reused, stats, format_keypoint_statistics(stats)
    from mrcnn_np.datasets.shapes import ensure_shapes, format_statistics  # noqa: PLC0415

    reused, stats = ensure_shapes(data_dir, recipe["train_images"], recipe["val_images"], study.data.image_size,
                                  DATA_SEED, study.data, progress=progress)
    return reused, stats, format_statistics(stats)


def init_suffix(backbone_init: str = "scratch", freeze_at: int = 0, default: str = "scratch") -> str:
    """The suffix of the run folders and report of runs whose body starts otherwise than the study's
    ``default`` ("" for the default, unfrozen)."""
    if backbone_init not in ("scratch", "pretrained"):
        raise ValueError(f"backbone_init must be 'scratch' or 'pretrained' for a study, got {backbone_init!r}")
    if backbone_init == "scratch" and freeze_at:
        raise ValueError("--freeze-at needs --backbone-init pretrained (a random stem would stay random)")
    return ("" if backbone_init == default else f"_{backbone_init}") + (f"_freeze{int(freeze_at)}" if freeze_at else "")


def command_line(study: Study, seeds, workers=2, scheduler=None, quick=False, resume=None, out="results",
                 data_root="data", runs_root="runs", iterations=None, backbone_init=None, freeze_at=0,
                 workshop=False, select=None) -> str:
    """The command that runs exactly this (recorded in the report)."""
    parts = ["python -m mrcnn_np", study.command]
    parts += ["--workshop"] * bool(workshop)
    if select is not None:
        parts += [f"--variant {slug(select[0])}", f"--seed {int(select[1])}"]
    else:
        parts.append(f"--seeds {seeds}")
    parts += [f"--scheduler {scheduler}"] if scheduler else [f"--workers {workers}"]
    parts += [f"--iters {iterations}"] if iterations is not None else []
    parts += ["--quick"] * bool(quick)
    default_init = study.workshop_init if workshop else study.backbone_init
    parts += [f"--backbone-init {backbone_init}"] if backbone_init not in (None, default_init) else []
    parts += [f"--freeze-at {freeze_at}"] if freeze_at else []
    if resume is not None and bool(resume) != study.resume_default:
        parts.append("--resume" if resume else "--no-resume")
    parts += [f"--out {out}", f"--data-root {data_root}", f"--runs-root {runs_root}"]
    return " ".join(str(p) for p in parts)


def run_study(study: Study, seeds: int | None = None, *, workers: int = 2, scheduler: str | None = None,
              resume: bool | None = None, quick: bool = False, out="results", data_root="data", runs_root="runs",
              iterations: int | None = None, progress: bool = True, log=print,
              connect_timeout: float = 10.0, backbone_init: str | None = None, freeze_at: int = 0,
              workshop: bool = False, select: tuple | None = None) -> dict:
    """Run every (variant, seed) of ``study``, write the .json and .md, return the report.

    seeds: how many (0, 1, ..., seeds - 1; default the recipe's ``seeds``, else 1). workers:
    runs at once in local processes (1: in this process). scheduler: a Dask scheduler address
    (then the cluster decides). resume: reuse finished runs of the same identity, continue
    unfinished ones (default: the study's). iterations: override the recipe's. backbone_init
    ("scratch" or "pretrained"; default: the study's), freeze_at: every model config's.
    workshop: the study's workshop recipe and variants (files and folders get ``_workshop``;
    the body starts as ``Study.workshop_init`` unless told). select: (variant name, seed) runs that
    one job only and writes one pooled-run file ``<out>/<stem><suffix>__<variant>__seed<s>.json``
    (``studies.pooled``) instead of the report; it returns that file's dict.
    """
    recipe = study.recipe_for(quick, workshop)
    if iterations is not None:
        if int(iterations) < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        recipe["iterations"] = int(iterations)
    seeds = int(recipe.get("seeds", 1) if seeds is None else seeds)
    if seeds < 1 or int(workers) < 1:
        raise ValueError(f"seeds and workers must be >= 1, got {seeds} and {workers}")
    variants = study.variants_for(workshop)
    if select is not None:
        chosen, seed = study.find_variant(str(select[0]), workshop), int(select[1])
        if seed < 0:
            raise ValueError(f"--seed must be >= 0, got {seed}")
        select = (chosen.label, seed)
    workers = int(workers)
    resume = study.resume_default if resume is None else bool(resume)
    data_suffix = "_quick" if quick else "_workshop" if workshop else ""
    default_init = study.workshop_init if workshop else study.backbone_init
    backbone_init = default_init if backbone_init is None else backbone_init
    suffix = data_suffix + init_suffix(backbone_init, freeze_at, default_init)
    model_changes = ({"backbone_init": backbone_init, "freeze_at": int(freeze_at)}
                     if backbone_init != "scratch" or freeze_at else {})
    command = command_line(study, seeds, workers, scheduler, quick, resume, out, data_root, runs_root, iterations,
                           backbone_init, freeze_at, workshop, select)
    t0 = time.perf_counter()
    client = connect(scheduler, connect_timeout) if scheduler else None   # a bad address fails before the data
    with client if client is not None else contextlib.nullcontext():
        commit, dirty = git_commit()   # the code the runs start with (later commits do not change them)
        data_dir = (Path(data_root) / f"{study.data_folder}{data_suffix}").resolve()
        reused, stats, stats_text = ensure_data(study, data_dir, recipe, progress)
        data_seconds = time.perf_counter() - t0
        log(f"data {data_dir}: {'reused (same parameters)' if reused else 'generated'} in {data_seconds:.1f} s")
        log(stats_text)
        runs_dir = (Path(runs_root) / f"{study.runs_folder}{suffix}").resolve()
        pairs = [select] if select is not None else [(v.label, s) for v in variants for s in range(seeds)]
        jobs = [dict(study=study.name, variant=label, seed=s, data_dir=str(data_dir), recipe=recipe, resume=resume,
                     run_dir=str(runs_dir / slug(label) / f"seed{s}"), **({"model_changes": model_changes}
                                                                         if model_changes else {}))
                for label, s in pairs]
        executor = describe(workers, len(jobs), scheduler)
        log(f"{study.title}{' (workshop recipe)' if workshop else ''}: {len(jobs)} training(s) of "
            f"{recipe['iterations']} iterations x {recipe['batch_size']} images, {executor}; run folders in {runs_dir}")
        results = [None] * len(jobs)
        for i, res in map_jobs(run_job, jobs, workers, client):
            results[i] = res
            words = (study.summary(res) if study.summary else "done") if res["metrics"] else \
                f"diverged: {res['error']}"
            log(f"  {res['variant']}, seed {res['seed']}: {words} "
                + ("(reused)" if res.get("reused") else f"({res.get('seconds', 0) / 60:.1f} min)"))
    runs_seconds = time.perf_counter() - t0 - data_seconds
    meta = {
        "study": study.name, **study.extra, "title": study.title, "paper_table": study.paper_table,
        "paper_setting": study.paper_setting, "command": command, "git_commit": commit, "git_dirty": dirty,
        "quick": quick, **({"workshop": True} if workshop else {}), "executor": executor, "recipe": recipe,
        "base": study.base, "design": study.design,
        **({"backbone_init": backbone_init, "freeze_at": int(freeze_at)} if model_changes else {}),
        "data": {"dir": str(data_dir), "config": _config_dict(study.data), "train_images": recipe["train_images"],
                 "val_images": recipe["val_images"], "image_size": study.data.image_size if study.data else
                 study.image_size, "seed": DATA_SEED, "stats": stats},
    }
    stem = Path(out) / f"{study.stem}{suffix}"
    if select is not None:
        from mrcnn_np.studies.pooled import write_run_file  # noqa: PLC0415

        return write_run_file(stem, meta, results[0], seconds=time.perf_counter() - t0)
    report = build_report(study, meta, results, list(range(seeds)), variants)
    report["files"] = [f"{stem}.md", f"{stem}.json"]
    report["seconds"] = {"data": round(data_seconds, 1), "trainings": round(runs_seconds, 1)}
    if study.finish is not None:
        study.finish(study, report, Path(out), suffix, log)
    report["data_seconds"] = round(data_seconds, 1)
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
    write_report(report, stem, study.format_markdown(report))
    return report


def build_report(study: Study, meta: dict, results: list, seeds: list, variants=None) -> dict:
    """The report of finished ``results`` (run result dicts): ``meta`` (what the runs share: the command,
    commit, recipe, data, ...), the seeds, the runs, and per variant mean ± std over its seeds. The runner
    and ``ablate merge`` (pooled run files, ``studies.pooled``) both build their reports here."""
    variants = study.variants if variants is None else variants
    agg = aggregate(results, [v.label for v in variants], study.metrics)
    report = {}
    for key, value in meta.items():      # the seeds right after the command, as the reports always had them
        report.update({key: value, **({"seeds": list(seeds)} if key == "command" else {})})
    report.update(variants=[], runs=results)
    for v in variants:
        mine = [r for r in results if r["variant"] == v.label]
        report["variants"].append({"label": v.label, "group": v.group, "changes": v.changes, "paper": v.paper,
                                   "ours": agg[v.label], "failed_runs": sum(1 for r in mine if not r.get("metrics")),
                                   "train_seconds": mean_std([r.get("train_seconds") for r in mine])})
    return report


def _config_dict(config):
    if config is None:
        return None
    from mrcnn_np.datasets.shapes import config_to_dict  # noqa: PLC0415

    return config_to_dict(config)


__all__ = ["DATA_SEED", "NOT_TRAIN", "Study", "Variant", "build_report", "command_line", "ensure_data", "identity", "init_suffix",
           "prepare_run_dir", "quiet", "run_job", "run_study", "slug", "train_config"]
