"""COCO evaluation of detections and masks: AP and AR through pycocotools' COCOeval.

Average precision (AP) summarises a ranked list of detections: for one class and one IoU
threshold t, detections are sorted by score, each one is a true positive if it overlaps a
not-yet-matched ground-truth object with IoU >= t, the precision/recall curve is made
monotone and averaged over 101 recall points. COCO's headline "AP" averages this over the
IoU thresholds 0.50, 0.55, ..., 0.95 and over classes; AP50 and AP75 use one threshold;
APs/APm/APl restrict to small (< 32^2 px), medium and large objects (Mask R-CNN paper,
Table 1 reports these for boxes and masks). 'bbox' uses box IoU, 'segm' mask IoU.
The exact COCOeval semantics are in docs/REFERENCE.md §15.

Predictions use the package's own structure, one dict per image:
    image_id  the data set's COCO image id
    boxes     (N, 4) float [x1, y1, x2, y2] in original-image pixels
    labels    (N,) int contiguous 1..K;  scores (N,) float
    masks     optional (N, H, W) or (N, 1, H, W): binary (uint8/bool), or float
              probabilities (> 0.5 is "in")
and are converted here to COCO result entries (xywh boxes, RLE masks, original ids).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn_np._checks import check_array, check_boxes, check_same_length
from mrcnn_np.datasets.coco import encode_mask

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def check_prediction(p: dict, i: int, coco_gt: COCO, label_to_cat_id: dict, need_masks: bool):
    """(boxes, labels, scores, masks or None) of ``predictions[i]``, checked against the ground truth;
    ValueError naming ``predictions[i]`` and the key otherwise."""
    where = f"predictions[{i}]"
    for key in ("image_id", "boxes", "labels", "scores"):
        if key not in p:
            raise ValueError(f"{where} has no '{key}'")
    if p["image_id"] not in coco_gt.imgs:
        raise ValueError(f"{where}['image_id'] = {p['image_id']} is not an image of the ground truth")
    if np.size(p["boxes"]) == 0 and np.size(p["labels"]) == 0 and np.size(p["scores"]) == 0:
        return np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0), None  # no detections here
    boxes = check_boxes(p["boxes"], f"{where}['boxes']")
    labels = check_array(p["labels"], f"{where}['labels']", ndim=1, kinds="iu")
    scores = check_array(p["scores"], f"{where}['scores']", ndim=1, kinds="f", finite=True)
    check_same_length(boxes, labels, f"{where}['boxes']", f"{where}['labels']")
    check_same_length(boxes, scores, f"{where}['boxes']", f"{where}['scores']")
    unknown = set(labels.tolist()) - set(label_to_cat_id)
    if unknown:
        raise ValueError(f"{where}['labels'] has labels {sorted(unknown)} outside 1..{len(label_to_cat_id)}")
    masks = None
    if need_masks:
        if "masks" not in p:
            raise ValueError(f"{where} has no 'masks' but 'segm' evaluation was asked for")
        img = coco_gt.imgs[p["image_id"]]
        masks = p["masks"]
        if np.ndim(masks) == 4 and np.shape(masks)[1] == 1:  # (N, 1, H, W), as a mask head pastes them
            masks = np.asarray(masks)[:, 0]
        masks = check_array(masks, f"{where}['masks']", ndim=3, kinds="fiub")
        if masks.shape != (len(boxes), img["height"], img["width"]):
            raise ValueError(f"{where}['masks'] must have shape (N, H, W) = "
                             f"({len(boxes)}, {img['height']}, {img['width']}), got {masks.shape}")
    return boxes, labels, scores, masks


def predictions_to_coco(predictions, coco_gt: COCO, label_to_cat_id: dict, iou_type: str) -> list:
    """COCO result entries (list of dicts) for 'bbox' or 'segm' from the package's predictions."""
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    results = []
    for i, p in enumerate(predictions):
        boxes, labels, scores, masks = check_prediction(p, i, coco_gt, label_to_cat_id, iou_type == "segm")
        for k in range(len(boxes)):
            entry = {"image_id": int(p["image_id"]), "category_id": int(label_to_cat_id[int(labels[k])]),
                     "score": float(scores[k])}
            if iou_type == "bbox":
                x1, y1, x2, y2 = (float(v) for v in boxes[k])
                entry["bbox"] = [x1, y1, x2 - x1, y2 - y1]  # xywh, no +1
            else:
                m = masks[k] > 0.5 if masks.dtype.kind == "f" else masks[k] != 0
                # No "bbox" key here: loadRes would then take the box area as the segment's area.
                entry["segmentation"] = encode_mask(m)
            results.append(entry)
    return results


def run_cocoeval(coco_gt: COCO, results: list, iou_type: str, verbose: bool = False,
                 image_ids=None) -> COCOeval:
    """Evaluate, accumulate and summarise; ``results`` may be empty (every AP is then 0).

    image_ids: evaluate only these images (default: every image of the ground truth).
    """
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:  # loadRes cannot take an empty list; an empty result set is well defined
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(coco_gt.imgs.values()), "annotations": [],
                               "categories": list(coco_gt.cats.values())}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        if image_ids is not None:
            ev.params.imgIds = sorted(int(i) for i in image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def per_class_ap(ev: COCOeval) -> dict:
    """{category id: AP@[.5:.95]} from an accumulated COCOeval (-1 where a class has no GT)."""
    precision = ev.eval["precision"]  # (T IoUs, R recalls, K classes, A areas, M maxDets)
    out = {}
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]  # area "all", maxDets 100
        out[cat_id] = float(p[p > -1].mean()) if (p > -1).any() else -1.0
    return out


def evaluate_coco(predictions, dataset, iou_types=None, verbose: bool = False, print_table: bool = True,
                  image_ids=None) -> dict:
    """COCO AP of ``predictions`` against ``dataset`` (a ``CocoDataset`` or anything with
    ``coco``, ``label_to_cat_id`` and ``class_names``).

    iou_types: subset of ("bbox", "segm"); default "bbox", plus "segm" when every
    prediction has masks. image_ids: evaluate on these images only (e.g. the first 50 of
    a validation set); by default every image counts, and an image without a prediction
    dict simply has no detections. Returns {iou_type: {"stats": {name: value} (STAT_NAMES order),
    "per_class": {class name: AP}}}; prints the table unless ``print_table=False``.
    """
    predictions = list(predictions)
    if iou_types is None:
        iou_types = ("bbox", "segm") if predictions and all("masks" in p for p in predictions) else ("bbox",)
    out = {}
    for iou_type in iou_types:
        results = predictions_to_coco(predictions, dataset.coco, dataset.label_to_cat_id, iou_type)
        ev = run_cocoeval(dataset.coco, results, iou_type, verbose=verbose, image_ids=image_ids)
        aps = per_class_ap(ev)
        out[iou_type] = {
            "stats": dict(zip(STAT_NAMES, (float(s) for s in ev.stats))),
            "per_class": {dataset.class_names[label]: aps[cid] for label, cid in sorted(dataset.label_to_cat_id.items())},
        }
    if print_table:
        print(format_table(out))
    return out


def evaluate_model(model, dataset, num_images: int = 0, batch_size: int = 4, mask_readout: str = "class") -> dict:
    """COCO bbox/segm AP of ``model`` on the first ``num_images`` images (0: all), no printing."""
    from mrcnn_np.engine.predict import predict_dataset  # noqa: PLC0415  (predict imports the data layer)

    n = len(dataset) if num_images <= 0 else min(num_images, len(dataset))
    preds = predict_dataset(model, dataset, range(n), batch_size, mask_readout)
    return evaluate_coco(preds, dataset, print_table=False, image_ids=[dataset.image_ids[i] for i in range(n)])


def format_table(results: dict) -> str:
    """The 12 COCO numbers (rows) per iou type (columns), then per-class AP; -1 = no GT."""
    types = list(results)
    head = f"{'metric':<8}" + "".join(f"{t:>8}" for t in types)
    lines = [head, "-" * len(head)]
    for name in STAT_NAMES:
        lines.append(f"{name:<8}" + "".join(f"{results[t]['stats'][name]:8.3f}" for t in types))
    if types:
        lines.append("per-class AP")
        for cls in results[types[0]]["per_class"]:
            lines.append(f"  {cls:<10}" + "".join(f"{results[t]['per_class'][cls]:8.3f}" for t in types))
    return "\n".join(lines)
