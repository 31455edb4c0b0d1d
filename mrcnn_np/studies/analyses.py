"""Analyses of finished ablation tables: what the mean AP of a table cannot say by itself.

Each function takes a table's report (``results/ablation_<table>.json``, as ``runner.run_study``
returns it), reloads the runs' trained models from their run folders and scores them
again on the table's validation images in another way:

    softmax_readout   mask-loss table: the softmax runs read out as p(class) and as 1 - p(background)
    oracle_mask_iou   any table: the mask branch on ground-truth boxes (detection factored out)
    runs_on_disk      whether the run folders (not in git) are here to reload
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np


def runs_on_disk(report: dict) -> bool:
    """Whether every finished run of ``report`` still has its folder (weights) on this machine.

    ``results/`` is in git, the run folders are not: a fresh clone has the tables but must run a
    table again before the analyses below, which reload the trained models, can say anything."""
    return all(Path(r["run_dir"]).is_dir() for r in report["runs"] if r.get("metrics") is not None)


def softmax_readout(report: dict, num_images: int = 0) -> list:
    """Mask-loss table: why the softmax loss scores so low. Each finished softmax run's model is
    scored on the table's validation images twice: with the class readout (the softmax
    probability of the detected class, what the table reports) and with the foreground readout
    (1 - p(background), ``mask_probabilities``). If the foreground masks score far higher, the
    softmax-trained mask branch knows where the object is, and the loss is in its class
    competition, not in its localisation. Returns one row per run: variant, seed, and mask
    AP/AP50/AP75 (percent) per readout."""
    from mrcnn_np.engine import evaluate_model, load_weights  # noqa: PLC0415
    from mrcnn_np.engine.data import shapes_split  # noqa: PLC0415

    softmax = {v["label"] for v in report["variants"] if v["changes"].get("mask_head.loss") == "softmax"}
    with contextlib.redirect_stdout(io.StringIO()):
        val = shapes_split(report["data"]["dir"], "val")
    rows = []
    for run in report["runs"]:
        if run["variant"] not in softmax or run.get("metrics") is None:
            continue
        model, _, _ = load_weights(run["run_dir"])
        row = {"variant": run["variant"], "seed": run["seed"]}
        for readout in ("class", "foreground"):
            with contextlib.redirect_stdout(io.StringIO()):
                stats = evaluate_model(model, val, num_images, mask_readout=readout)["segm"]["stats"]
            row[readout] = {k: 100.0 * stats[k] for k in ("AP", "AP50", "AP75")}
        rows.append(row)
    return rows


def oracle_mask_iou(report: dict, num_images: int = 0) -> list:
    """Mask quality with detection factored out. For each finished run, every validation object's
    ground-truth box and class go through the run's trained mask branch (RoI pooling with the run's
    RoI operation, for C4 the res5 head, the mask head, the class's mask pasted at 0.5, as at test
    time), and the mask is compared with the object's true mask. Mask AP multiplies detection and
    segmentation quality; this isolates the second (the mask-resolution and RoI tables). Returns one
    row per run: variant, seed, mean IoU and the fraction of objects with IoU >= 0.75 and >= 0.9."""
    from mrcnn_np.autodiff import no_grad  # noqa: PLC0415
    from mrcnn_np.detection.transform import prepare_batch  # noqa: PLC0415
    from mrcnn_np.detection.mask_head import mask_probabilities  # noqa: PLC0415
    from mrcnn_np.detection.pooler import infer_scales  # noqa: PLC0415
    from mrcnn_np.detection.roi_heads import boxes_to_rois  # noqa: PLC0415
    from mrcnn_np.engine import load_weights  # noqa: PLC0415
    from mrcnn_np.engine.data import sample_to_input, shapes_split  # noqa: PLC0415
    from mrcnn_np.ops.masks import paste_masks_in_image  # noqa: PLC0415

    with contextlib.redirect_stdout(io.StringIO()):
        val = shapes_split(report["data"]["dir"], "val")
    n = len(val) if num_images <= 0 else min(num_images, len(val))
    rows = []
    for run in report["runs"]:
        if run.get("metrics") is None:
            continue
        model, _, _ = load_weights(run["run_dir"])
        tc, heads = model.cfg.transform, model.roi_heads
        ious = []
        for i in range(n):
            image, target = sample_to_input(val[i])
            if not len(target["boxes"]):
                continue
            batch, sizes, _ = prepare_batch([image], None, min_size=tc.min_size[-1], max_size=tc.max_size,
                                            mean=tc.image_mean, std=tc.image_std, size_divisible=tc.size_divisible)
            ratio = np.array([sizes[0][1] / image.shape[2], sizes[0][0] / image.shape[1]] * 2, np.float32)
            with no_grad():
                _, roi_feats = model.features(batch)
                scales = infer_scales([f.shape for f in roi_feats], sizes)
                rois = boxes_to_rois([target["boxes"] * ratio])
                logits = heads.mask_logits_for_rois(roi_feats, rois, scales).data
            probs = mask_probabilities(logits, target["labels"], kind=heads.mask_loss_kind)
            pasted = paste_masks_in_image(probs, target["boxes"], image.shape[1:]) >= 0.5
            gt = target["masks"] > 0
            inter = (pasted & gt).reshape(len(gt), -1).sum(1)
            union = (pasted | gt).reshape(len(gt), -1).sum(1)
            ious.append(inter / np.maximum(union, 1))
        iou = np.concatenate(ious) if ious else np.zeros(0)
        rows.append({"variant": run["variant"], "seed": run["seed"], "objects": int(iou.size),
                     "mean_iou": float(iou.mean()) if iou.size else None,
                     "iou_075": float((iou >= 0.75).mean()) if iou.size else None,
                     "iou_090": float((iou >= 0.9).mean()) if iou.size else None})
    return rows


__all__ = ["oracle_mask_iou", "runs_on_disk", "softmax_readout"]
