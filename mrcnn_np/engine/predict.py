"""Running a trained model on image files: drawings and a COCO-format detections file.

``predict_files`` reads every image first (so a missing or unreadable file is reported
before any work), runs ``model.predict`` on each, keeps detections scoring at least
``score_thresh``, and writes

    <out>/<image stem>_pred.png   the image with masks, boxes and "class score" tags
    <out>/detections.json         {"images": [...], "categories": [...], "annotations": [...]}

``detections.json`` has the layout of a COCO instance file whose annotations carry a
``score``: ``annotations`` alone is a COCO *results* list (``COCO.loadRes`` reads it),
boxes are ``[x, y, w, h]`` in original pixels and masks compressed RLE (probability > 0.5).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mrcnn_np.engine.data import read_image_file, sample_to_input, to_model_image


def predict_dataset(model, dataset, indices=None, batch_size: int = 4, mask_readout: str = "class") -> list:
    """Detections for images ``indices`` (default all) of a data set, one dict per image with
    ``image_id``, ``boxes``, ``scores``, ``labels`` and ``masks`` (original pixels)."""
    indices = range(len(dataset)) if indices is None else list(indices)
    preds = []
    for s in range(0, len(indices), batch_size):
        chunk = indices[s:s + batch_size]
        samples = [dataset[i] for i in chunk]
        for sample, det in zip(samples, model.predict([sample_to_input(x)[0] for x in samples], mask_readout=mask_readout)):
            preds.append(dict(det, image_id=sample["image_id"]))
    return preds


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def image_files(paths) -> list:
    """The image files named by ``paths``: a file stays itself, a folder gives its files with an
    image suffix (``IMAGE_SUFFIXES``, any case), sorted by name. ValueError for a folder
    without images or a path that does not exist."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{display_name(p)}: is a folder with no image files "
                                 f"({', '.join(IMAGE_SUFFIXES)})")
            out += found
        elif not p.exists():
            raise ValueError(f"{display_name(p)}: image file not found")
        else:
            out.append(p)
    return out


def display_name(path) -> str:
    """``path`` as printable text: bytes of a file name that are not UTF-8 (kept by Python as
    lone surrogates) are shown as U+FFFD, so that printing or drawing the name cannot fail."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def detections_to_coco(dets: dict, image_id: int, label_to_cat_id: dict, first_id: int = 1) -> list:
    """COCO annotation dicts (with ``score``) for one image's detections."""
    from mrcnn_np.datasets.coco import encode_mask  # noqa: PLC0415

    out = []
    masks = dets.get("masks")
    for k in range(len(dets["boxes"])):
        x1, y1, x2, y2 = (float(v) for v in dets["boxes"][k])
        label = int(dets["labels"][k])
        entry = {"id": first_id + k, "image_id": int(image_id), "category_id": int(label_to_cat_id.get(label, label)),
                 "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(dets["scores"][k]), "iscrowd": 0}
        if masks is not None:
            m = np.asarray(masks[k]) > 0.5
            entry["segmentation"] = encode_mask(m)
            entry["area"] = int(m.sum())
        else:
            entry["area"] = (x2 - x1) * (y2 - y1)
        out.append(entry)
    return out


def keep_confident(dets: dict, score_thresh: float) -> dict:
    """The detections with score >= score_thresh (every array indexed alike)."""
    keep = np.asarray(dets["scores"]) >= score_thresh
    return {k: (np.asarray(v)[keep] if k in ("boxes", "scores", "labels", "masks") else v) for k, v in dets.items()}


def predict_files(model, paths, out_dir, score_thresh: float = 0.5, class_names=None, label_to_cat_id=None,
                  log=print, overwrite: bool = False) -> dict:
    """Predict on image files (or folders of them), draw each to ``out_dir`` and write
    ``detections.json``; returns its dict. A file of those names already in ``out_dir`` is a
    ValueError (nothing written) unless ``overwrite``."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # files, no window
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from mrcnn_np.viz import draw_instances  # noqa: PLC0415

    if not 0.0 <= score_thresh <= 1.0:
        raise ValueError(f"score threshold must be in [0, 1], got {score_thresh}")
    paths = image_files(paths)  # folders expanded; every file checked before any prediction
    images = [read_image_file(p) for p in paths]  # every file checked before any prediction
    k = model.cfg.num_classes
    class_names = list(class_names) if class_names else ["background"] + [f"class{i}" for i in range(1, k)]
    label_to_cat_id = dict(label_to_cat_id) if label_to_cat_id else {i: i for i in range(1, k)}
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{display_name(out_dir)}: the output folder is a file, not a folder")
    stems = _drawing_stems(paths)
    if not overwrite:
        taken = [q for q in [out_dir / "detections.json", *(out_dir / f"{t}_pred.png" for t in stems)] if q.exists()]
        if taken:
            raise ValueError(f"{display_name(taken[0])} already exists ({len(taken)} of the files to write do); "
                             f"choose another output folder, or overwrite them explicitly (--overwrite)")
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "annotations": [],
           "categories": [{"id": int(label_to_cat_id[i]), "name": class_names[i]} for i in range(1, k)]}
    for image_id, (path, image, stem) in enumerate(zip(paths, images, stems), start=1):
        dets = keep_confident(model.predict([to_model_image(image)])[0], score_thresh)
        doc["images"].append({"id": image_id, "file_name": display_name(path), "height": int(image.shape[0]),
                              "width": int(image.shape[1])})
        doc["annotations"] += detections_to_coco(dets, image_id, label_to_cat_id, len(doc["annotations"]) + 1)
        h, w = image.shape[:2]
        fig, ax = plt.subplots(figsize=(max(3.0, w / 64), max(3.0, h / 64)))
        draw_instances(image, dets["boxes"], dets["labels"], dets.get("masks"), dets["scores"], class_names, ax=ax,
                       title=f"{display_name(path.name)}: {len(dets['boxes'])} detections >= {score_thresh}")
        fig.tight_layout()
        fig.savefig(out_dir / f"{stem}_pred.png", dpi=100)
        plt.close(fig)
        log(f"{display_name(path)}: {len(dets['boxes'])} detections -> "
            f"{display_name(out_dir / (stem + '_pred.png'))}")
    (out_dir / "detections.json").write_text(json.dumps(doc))
    log(f"wrote {display_name(out_dir / 'detections.json')} ({len(doc['annotations'])} detections in "
        f"{len(paths)} images)")
    return doc


def _drawing_stems(paths) -> list:
    """The drawing name (without ``_pred.png``) of each image: its stem, made unique by the
    image's 1-based position when another image of the same stem came first (other folder)."""
    seen, stems = set(), []
    for image_id, path in enumerate(paths, start=1):
        stem = path.stem if path.stem not in seen else f"{path.stem}_{image_id}"
        seen.add(stem)
        stems.append(stem)
    return stems


def match_to_ground_truth(boxes, labels, scores, gt_boxes, gt_labels, iou_thresh: float = 0.5):
    """Sort detections into hits and false positives, and ground-truth objects into found and missed.

    Greedy, as COCO AP50 does per class: detections in decreasing score order each take the
    unmatched same-class object of highest box IoU if that IoU >= iou_thresh.
    Returns (hit (D,) bool: the detection matched an object, missed (G,) bool: no detection
    matched the object).
    """
    from mrcnn_np.ops.boxes import box_iou  # noqa: PLC0415

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    hit = np.zeros(len(boxes), bool)
    taken = np.zeros(len(gt_boxes), bool)
    if len(boxes) and len(gt_boxes):
        iou = box_iou(boxes, gt_boxes)
        iou[np.asarray(labels)[:, None] != np.asarray(gt_labels)[None, :]] = 0.0
        for d in np.argsort(-np.asarray(scores), kind="stable"):
            cand = np.where(taken, -1.0, iou[d])
            g = int(np.argmax(cand))
            if cand[g] >= iou_thresh:
                hit[d], taken[g] = True, True
    return hit, ~taken
