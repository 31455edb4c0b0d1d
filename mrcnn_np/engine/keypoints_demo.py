"""Keypoint-only vs keypoint & mask: the paper's Table 4 at teaching scale.

Mask R-CNN §5 adds a keypoint branch (``detection/keypoint_head.py``) and reports that a
model trained on person boxes, masks *and* keypoints is a little better at keypoints than
one trained on boxes and keypoints alone (Table 4, COCO test-dev, R50-FPN: AP_kp 62.7 ->
63.1; Table 5, minival: box AP 50.7 -> 52.0, AP_kp 64.2 -> 64.7, mask AP 45.1), "the
mask branch helps". ``run_keypoints`` asks the same question with the ``teaching_keypoints``
preset on the synthetic stick figures (``datasets/keypoints.py``):

1. make (or reuse) the stick-figure data set (``ensure_keypoints``; ``data/keypoints``);
2. train two variants, ``mask_on=False`` ("keypoint-only") and ``mask_on=True`` ("keypoint &
   mask"), for each seed: independent runs, two at a time in a pool of spawned processes
   (one thread each) by default, one after the other with ``workers=1``;
3. evaluate every run on the whole validation split: AP_kp (OKS, ``evaluate_keypoints``), box
   AP and, for the joint model, mask AP (``evaluate_coco``);
4. write ``results/keypoints_table4.md`` and ``.json`` (ours as mean ± sample std over seeds
   beside the paper's Tables 4 and 5, the exact command, seeds, git commit, wall times) and
   ``results/keypoints_predictions.png`` (ground truth and both models' skeletons on a few
   validation images).

Absolute numbers are not comparable with the paper's (stick figures on 128-pixel images, a tiny
model trained from scratch for minutes); the question is the *direction* of the difference.
With one seed a difference of a point or two is within the seed-to-seed noise: use
``--seeds 3`` to see the spread. ``quick=True`` is a smoke test of the whole pipeline (CI): a
few iterations on a few images, files with a ``_quick`` suffix that never replace real results.
Command line: ``python -m mrcnn_np keypoints --seeds 1``.

Shapes::

    V = 2 variants, S seeds, V * S runs; metrics in percent (COCO AP x 100, as the paper)
    run result: {"variant", "mask_on", "seed", "metrics": {name: float or None} or None, "seconds", ...}
    aggregate: {variant: {metric: {"mean", "std" (sample std, None for one seed), "n"}}}
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
from pathlib import Path

from mrcnn_np.engine.ablate import _num, _pm, commit_label, git_commit, map_jobs, mean_std

# The recipe (TrainConfig fields plus data sizes). Budget: each training at most ~12 minutes
# with one thread on a busy 2-core machine, both at once: measured beforehand at 1.0-1.2 s per
# iteration of 4 images with two other trainings running; the real run of results/ averaged
# 1.33 (keypoint-only) and 1.49 s/iteration (keypoint & mask), 11 and 12.5 minutes.
RECIPE = dict(iterations=500, batch_size=4, lr=0.02, warmup_iters=50, milestones=(0.75, 0.9), clip=10.0,
              train_images=1000, val_images=100)
# quick: a smoke test (tests, CI), not a measurement.
QUICK_RECIPE = dict(iterations=3, batch_size=1, lr=0.01, warmup_iters=1, milestones=(0.75,), clip=10.0,
                    train_images=4, val_images=2)
DATA_SEED = 0          # both variants and every seed train on the same images
IMAGE_SIZE = 128
SHOW = 4               # validation images in the figure
SCORE_SHOWN = 0.5      # detections drawn in the figure: score at least this
_NOT_TRAIN = ("train_images", "val_images")

# (label, mask_on): the two rows of Table 4 / Table 5 that differ only by the mask branch.
VARIANTS = (("keypoint-only", False), ("keypoint & mask", True))
METRICS = ("kp_AP", "kp_AP50", "kp_AP75", "box_AP", "box_AP50", "box_AP75", "mask_AP", "mask_AP50", "mask_AP75")
# /work/shared/PAPER_TABLES.md: Table 4 (COCO test-dev, R50-FPN) and Table 5 (minival, person category).
PAPER = {
    "keypoint-only": {"table4": {"kp_AP": 62.7, "kp_AP50": 87.0, "kp_AP75": 68.4},
                      "table5": {"box_AP": 50.7, "kp_AP": 64.2}},
    "keypoint & mask": {"table4": {"kp_AP": 63.1, "kp_AP50": 87.3, "kp_AP75": 68.7},
                        "table5": {"box_AP": 52.0, "mask_AP": 45.1, "kp_AP": 64.7}},
}
PAPER_SETTING = ("Table 4: COCO test-dev, ResNet-50-FPN, AP_kp / AP50 / AP75; Table 5: COCO minival, person "
                 "category, ResNet-50-FPN, box AP / mask AP / AP_kp")


def model_config(mask_on: bool):
    """The ``teaching_keypoints`` preset with the mask branch on or off."""
    from mrcnn_np.detection.config import preset, with_fields  # noqa: PLC0415

    return with_fields(preset("teaching_keypoints"), mask_on=bool(mask_on))


def train_config(recipe: dict, seed: int, out_dir):
    """The ``TrainConfig`` of one run: the recipe's training fields, this seed and folder."""
    from mrcnn_np.engine.train import TrainConfig  # noqa: PLC0415

    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in recipe.items() if k not in _NOT_TRAIN}
    return TrainConfig(**fields, seed=int(seed), out_dir=str(out_dir), eval_every=0, eval_images=0,
                       checkpoint_every=100, keep_checkpoints=1, log_every=25)


def _slug(label: str) -> str:
    return "keypoint_and_mask" if "mask" in label else "keypoint_only"


def _pct(stats: dict, names=("AP", "AP50", "AP75")) -> dict:
    return {k: (100.0 * stats[k] if stats[k] >= 0 else None) for k in names}


# ---------------------------------------------------------------- one run (runs in a worker)
def run_variant(job: dict) -> dict:
    """Train and evaluate one (variant, seed); the job and the result are plain JSON.

    job: variant (label), mask_on, seed, data_dir, run_dir, recipe. An earlier run of ours
    in ``run_dir`` (it has a job.json) is replaced; a foreign non-empty folder is an error.
    The training log goes to ``run_dir/train.log``. A run that diverges returns
    ``metrics: None`` and the error instead of stopping the other runs.
    """
    from mrcnn_np.engine.data import shapes_split  # noqa: PLC0415
    from mrcnn_np.engine.evaluate import evaluate_coco  # noqa: PLC0415
    from mrcnn_np.engine.evaluate_keypoints import evaluate_keypoints  # noqa: PLC0415
    from mrcnn_np.engine.train import predict_dataset, read_losses, train  # noqa: PLC0415

    t0 = time.perf_counter()
    run_dir = Path(job["run_dir"])
    with contextlib.redirect_stdout(io.StringIO()):          # pycocotools talks
        train_set, val_set = shapes_split(job["data_dir"], "train"), shapes_split(job["data_dir"], "val")
    model_cfg = model_config(job["mask_on"])
    if len(train_set.class_names) != model_cfg.num_classes or not train_set.keypoint_names:
        raise ValueError(f"{job['data_dir']} is not a stick-figure keypoint set (classes {train_set.class_names}, "
                         f"keypoints {train_set.keypoint_names})")
    cfg = train_config(job["recipe"], job["seed"], run_dir)
    if run_dir.exists():
        if not (run_dir / "job.json").is_file() and any(run_dir.iterdir()):
            raise ValueError(f"{run_dir} exists and is not a keypoints run folder; choose another --runs folder")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "job.json").write_text(json.dumps(job, indent=1, default=list))
    out = {"variant": job["variant"], "mask_on": bool(job["mask_on"]), "seed": int(job["seed"]),
           "run_dir": str(run_dir), "metrics": None, "error": None}
    with open(run_dir / "train.log", "w") as logf:
        def log(line):
            logf.write(line + "\n")
            logf.flush()
        try:
            res = train(model_cfg, cfg, train_set, None, progress=False, log=log, threads=1)
        except FloatingPointError as e:                      # TrainingDiverged: a result, not a crash
            out.update(error=str(e), seconds=round(time.perf_counter() - t0, 1))
            return out
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    preds = predict_dataset(res.model, val_set)
    with contextlib.redirect_stdout(io.StringIO()):
        boxes_masks = evaluate_coco(preds, val_set, print_table=False)
        kps = evaluate_keypoints(preds, val_set, print_table=False)
    pct = {"kp": _pct(kps["keypoints"]["stats"]), "box": _pct(boxes_masks["bbox"]["stats"]),
           "mask": _pct(boxes_masks["segm"]["stats"]) if "segm" in boxes_masks else dict.fromkeys(("AP", "AP50",
                                                                                                     "AP75"))}
    out["metrics"] = {f"{kind}_{k}": v for kind, vals in pct.items() for k, v in vals.items()}
    out["keypoints"] = _pct(kps["keypoints"]["stats"], tuple(kps["keypoints"]["stats"]))
    curves = read_losses(run_dir)
    w = max(1, len(curves["total"]) // 10)
    out["losses"] = {name: {"first": float(curves[name][:w].mean()), "last": float(curves[name][-w:].mean())}
                     for name in ("loss_keypoint", "loss_mask", "loss_cls", "total")}
    out["sec_per_iter"] = float(curves["sec_per_iter"].mean())
    out["detections_per_image"] = sum(len(p["scores"]) for p in preds) / max(len(preds), 1)
    out.update(train_seconds=round(train_s, 1), eval_seconds=round(time.perf_counter() - t1, 1),
               seconds=round(time.perf_counter() - t0, 1))
    (run_dir / "result.json").write_text(json.dumps(out, indent=1))
    return out


# ---------------------------------------------------------------- running both variants
def command_line(seeds, iterations=None, workers=2, quick=False, out="results", data="data/keypoints",
                 runs="runs") -> str:
    parts = ["python -m mrcnn_np keypoints", f"--seeds {seeds}"]
    parts += [f"--iters {iterations}"] if iterations is not None else []
    parts += [f"--workers {workers}"] + ["--quick"] * quick + [f"--out {out}", f"--data {data}", f"--runs {runs}"]
    return " ".join(str(p) for p in parts)


def run_keypoints(seeds: int = 1, iterations: int | None = None, workers: int = 2, quick: bool = False,
                  out="results", data="data/keypoints", runs="runs", progress: bool = True, log=print) -> dict:
    """Data -> both variants x ``seeds`` trainings -> AP_kp, box AP, mask AP -> .md, .json, figure.

    seeds: how many (0, 1, ..., seeds - 1). iterations: override the recipe's. workers:
    processes at once (1: in this process, one run after the other). quick: ``QUICK_RECIPE``,
    the data in ``<data>_quick``, runs in ``<runs>/keypoints_quick``, files ``*_quick.*``.
    Returns the report (also written as JSON), with ``files`` listing what was written.
    """
    from mrcnn_np.datasets.keypoints import ensure_keypoints, format_keypoint_statistics  # noqa: PLC0415

    if int(seeds) < 1 or int(workers) < 1:
        raise ValueError(f"seeds and workers must be >= 1, got {seeds} and {workers}")
    if iterations is not None and int(iterations) < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    seeds, workers = int(seeds), int(workers)
    recipe = dict(QUICK_RECIPE if quick else RECIPE)
    if iterations is not None:
        recipe["iterations"] = int(iterations)
    suffix = "_quick" if quick else ""
    command = command_line(seeds, iterations, workers, quick, out, data, runs)
    t0 = time.perf_counter()
    data_dir = Path(f"{data}{suffix}").resolve()
    reused, stats = ensure_keypoints(data_dir, recipe["train_images"], recipe["val_images"], IMAGE_SIZE, DATA_SEED,
                                     progress=progress)
    data_seconds = time.perf_counter() - t0
    log(f"data {data_dir}: {'reused' if reused else 'generated'} ({data_seconds:.0f} s)")
    log(format_keypoint_statistics(stats))
    runs_dir = (Path(runs) / f"keypoints{suffix}").resolve()
    jobs = [dict(variant=label, mask_on=mask_on, seed=s, data_dir=str(data_dir), recipe=recipe,
                 run_dir=str(runs_dir / _slug(label) / f"seed{s}"))
            for s in range(seeds) for label, mask_on in VARIANTS]
    log(f"{len(jobs)} trainings of {recipe['iterations']} iterations x {recipe['batch_size']} images, "
        + ("one after the other in this process" if workers == 1 else
           f"{min(workers, len(jobs))} at a time in spawned processes (one thread each)")
        + f"; logs in {runs_dir}/*/seed*/train.log")
    results = [None] * len(jobs)
    for i, res in map_jobs(run_variant, jobs, workers):
        results[i] = res
        m = res["metrics"]
        log(f"  {res['variant']}, seed {res['seed']}: " + (
            f"AP_kp {_num(m['kp_AP'])}, box AP {_num(m['box_AP'])}, mask AP {_num(m['mask_AP'])} "
            f"({res['seconds'] / 60:.1f} min, {res['sec_per_iter']:.2f} s/iteration)" if m else
            f"diverged: {res['error']}"))
    train_wall = time.perf_counter() - t0 - data_seconds

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"keypoints_table4{suffix}"
    figure = out / f"keypoints_predictions{suffix}.png"
    commit, dirty = git_commit()
    report = {
        "title": "Keypoint-only vs keypoint & mask", "paper_table": "Table 4 (and Table 5)",
        "paper_setting": PAPER_SETTING, "command": command, "seeds": list(range(seeds)), "git_commit": commit,
        "git_dirty": dirty, "quick": quick, "finished": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "executor": "this process, one run after the other" if workers == 1 else
        f"local process pool (spawn), {min(workers, len(jobs))} workers, one thread each",
        "recipe": recipe, "preset": "teaching_keypoints",
        "data": {"dir": str(data_dir), "train_images": recipe["train_images"], "val_images": recipe["val_images"],
                 "image_size": IMAGE_SIZE, "seed": DATA_SEED, "stats": stats},
        "variants": [], "runs": results,
    }
    for label, mask_on in VARIANTS:
        mine = [r for r in results if r["variant"] == label]
        ok = [r["metrics"] for r in mine if r["metrics"]]
        report["variants"].append({
            "label": label, "mask_on": mask_on, "paper": PAPER[label], "failed_runs": len(mine) - len(ok),
            "ours": {m: mean_std([r.get(m) for r in ok]) for m in METRICS},
            "train_seconds": mean_std([r.get("train_seconds") for r in mine])})
    report["files"] = [str(stem.with_suffix(".md")), str(stem.with_suffix(".json")), str(figure)]
    t_fig = time.perf_counter()
    report["figure_runs"] = save_figure(results, data_dir, figure)
    report["seconds"] = {"data": round(data_seconds, 1), "trainings": round(train_wall, 1),
                         "figure": round(time.perf_counter() - t_fig, 1)}
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1, default=list) + "\n")
    stem.with_suffix(".md").write_text(format_markdown(report))
    log(results_table(report))
    log(f"wrote {', '.join(report['files'])} in {report['wall_seconds'] / 60:.1f} min")
    return report


# ---------------------------------------------------------------- the figure
def save_figure(results, data_dir, path, n: int = SHOW) -> list:
    """Ground truth (top row) and the seed-0 models' predictions (one row per variant) on the
    first ``n`` validation images; returns the run folders whose weights were drawn."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")       # a file, no window
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from mrcnn_np.engine.checkpoint import load_weights  # noqa: PLC0415
    from mrcnn_np.engine.data import shapes_split, to_model_image  # noqa: PLC0415
    from mrcnn_np.viz.keypoints import draw_keypoints  # noqa: PLC0415

    with contextlib.redirect_stdout(io.StringIO()):
        val_set = shapes_split(data_dir, "val")
    n = min(n, len(val_set))
    samples = [val_set[i] for i in range(n)]
    rows = [("ground truth", None)]
    for label, _ in VARIANTS:   # the first finished seed of each variant
        run = next((r for r in sorted(results, key=lambda r: r["seed"]) if r["variant"] == label and r["metrics"]),
                   None)
        rows.append((label, run))
    fig, axes = plt.subplots(len(rows), n, figsize=(2.7 * n, 2.9 * len(rows)), squeeze=False)
    drawn = []
    for r, (label, run) in enumerate(rows):
        if r == 0:
            for j, s in enumerate(samples):
                draw_keypoints(s["image"], s["keypoints"], val_set.skeleton, s["boxes"], s["masks"], ax=axes[0, j],
                               title=f"image {s['image_id']}: ground truth ({len(s['boxes'])})")
            continue
        if run is None:
            for j in range(n):
                axes[r, j].set_axis_off()
            axes[r, 0].set_title(f"{label}: no finished run", fontsize=9)
            continue
        model, _, _ = load_weights(run["run_dir"])
        drawn.append(run["run_dir"])
        dets = model.predict([to_model_image(s["image"]) for s in samples])
        for j, (s, d) in enumerate(zip(samples, dets)):
            keep = d["scores"] >= SCORE_SHOWN
            draw_keypoints(s["image"], d["keypoints"][keep], val_set.skeleton, d["boxes"][keep],
                           d["masks"][keep] if "masks" in d else None, d["scores"][keep], ax=axes[r, j],
                           visibility=False, title=f"{label}, seed {run['seed']} ({int(keep.sum())})")
    fig.suptitle(f"Stick figures: ground truth (dots visible, rings hidden)\nand predictions (score >= {SCORE_SHOWN})",
                 fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return drawn


# ---------------------------------------------------------------- writing
def results_table(report: dict) -> str:
    """Markdown: ours (mean ± std over seeds) beside the paper's Table 4 and Table 5 numbers."""
    head = ("| variant | AP_kp | AP50_kp | AP75_kp | box AP | mask AP | paper T4 AP_kp | AP50 | AP75 "
            "| paper T5 box AP | mask AP | AP_kp |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for v in report["variants"]:
        ours, t4, t5 = v["ours"], v["paper"]["table4"], v["paper"]["table5"]
        note = f" ({v['failed_runs']} diverged)" if v["failed_runs"] else ""
        rows.append("| " + " | ".join([
            v["label"] + note, *(_pm(ours[m]) for m in ("kp_AP", "kp_AP50", "kp_AP75", "box_AP", "mask_AP")),
            *(_num(t4.get(m)) for m in ("kp_AP", "kp_AP50", "kp_AP75")),
            *(_num(t5.get(m)) for m in ("box_AP", "mask_AP", "kp_AP"))]) + " |")
    a, b = (v["ours"] for v in report["variants"])
    deltas = [f"{name} {b[m]['mean'] - a[m]['mean']:+.1f}" for name, m in (("AP_kp", "kp_AP"), ("box AP", "box_AP"))
              if a[m]["mean"] is not None and b[m]["mean"] is not None]
    if deltas:
        rows.append("")
        rows.append("Keypoint & mask minus keypoint-only, ours: " + ", ".join(deltas)
                    + "; paper: AP_kp +0.4 (Table 4), +0.5 (Table 5), box AP +1.3 (Table 5).")
    return "\n".join(rows)


def format_markdown(report: dict) -> str:
    from mrcnn_np.datasets.keypoints import format_keypoint_statistics  # noqa: PLC0415

    r = report
    commit = commit_label(r)
    d = r["data"]
    lines = [
        f"# Keypoints: {r['title']} — paper {r['paper_table']}" + (" (quick smoke run, not a result)" if r["quick"]
                                                                   else ""),
        "",
        f"`{r['preset']}` preset (a small GroupNorm ResNet-FPN, trained from scratch) on the synthetic stick "
        "figures (13 keypoints, COCO visibility flags); ours: COCO AP x 100 on all validation images "
        f"(AP_kp with OKS, per-keypoint sigmas from `engine/evaluate_keypoints.py`), mean ± sample std over "
        f"{len(r['seeds'])} seed(s). Paper: {r['paper_setting']}. The data, the model and the training length "
        "differ from the paper's by orders of magnitude: compare the difference between the two rows, not "
        "absolute values (and with one seed, a point or two is within seed-to-seed noise).",
        "",
        results_table(r),
        "",
        f"![predictions]({Path(r['files'][2]).name})",
        "",
        "## Setting",
        "",
        f"- data: `{d['dir']}`, {d['train_images']} training and {d['val_images']} validation images of "
        f"{d['image_size']} px, seed {d['seed']} (`ensure_keypoints`)",
        f"- recipe: `{json.dumps(r['recipe'], default=list)}`",
        "- variants: `with_fields(preset('teaching_keypoints'), mask_on=False)` (keypoint-only) and `mask_on=True` "
        "(keypoint & mask)",
        "",
        "```",
        format_keypoint_statistics(d["stats"]),
        "```",
        "",
        "## Reproduce",
        "",
        f"- command: `{r['command']}`",
        f"- seeds: {r['seeds']}; git commit: {commit}",
        f"- wall time: {r['wall_seconds'] / 60:.1f} min (data {r['seconds']['data']:.0f} s, trainings and "
        f"evaluation {r['seconds']['trainings'] / 60:.1f} min), {r['executor']}, finished {r['finished']}",
        "",
        "## Per run",
        "",
        "| variant | seed | AP_kp | AP50 | AP75 | box AP | mask AP | loss_keypoint first → last 10 % | s/iteration "
        "| train s | eval s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        m = run.get("metrics")
        if not m:
            lines.append(f"| {run['variant']} | {run['seed']} | diverged |" + " – |" * 8)
            continue
        lk = run["losses"]["loss_keypoint"]
        lines.append(f"| {run['variant']} | {run['seed']} | " + " | ".join(
            _num(m[k]) for k in ("kp_AP", "kp_AP50", "kp_AP75", "box_AP", "mask_AP"))
            + f" | {lk['first']:.2f} → {lk['last']:.2f} | {run['sec_per_iter']:.2f} | {run['train_seconds']:.0f} "
            f"| {run['eval_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


__all__ = ["METRICS", "PAPER", "QUICK_RECIPE", "RECIPE", "VARIANTS", "command_line", "format_markdown",
           "model_config", "results_table", "run_keypoints", "run_variant", "save_figure", "train_config"]

