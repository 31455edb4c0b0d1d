"""COCO-format instance data: read a JSON file + image folder into training targets.

COCO stores, for each object, a category id, a box ``[x, y, w, h]`` and a segmentation,
either as polygons (a list of ``[x0, y0, x1, y1, ...]`` parts) or as run-length encoding
(RLE: ``{"size": [H, W], "counts": ...}``, column-major runs, compressed into a string or
left as a list of ints). ``iscrowd = 1`` marks a region covering a group of objects
(always RLE); it is not a training target, but evaluation needs it (detections on a crowd
are neither right nor wrong, docs/REFERENCE.md §15).

The model works with contiguous labels ``1..K`` (0 = background); COCO ids are arbitrary
(the shapes set uses 2, 5, 7, ...). ``cat_id_to_label`` / ``label_to_cat_id`` translate.

Shapes:  N instances, C crowd regions, H x W image
    image (H, W, 3) uint8 RGB;  boxes (N, 4) float32 xyxy;  labels (N,) int64 1..K
    masks (N, H, W) uint8 0/1;  crowd_boxes (C, 4);  crowd_masks (C, H, W)
    keypoints (N, K, 3) float32 [x, y, v] (only for files whose categories list ``keypoints``)

The constructor validates the JSON (cheaply, every field the reader uses) and raises a
``DatasetError`` naming the file and the field; image files are checked when loaded.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from numbers import Number
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO


class DatasetError(ValueError):
    """A COCO file or image that cannot be read; the message names the file and the field."""


def encode_mask(mask: np.ndarray) -> dict:
    """(H, W) binary mask -> compressed RLE dict with ``counts`` as str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))  # the encoder reads column-major
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def segmentation_to_mask(segm, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 mask of a COCO segmentation: polygons, compressed or uncompressed RLE."""
    if isinstance(segm, list):
        # A part needs >= 3 points; pycocotools would read a 4-number part as a box.
        parts = [p for p in segm if len(p) >= 6]
        if not parts:
            return np.zeros((height, width), np.uint8)
        rle = mask_utils.merge(mask_utils.frPyObjects(parts, height, width))
    elif isinstance(segm["counts"], list):
        rle = mask_utils.frPyObjects(segm, height, width)
    else:
        rle = segm
    with warnings.catch_warnings():  # pycocotools 2.0.x + NumPy 2 emit a harmless DeprecationWarning
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(np.uint8)


def _load_json(ann_file: Path) -> dict:
    if not ann_file.is_file():
        raise DatasetError(f"{ann_file}: annotation file not found")
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{ann_file}: malformed JSON: {e}") from None
    except UnicodeDecodeError as e:
        raise DatasetError(f"{ann_file}: not a text (JSON) file: {e}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{ann_file}: top level must be a JSON object, got {type(data).__name__}")
    return data


def _check_fields(ann_file, where: str, entry, fields: dict) -> None:
    """Raise if ``entry`` misses a field of ``fields`` ({name: (types, description)})."""
    if not isinstance(entry, dict):
        raise DatasetError(f"{ann_file}: {where} must be an object, got {type(entry).__name__}")
    for name, (types, desc) in fields.items():
        if name not in entry:
            raise DatasetError(f"{ann_file}: {where} has no '{name}' field")
        value = entry[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise DatasetError(f"{ann_file}: {where} field '{name}' must be {desc}, "
                               f"got {type(value).__name__} {str(value)[:40]}")


_INT, _STR = ((int,), "an integer"), ((str,), "a string")
_IMAGE_FIELDS = {"id": _INT, "file_name": _STR, "height": _INT, "width": _INT}
_CAT_FIELDS = {"id": _INT, "name": _STR}
_ANN_FIELDS = {"id": _INT, "image_id": _INT, "category_id": _INT, "bbox": ((list,), "a list [x, y, w, h]"),
               "segmentation": ((list, dict), "a polygon list or an RLE object")}


def _validate(ann_file, data: dict) -> None:
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise DatasetError(f"{ann_file}: missing top-level key '{key}'")
        if not isinstance(data[key], list):
            raise DatasetError(f"{ann_file}: '{key}' must be a list, got {type(data[key]).__name__}")
    for i, img in enumerate(data["images"]):
        _check_fields(ann_file, f"images[{i}]", img, _IMAGE_FIELDS)
    for i, cat in enumerate(data["categories"]):
        _check_fields(ann_file, f"categories[{i}]", cat, _CAT_FIELDS)
    image_ids = {img["id"]: (img["height"], img["width"]) for img in data["images"]}
    cat_ids = {cat["id"] for cat in data["categories"]}
    if len(image_ids) != len(data["images"]):
        raise DatasetError(f"{ann_file}: 'images' has duplicate ids")
    if len(cat_ids) != len(data["categories"]):
        raise DatasetError(f"{ann_file}: 'categories' has duplicate ids")
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        _check_fields(ann_file, where, ann, _ANN_FIELDS)
        box = ann["bbox"]
        if len(box) != 4 or not all(isinstance(v, Number) and np.isfinite(v) for v in box):
            raise DatasetError(f"{ann_file}: {where} field 'bbox' must be 4 finite numbers, got {box}")
        if ann["image_id"] not in image_ids:
            raise DatasetError(f"{ann_file}: {where} field 'image_id' = {ann['image_id']} is not in 'images'")
        if ann["category_id"] not in cat_ids:
            raise DatasetError(f"{ann_file}: {where} field 'category_id' = {ann['category_id']} "
                               f"is not in 'categories'")
        segm = ann["segmentation"]
        if isinstance(segm, dict):
            if "counts" not in segm or "size" not in segm:
                raise DatasetError(f"{ann_file}: {where} field 'segmentation' (RLE) needs 'counts' and 'size'")
            if list(segm["size"]) != list(image_ids[ann["image_id"]]):
                raise DatasetError(f"{ann_file}: {where} field 'segmentation' has size {segm['size']} but its "
                                   f"image is [height, width] = {list(image_ids[ann['image_id']])}")
        elif not all(isinstance(p, list) for p in segm):
            raise DatasetError(f"{ann_file}: {where} field 'segmentation' must be a list of polygons "
                               f"(lists of numbers)")


class CocoDataset:
    """A COCO instance-segmentation file and its image folder, indexed ``0..len-1``.

    ds[i] -> dict(image, boxes, labels, masks, image_id, crowd_boxes, crowd_masks), plus
    ``keypoints`` (N, K, 3) when the categories name keypoints (COCO person_keypoints; an
    annotation without them gets K unlabelled [0, 0, 0]). keypoint_names (or None) and
    skeleton (0-based index pairs, or None) describe them.
    Attributes: class_names (index 0 "background"), cat_id_to_label, label_to_cat_id,
    image_ids, coco (pycocotools COCO, the ground truth for evaluation),
    num_dropped_degenerate (annotations with zero width/height or an empty polygon,
    left out of the targets).
    """

    def __init__(self, ann_file, image_dir):
        self.ann_file, self.image_dir = Path(ann_file), Path(image_dir)
        data = _load_json(self.ann_file)
        _validate(self.ann_file, data)
        cats = sorted(data["categories"], key=lambda c: c["id"])
        self.cat_id_to_label = {c["id"]: k for k, c in enumerate(cats, start=1)}
        self.label_to_cat_id = {k: cid for cid, k in self.cat_id_to_label.items()}
        self.class_names = ["background"] + [c["name"] for c in cats]
        kp_cats = [c for c in cats if c.get("keypoints")]
        if len({tuple(c["keypoints"]) for c in kp_cats}) > 1:
            raise DatasetError(f"{self.ann_file}: categories list different 'keypoints'; one keypoint set per file")
        self.keypoint_names = list(kp_cats[0]["keypoints"]) if kp_cats else None
        self.skeleton = [[a - 1, b - 1] for a, b in kp_cats[0].get("skeleton", [])] if kp_cats else None
        self.images = sorted(data["images"], key=lambda im: im["id"])
        self.image_ids = [im["id"] for im in self.images]

        # Split each image's annotations into targets and crowd regions; drop degenerate ones.
        self._targets = {i: [] for i in self.image_ids}
        self._crowds = {i: [] for i in self.image_ids}
        self.num_dropped_degenerate = 0
        for ann in data["annotations"]:
            x, y, w, h = ann["bbox"]
            segm = ann["segmentation"]
            empty_polygon = isinstance(segm, list) and not any(len(p) >= 6 for p in segm)
            if w <= 0 or h <= 0 or empty_polygon:
                self.num_dropped_degenerate += 1
                continue
            (self._crowds if ann.get("iscrowd", 0) else self._targets)[ann["image_id"]].append(ann)

        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            self.coco = COCO()
            self.coco.dataset = data
            self.coco.createIndex()

    def __len__(self) -> int:
        return len(self.images)

    def load_image(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB image ``index``; checks that it exists and has the JSON's size."""
        info = self.images[index]
        path = self.image_dir / info["file_name"]
        if not path.is_file():
            raise DatasetError(f"{path}: image file not found (image id {info['id']} in {self.ann_file})")
        try:
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"))
        except OSError as e:
            raise DatasetError(f"{path}: cannot read image: {e}") from None
        if image.shape[:2] != (info["height"], info["width"]):
            raise DatasetError(f"{path}: image is {image.shape[1]}x{image.shape[0]} (WxH) but {self.ann_file} "
                               f"says width {info['width']}, height {info['height']}")
        return image

    def _boxes_masks(self, anns, h: int, w: int):
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        masks = np.zeros((len(anns), h, w), np.uint8)
        for k, a in enumerate(anns):
            masks[k] = segmentation_to_mask(a["segmentation"], h, w)
        return boxes, masks

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a data set of {len(self)} images")
        index = index % len(self)
        info = self.images[index]
        image = self.load_image(index)
        h, w = image.shape[:2]
        anns = self._targets[info["id"]]
        boxes, masks = self._boxes_masks(anns, h, w)
        # Clipping to the image can make a box empty (an object wholly outside): drop it too.
        ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        crowd_boxes, crowd_masks = self._boxes_masks(self._crowds[info["id"]], h, w)
        sample = dict(
            image=image, image_id=info["id"],
            boxes=boxes[ok], masks=masks[ok],
            labels=np.array([self.cat_id_to_label[a["category_id"]] for a in anns], np.int64)[ok],
            crowd_boxes=crowd_boxes, crowd_masks=crowd_masks,
        )
        if self.keypoint_names is not None:
            sample["keypoints"] = self._keypoints(anns)[ok]
        return sample

    def _keypoints(self, anns) -> np.ndarray:
        """(N, K, 3) float32 from the flat COCO lists [x1, y1, v1, x2, ...]."""
        k = len(self.keypoint_names)
        out = np.zeros((len(anns), k, 3), np.float32)
        for i, a in enumerate(anns):
            kp = a.get("keypoints") or [0] * (3 * k)
            if len(kp) != 3 * k or not all(isinstance(v, Number) and np.isfinite(v) for v in kp):
                raise DatasetError(f"{self.ann_file}: annotation id {a['id']} field 'keypoints' must be "
                                   f"3 x {k} finite numbers (x, y, v per keypoint), got {len(kp)} values")
            out[i] = np.asarray(kp, np.float32).reshape(k, 3)
        return out

    def __repr__(self) -> str:
        n = sum(map(len, self._targets.values()))
        return (f"CocoDataset({str(self.ann_file)!r}: {len(self)} images, {n} instances, "
                f"{len(self.class_names) - 1} classes, {self.num_dropped_degenerate} degenerate dropped)")
