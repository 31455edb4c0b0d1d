"""``python -m mrcnn_np demo`` (``make demo``): the whole story in one command, in minutes.

1. make (or reuse) the demo's synthetic shapes set (``DEMO_SHAPES``) and print its statistics;
2. train the ``teaching`` preset from scratch with ``DEMO_RECIPE`` (Mask R-CNN §3.1's SGD
   recipe, scaled down; ``engine.train``), resuming or reusing the run folder when the demo
   is run again with the same recipe;
3. evaluate on the validation set with COCO AP (boxes and masks; pycocotools) and print the
   table, beside the classical non-learned baseline of ``engine.baseline`` on the same images;
4. save ``results/demo_predictions.png`` (ground truth above, predictions below) and
   ``results/demo_metrics.json`` (every number printed, the recipe and the wall times).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

# The demo's data: upright shapes 16-64 px across, 2-8 per image. With random rotations
# (the default set) the small model spends its minutes learning rotation-invariant shape
# classes: scored class-agnostically it finds and segments the objects well (segm AP 0.47
# after 1,200 iterations) while the class-aware AP is 0.18. Upright shapes keep the lesson
# (detect, classify, segment, with occlusion) and let it be learned in minutes.
DEMO_SHAPES = dict(min_size=16, min_objects=2, max_objects=8, rotate=False)
# The demo's training recipe (TrainConfig fields). Sized so that data, training and
# evaluation fit in about 10 minutes on 2 CPU cores (README: "Training the teaching model").
DEMO_RECIPE = dict(iterations=2700, batch_size=4, lr=0.04, warmup_iters=100, checkpoint_every=250)
# Data-parallel processes per step (engine/parallel.py): the batch of 4 is split 2 + 2 over
# the machine's two cores.
DEMO_WORKERS = 2
DEMO_SHOW = 6      # validation images in the figure
SCORE_SHOWN = 0.5  # detections drawn in the figure: score at least this


def demo_paths(runs_dir, model_cfg, cfg, workers: int = 1) -> Path:
    """The run folder of a recipe: runs/demo_<digest>[_w<workers>]; a changed recipe gets a new folder."""
    from mrcnn_np.engine.train import run_digest  # noqa: PLC0415

    return Path(runs_dir) / f"demo_{run_digest(model_cfg, cfg)}{f'_w{workers}' if workers > 1 else ''}"


def run_demo(data="data/shapes_demo", n_train: int = 2000, n_val: int = 200, size: int = 128, seed: int = 0,
             results_dir="results", runs_dir="runs", iterations: int | None = None, threads: int = 1,
             workers: int | None = None, progress=None) -> dict:
    """Data -> training -> COCO evaluation -> figure. Returns the metrics dict also written to
    ``results_dir/demo_metrics.json``. ``iterations`` overrides the recipe's (tests use a few);
    ``workers``: data-parallel processes (default ``DEMO_WORKERS``)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # a file, no window
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from mrcnn_np.datasets.shapes import ShapesConfig, ensure_shapes, format_statistics  # noqa: PLC0415
    from mrcnn_np.detection.config import preset, with_fields  # noqa: PLC0415
    from mrcnn_np.engine.baseline import run_baseline  # noqa: PLC0415
    from mrcnn_np.engine.data import shapes_split  # noqa: PLC0415
    from mrcnn_np.engine.evaluate import evaluate_coco  # noqa: PLC0415
    from mrcnn_np.engine.predict import keep_confident  # noqa: PLC0415
    from mrcnn_np.engine.train import TrainConfig, predict_dataset, train  # noqa: PLC0415
    from mrcnn_np.viz import show_samples  # noqa: PLC0415

    t_start = time.perf_counter()
    times = {}
    reused, stats = ensure_shapes(data, n_train, n_val, size, seed, ShapesConfig(image_size=size, **DEMO_SHAPES))
    times["data_s"] = time.perf_counter() - t_start
    print(f"data set {data} ({', '.join(f'{k}={v}' for k, v in DEMO_SHAPES.items())}): "
          f"{'reused (same parameters)' if reused else 'generated'} in {times['data_s']:.1f} s")
    print(format_statistics(stats))
    train_set, val_set = shapes_split(data, "train"), shapes_split(data, "val")

    recipe = dict(DEMO_RECIPE, seed=seed)
    if iterations is not None:
        recipe["iterations"] = iterations
    model_cfg = with_fields(preset("teaching"), num_classes=len(train_set.class_names))
    cfg = TrainConfig(**recipe)
    workers = DEMO_WORKERS if workers is None else int(workers)
    cfg = TrainConfig(**dict(recipe, out_dir=str(demo_paths(runs_dir, model_cfg, cfg, workers))))
    print(f"\ntraining the teaching preset ({_count_parameters(model_cfg):,} parameters) from scratch: "
          f"{cfg.iterations} iterations of {cfg.batch_size} images, lr {cfg.lr}, {workers} process(es), "
          f"run folder {cfg.out_dir}")
    t0 = time.perf_counter()
    res = train(model_cfg, cfg, train_set, None, resume=True, progress=progress, threads=threads, workers=workers)
    times["train_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    preds = predict_dataset(res.model, val_set)
    times["predict_s"] = time.perf_counter() - t0
    print(f"\nMask R-CNN (teaching) on the {len(val_set)} val images, predicted in {times['predict_s']:.1f} s; "
          f"COCO evaluation:")
    ours = evaluate_coco(preds, val_set)
    t0 = time.perf_counter()
    baseline = evaluate_coco(run_baseline(val_set), val_set, print_table=False)
    times["baseline_s"] = time.perf_counter() - t0

    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    n = min(DEMO_SHOW, len(val_set))
    gt = [dict(val_set[i], scores=None) for i in range(n)]
    shown = [dict(keep_confident(preds[i], SCORE_SHOWN), image=gt[i]["image"]) for i in range(n)]
    fig = show_samples(gt + shown, n=2 * n, cols=n, class_names=val_set.class_names,
                       titles=[f"ground truth {g['image_id']}" for g in gt]
                       + [f"prediction (score >= {SCORE_SHOWN})" for _ in shown], size=2.6)
    fig.savefig(results_dir / "demo_predictions.png", dpi=90)
    plt.close(fig)
    times["total_s"] = time.perf_counter() - t_start

    def head(r):
        return {t: {k: r[t]["stats"][k] for k in ("AP", "AP50", "AP75")} for t in r}

    print("\n" + "\n".join(f"{name:<30} box AP {r['bbox']['AP']:.3f} AP50 {r['bbox']['AP50']:.3f}   "
                           f"mask AP {r['segm']['AP']:.3f} AP50 {r['segm']['AP50']:.3f}"
                           for name, r in (("Mask R-CNN, teaching preset", head(ours)),
                                           ("classical baseline", head(baseline)))))
    metrics = {"mask_rcnn": {t: r["stats"] for t, r in ours.items()},
               "per_class": {t: r["per_class"] for t, r in ours.items()},
               "baseline": {t: r["stats"] for t, r in baseline.items()},
               "recipe": recipe, "run_folder": str(cfg.out_dir), "iterations_done": res.iteration,
               "threads": threads, "workers": workers, "seconds": {k: round(v, 1) for k, v in times.items()}}
    (results_dir / "demo_metrics.json").write_text(json.dumps(metrics, indent=1))
    print(f"\nsaved {results_dir / 'demo_predictions.png'} and {results_dir / 'demo_metrics.json'}; "
          f"total {times['total_s'] / 60:.1f} min (data {times['data_s']:.0f} s, training {times['train_s']:.0f} s, "
          f"evaluation {times['predict_s'] + times['baseline_s']:.0f} s)")
    return metrics


def _count_parameters(model_cfg) -> int:
    from mrcnn_np.detection.mask_rcnn import MaskRCNN  # noqa: PLC0415

    return MaskRCNN(model_cfg, seed=0).num_parameters()
