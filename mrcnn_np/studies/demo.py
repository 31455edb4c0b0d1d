"""``python -m mrcnn_np demo`` (``make demo``): the whole story in one command, in minutes.

1. make (or reuse) the demo's synthetic shapes set (``DEMO_SHAPES``) and print its statistics;
2. train the ``teaching`` preset with ``DEMO_RECIPE`` (Mask R-CNN §3.1's SGD recipe, scaled
   down), its backbone body starting from the shipped pretrained one (``mrcnn_np/weights/``, as
   the paper starts from ImageNet; ``--backbone-init scratch`` for random weights), every batch
   split over ``DEMO_WORKERS`` processes; running the demo again reuses the finished run (or
   continues an unfinished one) when the recipe is the same;
3. evaluate on the validation set with COCO AP (boxes and masks; pycocotools) and print the
   table, beside the classical non-learned baseline of ``engine.baseline`` on the same images;
4. save ``results/demo_predictions.png`` (ground truth above, predictions below) and
   ``results/demo_metrics.json`` / ``.md`` (every number printed, the recipe and the wall times).

A study on the runner (``runner.py``) with one variant and one seed; the same flags as every
study (``--quick``: a few iterations on a few images, files ``*_quick.*``).
"""

from __future__ import annotations

import json
from pathlib import Path

from mrcnn_np.datasets.shapes import ShapesConfig
from mrcnn_np.studies.report import commit_label
from mrcnn_np.studies.runner import Study, Variant

# The demo's data: upright shapes 16-64 px across, 2-8 per image. With random rotations
# (the default set) the small model spends its minutes learning rotation-invariant shape
# classes: scored class-agnostically it finds and segments the objects well (segm AP 0.47
# after 1,200 iterations) while the class-aware AP is 0.18. Upright shapes keep the lesson
# (detect, classify, segment, with occlusion) and let it be learned in minutes.
DEMO_SHAPES = dict(min_size=16, min_objects=2, max_objects=8, rotate=False)
IMAGE_SIZE = 128
# The demo's training recipe (TrainConfig fields, then the data set sizes). Sized so that data,
# training and evaluation fit in about 10 minutes on 2 CPU cores (README: "Training the teaching model").
DEMO_RECIPE = dict(iterations=2700, batch_size=4, lr=0.04, warmup_iters=100, checkpoint_every=250)
RECIPE = dict(DEMO_RECIPE, train_images=2000, val_images=200, seeds=1)
QUICK_RECIPE = dict(RECIPE, iterations=2, train_images=4, val_images=3)
# Data-parallel processes per step (engine/parallel.py): the batch of 4 is split 2 + 2 over
# the machine's two cores.
DEMO_WORKERS = 2
DEMO_SHOW = 6      # validation images in the figure
SCORE_SHOWN = 0.5  # detections drawn in the figure: score at least this
METRICS = ("mask_AP", "mask_AP50", "mask_AP75", "box_AP", "box_AP50", "box_AP75")


def _model_config_for(study, variant, train_set):
    from mrcnn_np.detection.config import preset, with_fields  # noqa: PLC0415

    return with_fields(preset("teaching"), num_classes=len(train_set.class_names))


def _score(study, job, res, val_set) -> dict:
    """COCO AP (fractions, with per-class AP) on every validation image, and the percentages the runner averages."""
    from mrcnn_np.engine import evaluate_coco, predict_dataset  # noqa: PLC0415

    coco = evaluate_coco(predict_dataset(res.model, val_set), val_set, print_table=False)
    metrics = {f"{pre}_{k}": 100.0 * coco[kind]["stats"][k] for pre, kind in (("mask", "segm"), ("box", "bbox"))
               for k in ("AP", "AP50", "AP75")}
    return {"metrics": metrics, "coco": coco, "iterations_done": res.iteration}


def _heads(result: dict) -> dict:
    return {t: {k: result[t]["stats"][k] for k in ("AP", "AP50", "AP75")} for t in result}


def _finish(study, report, out: Path, suffix: str, log) -> None:
    """The COCO table, the classical baseline on the same images, the figure; the demo's numbers in the report."""
    import time  # noqa: PLC0415

    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # a file, no window
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from mrcnn_np.engine import (TrainingDiverged, evaluate_coco, format_table, load_weights,  # noqa: PLC0415
                                 predict_dataset, run_baseline)
    from mrcnn_np.engine.data import shapes_split  # noqa: PLC0415
    from mrcnn_np.studies.runner import quiet  # noqa: PLC0415
    from mrcnn_np.viz import show_samples  # noqa: PLC0415

    run = next((r for r in report["runs"] if r["metrics"]), None)
    if run is None:   # the command line's "error:" line, exit code 1, as a diverged `train`
        raise TrainingDiverged("the demo's training diverged: " + "; ".join(r["error"] for r in report["runs"]))
    t0 = time.perf_counter()
    with quiet():
        val_set = shapes_split(report["data"]["dir"], "val")
        baseline = evaluate_coco(run_baseline(val_set), val_set, print_table=False)
    log(f"\nMask R-CNN ({report['runs'][0]['variant']}, seed {run['seed']}) on the {len(val_set)} val images, "
        "COCO evaluation:")
    log(format_table(run["coco"]))
    n = min(DEMO_SHOW, len(val_set))
    model, _, _ = load_weights(run["run_dir"])
    gt = [dict(val_set[i], scores=None) for i in range(n)]
    shown = []
    for g, det in zip(gt, predict_dataset(model, val_set, range(n))):
        keep = det["scores"] >= SCORE_SHOWN
        shown.append({"boxes": det["boxes"][keep], "labels": det["labels"][keep], "masks": det["masks"][keep],
                      "scores": det["scores"][keep], "image": g["image"]})
    fig = show_samples(gt + shown, n=2 * n, cols=n, class_names=val_set.class_names,
                       titles=[f"ground truth {g['image_id']}" for g in gt]
                       + [f"prediction (score >= {SCORE_SHOWN})" for _ in shown], size=2.6)
    out.mkdir(parents=True, exist_ok=True)
    figure = out / f"demo_predictions{suffix}.png"
    fig.savefig(figure, dpi=90)
    plt.close(fig)
    report["files"].append(str(figure))
    report.update(mask_rcnn={t: r["stats"] for t, r in run["coco"].items()},
                  per_class={t: r["per_class"] for t, r in run["coco"].items()},
                  baseline={t: r["stats"] for t, r in baseline.items()}, iterations_done=run["iterations_done"],
                  run_folder=run["run_dir"], step_workers=DEMO_WORKERS)
    report["seconds"]["baseline_and_figure"] = round(time.perf_counter() - t0, 1)
    log("\n" + summary_lines(report))


def summary_lines(report: dict) -> str:
    """Ours and the baseline's box and mask AP, AP50 (fractions, as the COCO table)."""
    return "\n".join(f"{name:<30} box AP {r['bbox']['AP']:.3f} AP50 {r['bbox']['AP50']:.3f}   "
                     f"mask AP {r['segm']['AP']:.3f} AP50 {r['segm']['AP50']:.3f}"
                     for name, r in (("Mask R-CNN, teaching preset", report["mask_rcnn"]),
                                     ("classical baseline", report["baseline"])))


def format_markdown(report: dict) -> str:
    """``demo_metrics.md``: the two lines of numbers, the setting, how to reproduce."""
    r, d = report, report["data"]
    return "\n".join([
        "# Demo: the teaching preset on the shapes set" + (" (quick smoke run, not a result)" if r["quick"] else ""),
        "",
        "COCO AP (fractions) on the validation images; the classical baseline is `engine/baseline.py`.",
        "",
        "```",
        summary_lines(r),
        "```",
        "",
        f"- data: `{d['dir']}`, {d['train_images']} training and {d['val_images']} validation images, seed {d['seed']}",
        f"- recipe: `{json.dumps(r['recipe'], default=list)}`, {r['step_workers']} processes per step",
        f"- backbone body: {r.get('backbone_init', 'scratch')}"
        + (f", frozen up to stage {r['freeze_at']}" if r.get("freeze_at") else ""),
        f"- run folder: `{r['run_folder']}` ({r['iterations_done']} iterations)",
        f"- command: `{r['command']}`; git commit: {commit_label(r)}",
        f"- wall time: {r['wall_seconds'] / 60:.1f} min (data {r['seconds']['data']:.0f} s, training and "
        f"evaluation {r['seconds']['trainings']:.0f} s), finished {r['finished']}",
    ]) + "\n"


STUDY = Study(name="demo", title="Demo: the teaching preset", command="demo", variants=(Variant("teaching"),),
              recipe=RECIPE, quick_recipe=QUICK_RECIPE, metrics=METRICS, model_config=_model_config_for,
              evaluate=_score, format_markdown=format_markdown, finish=_finish,
              summary=lambda r: f"mask AP {r['metrics']['mask_AP'] / 100:.3f}, box AP {r['metrics']['box_AP'] / 100:.3f}",
              data_folder="shapes_demo", runs_folder="demo", stem="demo_metrics", dataset="shapes",
              data=ShapesConfig(image_size=IMAGE_SIZE, **DEMO_SHAPES),
              train_kwargs={"workers": DEMO_WORKERS, "progress": None}, resume_default=True, show_training=True,
              backbone_init="pretrained")

__all__ = ["DEMO_RECIPE", "DEMO_SHAPES", "DEMO_WORKERS", "QUICK_RECIPE", "RECIPE", "STUDY", "format_markdown",
           "summary_lines"]
