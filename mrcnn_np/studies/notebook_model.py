"""The model that notebooks 10 (training) and 11 (evaluation) share, defined once.

Full mode: the demo's upright shapes set (``data/shapes_demo``, the same folder and parameters as
``make demo``), the ``teaching`` preset starting from the shipped pretrained body (as the paper
starts from ImageNet; ``results/pretrain_effect_demo.md`` measures what that buys), every batch
of 4 split over both cores (``WORKERS``), and ``NOTEBOOK_ITERATIONS`` steps of the demo's recipe:
a few minutes on 2 cores. The run folder's name holds the recipe's digest, so notebook 11 finds
(or finishes) notebook 10's run, and a changed recipe never resumes an old one.

Quick mode (``MRCNN_NP_QUICK=1``, as in ``make test``): 12 iterations on a tiny set in a scratch
folder; the mechanics are the same, the numbers mean nothing.

    notebook_run(quick, scratch) -> NotebookRun(data_dir, train_set, val_set, model_cfg, cfg, workers)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mrcnn_np.datasets.shapes import ShapesConfig
from mrcnn_np.studies.demo import DEMO_RECIPE, DEMO_SHAPES, IMAGE_SIZE

NOTEBOOK_ITERATIONS = 1000
WORKERS = 2


@dataclass(frozen=True)
class NotebookRun:
    data_dir: Path
    train_set: object
    val_set: object
    model_cfg: object
    cfg: object          # engine.TrainConfig, out_dir set
    workers: int


def notebook_run(quick: bool, scratch: Path) -> NotebookRun:
    """Make (or reuse) the data set and return the recipe of notebook 10's run (see the module docstring)."""
    from mrcnn_np import paths  # noqa: PLC0415
    from mrcnn_np.datasets.shapes import ensure_shapes, generate_shapes  # noqa: PLC0415
    from mrcnn_np.detection.config import preset, with_fields  # noqa: PLC0415
    from mrcnn_np.engine.data import shapes_split  # noqa: PLC0415
    from mrcnn_np.engine.train import TrainConfig, run_digest  # noqa: PLC0415
    from mrcnn_np.studies.runner import quiet  # noqa: PLC0415

    data = ShapesConfig(image_size=IMAGE_SIZE, **DEMO_SHAPES)
    if quick:   # a tiny set and a short run: the numbers are not meaningful, the mechanics are
        data_dir = Path(scratch) / "shapes"
        generate_shapes(data_dir, 16, 8, IMAGE_SIZE, 0, data, progress=False)
        cfg = TrainConfig(iterations=12, batch_size=2, lr=0.02, warmup_iters=4, milestones=(0.75,),
                          checkpoint_every=6, eval_every=0, eval_images=8, log_every=3,
                          out_dir=str(Path(scratch) / "run"))
        workers = 1
    else:       # the demo's data (generated once, shared with make demo) and a few minutes of training
        data_dir = paths.data_dir() / "shapes_demo"
        ensure_shapes(data_dir, 2000, 200, IMAGE_SIZE, 0, data, progress=False)
        n = NOTEBOOK_ITERATIONS
        cfg = TrainConfig(iterations=n, batch_size=DEMO_RECIPE["batch_size"], lr=DEMO_RECIPE["lr"],
                          warmup_iters=DEMO_RECIPE["warmup_iters"], milestones=(0.75, 0.9), checkpoint_every=100,
                          eval_every=n // 4, eval_images=50, log_every=100)
        workers = WORKERS
    with quiet():
        train_set, val_set = shapes_split(data_dir, "train"), shapes_split(data_dir, "val")
    model_cfg = with_fields(preset("teaching"), num_classes=len(train_set.class_names), backbone_init="pretrained")
    if not quick:
        cfg = replace(cfg, out_dir=str(paths.runs_dir() / f"notebook_teaching_{run_digest(model_cfg, cfg)}"))
    return NotebookRun(data_dir, train_set, val_set, model_cfg, cfg, workers)


__all__ = ["NOTEBOOK_ITERATIONS", "WORKERS", "NotebookRun", "notebook_run"]
