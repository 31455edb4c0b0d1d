"""Why the RoI table (Table 2c/2d) trains on one class: what the one-level models learn in its budget.

Trains RoI-table models (C4 at stride 16, C5 at stride 32, and the FPN default for scale)
with the table's recipe (batch 4, lr 0.04, ``--iters`` iterations, seed 0), on a shapes set
of 24-64 px objects with the classes given, two runs at a time. For each run it prints the
mask AP, AP75 and box AP at a third, two thirds and the end of training, then a diagnosis on
40 validation images: the RPN's recall at IoU 0.5 and 0.7, and the share of objects that a
detection (score > 0.05) finds at IoU >= 0.5, and finds with the right label.

    python -m bench.probe_roi_design                                  # five classes (the finding)
    python -m bench.probe_roi_design --classes star --variants c5_align,c5_pool

With five classes the detections of the C5 model land on most objects but give few of them
the right label: classification, not the RoI operation, limits the AP in this budget.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

_OPS = {"align": ("roialign", "avg"), "pool": ("roipool", "max")}


def variant_changes(name: str) -> dict:
    """'fpn_align', 'c4_pool', 'c5_align', ...: the config changes of that RoI-table-style model."""
    from mrcnn_np.studies.ablation import C4, C5

    arch, op = name.split("_")
    base = {"c4": C4, "c5": C5, "fpn": {}}[arch]
    return {**base, "roi_heads.roi_op": _OPS[op][0], "roi_heads.aggregation": _OPS[op][1]}


def diagnose(run_dir: str, data_dir: str, n_images: int = 40) -> dict:
    """RPN recall and detection recall (any label / right label) of a trained run on val images."""
    from mrcnn_np.autodiff import no_grad
    from mrcnn_np.engine.checkpoint import load_weights
    from mrcnn_np.engine.data import shapes_split, to_model_image
    from mrcnn_np.ops.boxes import box_iou

    model = load_weights(run_dir)[0]
    with contextlib.redirect_stdout(io.StringIO()):
        val = shapes_split(data_dir, "val")
    n = rec5 = rec7 = found = right = 0
    for i in range(min(n_images, len(val))):
        item = val[i]
        with no_grad():
            out, inter = model.forward([to_model_image(item["image"])], return_intermediates=True)
        gt, props = item["boxes"].astype(np.float32), np.asarray(inter["proposals"][0], np.float32)
        best = box_iou(gt, props).max(1) if len(props) else np.zeros(len(gt))
        rec5, rec7, n = rec5 + (best >= 0.5).sum(), rec7 + (best >= 0.7).sum(), n + len(gt)
        det = out[0]
        keep = det["scores"] > 0.05
        if keep.any():
            iou = box_iou(gt, det["boxes"][keep].astype(np.float32))
            hit = iou.max(1) >= 0.5
            found += hit.sum()
            right += (hit & (det["labels"][keep][iou.argmax(1)] == item["labels"])).sum()
    return {"objects": n, "rpn_recall_50": rec5 / n, "rpn_recall_70": rec7 / n,
            "found_50": found / n, "right_label_50": right / n}


def run(args):
    name, data_dir, iters, out = args
    from mrcnn_np.studies.ablation import model_config
    from mrcnn_np.studies.registry import get_table
    from mrcnn_np.studies.runner import Variant
    from mrcnn_np.engine.data import shapes_split
    from mrcnn_np.engine.train import TrainConfig, train

    with contextlib.redirect_stdout(io.StringIO()):
        tr, va = shapes_split(data_dir, "train"), shapes_split(data_dir, "val")
    # the RoI table's model (teaching preset at 128 px) with this probe's variant
    cfg = model_config(get_table("roi"), Variant(name, variant_changes(name)), len(tr.class_names))
    tc = TrainConfig(iterations=iters, batch_size=4, lr=0.04, warmup_iters=100, milestones=(0.75, 0.9), clip=0.0,
                     seed=0, out_dir=out, eval_every=iters // 3, eval_images=100, checkpoint_every=iters,
                     keep_checkpoints=1, log_every=0)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        res = train(cfg, tc, tr, va, progress=False, log=lambda s: None, threads=1)
    curve = [(e["iteration"], 100 * e["segm"]["AP"], 100 * e["segm"]["AP75"], 100 * e["bbox"]["AP"])
             for e in res.evals]
    return name, time.perf_counter() - t0, curve, diagnose(out, data_dir)


def main():
    from mrcnn_np.datasets.shapes import SHAPES, ShapesConfig, ensure_shapes

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--classes", default=",".join(SHAPES), help="shape classes, comma-separated")
    ap.add_argument("--variants", default="c4_align,c5_align", help="from {fpn,c4,c5}_{align,pool}")
    ap.add_argument("--iters", type=int, default=600)
    ap.add_argument("--out", default="runs/probe_roi_design")
    args = ap.parse_args()
    classes = tuple(args.classes.split(","))
    out = Path(args.out)
    data = out / ("data_" + "_".join(classes))
    config = ShapesConfig(min_objects=2, max_objects=6, min_size=24, max_size=64, overlap_prob=0.2,
                          rotate=False, classes=classes)
    ensure_shapes(data, 1000, 100, 128, 0, config=config, progress=False)
    jobs = [(v, str(data), args.iters, str(out / f"{'_'.join(classes)}_{v}")) for v in args.variants.split(",")]
    print(f"classes {classes}, objects 24-64 px, {args.iters} iterations of 4 images, seed 0")
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for name, secs, curve, d in pool.map(run, jobs):
            aps = "; ".join(f"it {i}: mask AP {m:.1f} AP75 {m75:.1f} box AP {b:.1f}" for i, m, m75, b in curve)
            print(f"{name:10s} {secs:5.0f} s  {aps}")
            print(f"{'':10s} RPN recall@0.5 {d['rpn_recall_50']:.2f} @0.7 {d['rpn_recall_70']:.2f}; "
                  f"detections find {d['found_50']:.0%} of {d['objects']} objects at IoU 0.5, "
                  f"{d['right_label_50']:.0%} with the right label")


if __name__ == "__main__":
    main()
