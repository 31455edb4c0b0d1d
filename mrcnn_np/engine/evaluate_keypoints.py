"""COCO keypoint evaluation: AP over object keypoint similarity (OKS) through COCOeval.

Mask R-CNN §5 reports keypoint AP (AP_kp, Tables 4 and 5) with COCO's metric. For keypoints
the IoU of boxes or masks is replaced by the *object keypoint similarity* between a
detection's keypoints and a ground-truth person's:

    OKS = sum_i exp(-d_i^2 / (2 s^2 k_i^2)) [v_i > 0] / sum_i [v_i > 0]

d_i the distance of keypoint i, s^2 the GT object's ``area`` (its segment area), and
k_i = 2 sigma_i a per-keypoint tolerance (COCO measured sigma_i from human annotators:
0.026 for the nose, 0.107 for the hips). Only labelled GT keypoints (v > 0) count, and a
GT with no labelled keypoint is ignored. AP then averages over OKS thresholds 0.50:0.95
exactly like box AP (docs/REFERENCE.md §15; keypoints: up to 20 detections per image, area
ranges all / medium / large, so 10 numbers).

Predictions are the model's dicts, one per image: ``image_id``, ``boxes`` (D, 4),
``labels`` (D,), ``scores`` (D,) and ``keypoints`` (D, K, 3) in original-image pixels.
Each becomes a COCO result ``{"image_id", "category_id", "keypoints": [x1, y1, v1, ...],
"score"}``; the score is the detection's (box) score, as torchvision's evaluator does.

Shapes::

    D detections, K keypoint types;  keypoints (D, K, 3) [x, y, v]
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn_np.detection.keypoint_head import check_keypoints
from mrcnn_np.engine.evaluate import check_prediction, per_class_ap

KEYPOINT_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
# COCO's per-keypoint sigmas (pycocotools Params.kpt_oks_sigmas), by name; "head" (the
# centre of the stick figures' head disc, datasets/keypoints.py) is a point as sharp as the nose.
KEYPOINT_SIGMAS = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
    "head": 0.026,
}


def keypoint_sigmas(names) -> np.ndarray:
    """(K,) OKS sigmas for keypoint ``names`` from ``KEYPOINT_SIGMAS``; unknown names are an error."""
    unknown = [n for n in names if n not in KEYPOINT_SIGMAS]
    if unknown:
        raise ValueError(f"no OKS sigma known for keypoints {unknown}; pass sigmas= (one per keypoint)")
    return np.array([KEYPOINT_SIGMAS[n] for n in names], np.float64)


def _keypoint_cat_ids(coco_gt: COCO) -> list:
    cats = [c["id"] for c in coco_gt.cats.values() if c.get("keypoints")]
    if not cats:
        raise ValueError("the ground truth has no category with 'keypoints' names: nothing to evaluate")
    return sorted(cats)


def keypoints_to_coco(predictions, coco_gt: COCO, label_to_cat_id: dict, num_keypoints: int) -> list:
    """COCO keypoint result entries from the package's predictions (categories with keypoints only)."""
    kp_cats = set(_keypoint_cat_ids(coco_gt))
    results = []
    for i, p in enumerate(predictions):
        boxes, labels, scores, _ = check_prediction(p, i, coco_gt, label_to_cat_id, need_masks=False)
        if len(boxes) == 0:
            continue
        if "keypoints" not in p:
            raise ValueError(f"predictions[{i}] has no 'keypoints' (a model built with keypoint_on=True makes them)")
        kps = check_keypoints(p["keypoints"], f"predictions[{i}]['keypoints']", num_keypoints)
        if len(kps) != len(boxes):
            raise ValueError(f"predictions[{i}]['keypoints'] has {len(kps)} rows but 'boxes' has {len(boxes)}")
        for k in range(len(boxes)):
            cat = int(label_to_cat_id[int(labels[k])])
            if cat in kp_cats:
                results.append({"image_id": int(p["image_id"]), "category_id": cat,
                                "keypoints": [float(v) for v in kps[k].reshape(-1)], "score": float(scores[k])})
    return results


def run_keypoint_eval(coco_gt: COCO, results: list, sigmas, verbose: bool = False, image_ids=None) -> COCOeval:
    """COCOeval(iouType="keypoints") with the given per-keypoint sigmas: evaluate, accumulate, summarise."""
    missing = [a["id"] for a in coco_gt.dataset["annotations"]
               if a["category_id"] in coco_gt.cats and coco_gt.cats[a["category_id"]].get("keypoints")
               and ("keypoints" not in a or "num_keypoints" not in a)]
    if missing:
        raise ValueError(f"ground-truth annotations {missing[:5]} have no 'keypoints' or 'num_keypoints'")
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:  # loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(coco_gt.imgs.values()), "annotations": [],
                               "categories": list(coco_gt.cats.values())}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.params.catIds = _keypoint_cat_ids(coco_gt)
        if image_ids is not None:
            ev.params.imgIds = sorted(int(i) for i in image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def evaluate_keypoints(predictions, dataset, sigmas=None, verbose: bool = False, print_table: bool = True,
                       image_ids=None) -> dict:
    """Keypoint AP (OKS) of ``predictions`` against ``dataset`` (a ``CocoDataset`` with keypoints).

    sigmas: (K,) per-keypoint OKS sigmas; default from the data set's ``keypoint_names``
    (``KEYPOINT_SIGMAS``). image_ids: evaluate these images only (default all).
    Returns ``{"keypoints": {"stats": {name: value} (KEYPOINT_STAT_NAMES), "per_class":
    {class name: AP}}}``; prints a table unless ``print_table=False``.
    """
    names = getattr(dataset, "keypoint_names", None)
    if not names:
        raise ValueError("the data set has no keypoint_names: its categories list no 'keypoints'")
    sigmas = keypoint_sigmas(names) if sigmas is None else np.asarray(sigmas, np.float64)
    if sigmas.shape != (len(names),):
        raise ValueError(f"sigmas must have one value per keypoint ({len(names)}), got shape {sigmas.shape}")
    results = keypoints_to_coco(list(predictions), dataset.coco, dataset.label_to_cat_id, len(names))
    ev = run_keypoint_eval(dataset.coco, results, sigmas, verbose=verbose, image_ids=image_ids)
    aps = per_class_ap(ev)      # area "all", the largest maxDets (20 for keypoints)
    cat_to_label = {cid: label for label, cid in dataset.label_to_cat_id.items()}
    out = {"keypoints": {
        "stats": dict(zip(KEYPOINT_STAT_NAMES, (float(s) for s in ev.stats))),
        "per_class": {dataset.class_names[cat_to_label[cid]]: ap for cid, ap in aps.items()},
    }}
    if print_table:
        print(format_keypoint_table(out))
    return out


def format_keypoint_table(results: dict) -> str:
    """The 10 COCO keypoint numbers, then per-class AP (-1 = no labelled GT)."""
    r = results["keypoints"]
    lines = [f"{'metric':<8}{'keypoints':>10}", "-" * 18]
    lines += [f"{name:<8}{r['stats'][name]:10.3f}" for name in KEYPOINT_STAT_NAMES]
    lines.append("per-class AP")
    lines += [f"  {cls:<14}{ap:8.3f}" for cls, ap in r["per_class"].items()]
    return "\n".join(lines)


__all__ = ["KEYPOINT_SIGMAS", "KEYPOINT_STAT_NAMES", "evaluate_keypoints", "format_keypoint_table", "keypoint_sigmas",
           "keypoints_to_coco", "run_keypoint_eval"]
