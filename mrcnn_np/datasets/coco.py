"""COCO-format instance data: read a JSON file + image folder into training targets.

COCO stores, for each object, a category id, a box ``[x, y, w, h]`` and a segmentation,
either as polygons (a list of ``[x0, y0, x1, y1, ...]`` parts) or as run-length encoding
(RLE: ``{"size": [H, W], "counts": ...}``, column-major runs, compressed into a string or
left as a list of ints). ``iscrowd = 1`` marks a region covering a group of objects
(RLE in COCO; polygons are accepted too); it is not a training target, but evaluation needs it (detections on a crowd
are neither right nor wrong, docs/REFERENCE.md §15).

The model works with contiguous labels ``1..K`` (0 = background); COCO ids are arbitrary
(the shapes set uses 2, 5, 7, ...). ``cat_id_to_label`` / ``label_to_cat_id`` translate.

Shapes:  N instances, C crowd regions, H x W image
    image (H, W, 3) uint8 RGB;  boxes (N, 4) float32 xyxy;  labels (N,) int64 1..K
    masks (N, H, W) uint8 0/1;  crowd_boxes (C, 4);  crowd_masks (C, H, W)
    keypoints (N, K, 3) float32 [x, y, v] (only for files whose categories list ``keypoints``)

The constructor checks the whole JSON once, before anything is rasterised or trained
(``datasets.validate``: every case and whether it refuses the file, drops the annotation
with a count, or keeps it, in one table). A refusal is a ``DatasetError`` naming the file,
the entry and the field. The training targets and the evaluation ground truth
(``CocoDataset.coco``) are both built from the checked annotations. Image files are
checked when loaded (``datasets.images``).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mrcnn_np.datasets.images import read_rgb
from mrcnn_np.datasets.validate import DatasetError, check_coco, check_segmentation, format_report, segmentation_rle

__all__ = ["CocoDataset", "DatasetError", "encode_mask", "segmentation_to_mask"]


def encode_mask(mask: np.ndarray) -> dict:
    """(H, W) binary mask -> compressed RLE dict with ``counts`` as str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))  # the encoder reads column-major
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _decode(segm, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 mask of a segmentation that ``check_segmentation`` has cleaned."""
    rle = segmentation_rle(segm, height, width)
    if rle is None:  # no polygon part left
        return np.zeros((height, width), np.uint8)
    with warnings.catch_warnings():  # pycocotools 2.0.x + NumPy 2 emit a harmless DeprecationWarning
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(np.uint8)


def segmentation_to_mask(segm, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 mask of a COCO segmentation: polygons, compressed or uncompressed RLE.

    The segmentation is checked first (``validate.check_segmentation``): a NaN or far-away
    polygon coordinate or an RLE that does not cover height x width raises ValueError
    instead of reaching pycocotools; polygon parts with < 3 points are left out.
    """
    segm, _ = check_segmentation(segm, height, width)
    return _decode(segm, height, width)


def _load_json(ann_file: Path) -> dict:
    if not ann_file.is_file():
        raise DatasetError(f"{ann_file}: annotation file not found")
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except UnicodeDecodeError as e:
        raise DatasetError(f"{ann_file}: not a text (JSON) file: {e}") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, an over-long integer, absurd nesting
        raise DatasetError(f"{ann_file}: malformed JSON: {str(e)[:200] or type(e).__name__}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{ann_file}: top level must be a JSON object, got {type(data).__name__}")
    return data


class CocoDataset:
    """A COCO instance-segmentation file and its image folder, indexed ``0..len-1``.

    ds[i] -> dict(image, boxes, labels, masks, image_id, crowd_boxes, crowd_masks), plus
    ``keypoints`` (N, K, 3) when the categories name keypoints (COCO person_keypoints; an
    annotation without them gets K unlabelled [0, 0, 0]). keypoint_names (or None) and
    skeleton (0-based index pairs, or None) describe them.
    Attributes: class_names (index 0 "background"), cat_id_to_label, label_to_cat_id,
    image_ids, coco (pycocotools COCO, the ground truth for evaluation),
    dropped / fixed ({reason: count}: annotations left out, or kept with a field filled in or
    cleaned; the reasons and every other decision are in ``datasets.validate``),
    num_dropped_degenerate (sum of ``dropped``), report (those counts as text lines).
    Dropped annotations are left out of ``coco`` as well.
    """

    def __init__(self, ann_file, image_dir):
        self.ann_file, self.image_dir = Path(ann_file), Path(image_dir)
        data = _load_json(self.ann_file)
        checked = check_coco(self.ann_file, data)  # refuses, drops or fills in (validate.py's table)
        self.dropped, self.fixed = dict(checked.dropped), dict(checked.fixed)
        self.num_dropped_degenerate = sum(self.dropped.values())
        self.report = format_report(checked)
        cats = sorted(checked.categories, key=lambda c: c["id"])
        self.cat_id_to_label = {c["id"]: k for k, c in enumerate(cats, start=1)}
        self.label_to_cat_id = {k: cid for cid, k in self.cat_id_to_label.items()}
        self.class_names = ["background"] + [c["name"] for c in cats]
        self.keypoint_names, self.skeleton = checked.keypoint_names, checked.skeleton
        self.images = sorted(checked.images, key=lambda im: im["id"])
        self.image_ids = [im["id"] for im in self.images]

        # Split each image's kept annotations into targets and crowd regions.
        self._targets = {i: [] for i in self.image_ids}
        self._crowds = {i: [] for i in self.image_ids}
        for ann in checked.annotations:
            (self._crowds if ann["iscrowd"] else self._targets)[ann["image_id"]].append(ann)

        # The evaluation ground truth is the checked file: what is trained on is what is scored,
        # and COCOeval never sees an entry that could crash or hang it.
        gt = {k: v for k, v in data.items() if k not in ("images", "annotations", "categories")}
        gt.update(images=checked.images, annotations=checked.annotations, categories=checked.categories)
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            self.coco = COCO()
            self.coco.dataset = gt
            self.coco.createIndex()

    def __len__(self) -> int:
        return len(self.images)

    def load_image(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB image ``index``; checks that it exists and has the JSON's size.

        How image files are read (16-bit, palette, alpha, CMYK, EXIF orientation): ``datasets.images``.
        """
        info = self.images[index]
        path = self.image_dir / info["file_name"]
        return read_rgb(path, expect_hw=(info["height"], info["width"]),
                        context=f"image id {info['id']} in {self.ann_file}")

    def _boxes_masks(self, anns, h: int, w: int):
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        masks = np.zeros((len(anns), h, w), np.uint8)
        for k, a in enumerate(anns):
            masks[k] = _decode(a["segmentation"], h, w)
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
        """(N, K, 3) float32 from the flat COCO lists [x1, y1, v1, x2, ...] (checked up front)."""
        k = len(self.keypoint_names)
        return np.array([a["keypoints"] for a in anns], np.float32).reshape(len(anns), k, 3)

    def __repr__(self) -> str:
        n = sum(map(len, self._targets.values()))
        return (f"CocoDataset({str(self.ann_file)!r}: {len(self)} images, {n} instances, "
                f"{len(self.class_names) - 1} classes, {self.num_dropped_degenerate} degenerate dropped)")
