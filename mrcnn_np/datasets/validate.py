"""Checking a COCO instance file once, up front: refuse it, drop an annotation, or keep it.

pycocotools trusts its input: a polygon with a NaN or a 3e9 coordinate crashes its
rasteriser (or fills the memory), an RLE whose runs do not add up to height x width gives
a mask of uninitialised memory or makes COCOeval loop, a 2-number polygon or a missing
``iscrowd`` raises deep inside COCOeval. So ``CocoDataset`` passes every file through
``check_coco`` before anything is rasterised or trained, and both the training targets
and the evaluation ground truth (``CocoDataset.coco``) are built from its result.

Decisions (``DatasetError`` = the file is refused with one line naming the file, the
entry (``annotations[17] (id 42)``) and the field):

    case                                              decision
    ------------------------------------------------  --------------------------------------
    top level not an object; images/annotations/      refuse
      categories missing or not lists
    entry not an object; a required field missing     refuse (images: id, file_name, height,
      or of the wrong type                              width; categories: id, name;
                                                        annotations: id, image_id,
                                                        category_id, bbox, segmentation)
    image height/width outside 1..MAX_SIDE            refuse
    duplicate image, category or annotation id        refuse
    two categories with the same name                 refuse (results are reported per name)
    annotation image_id / category_id unknown         refuse
    bbox not 4 finite numbers (float32 range)         refuse
    bbox width or height <= 0                         drop, counted
    bbox wholly outside the image (empty once         drop, counted
      clipped to it)
    polygon coordinate NaN/inf, not a number, an      refuse
      odd count, or more than one image size
      outside the image (x not in [-W, 2W], y not
      in [-H, 2H])
    polygon part with < 6 numbers (< 3 points)        part removed, counted; no part left
                                                        (also ``segmentation: []``) -> drop
    RLE without counts/size, size != the image's      refuse
      [height, width], counts not a string or a
      list of non-negative integers, a string that
      is not COCO's compressed format, runs not
      adding up to height x width
    iscrowd missing                                   keep as 0, counted
    iscrowd not 0/1                                   refuse
    crowd given as polygons                           keep (a crowd region, any encoding)
    area missing                                      keep, area = mask pixel count, counted
    area not a finite number >= 0                     refuse
    keypoint file (a category lists 'keypoints'):
      category keypoints not a list of strings,       refuse
        skeleton not pairs of 1-based indices
      annotation keypoints not 3 x K finite numbers   refuse
        with v in {0, 1, 2}
      keypoints missing                               keep, K unlabelled [0, 0, 0], counted
      num_keypoints missing                           keep, = labelled count, counted
      num_keypoints not an integer >= 0               refuse

Image files are checked when read (``datasets.images``): missing, unreadable, truncated,
or of another size than the JSON's width/height -> refuse.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

_FLOAT32_MAX = float(np.finfo(np.float32).max)  # boxes become float32 targets
MAX_SIDE = 20000  # largest image side accepted (COCO's are <= 640): a mask must fit in memory


class DatasetError(ValueError):
    """A COCO file or image that cannot be read; the message names the file and the field."""


# Reasons an annotation is dropped (keys of CheckedCoco.dropped) or kept with a change (.fixed).
DROP_EMPTY_BOX = "bbox width or height <= 0"
DROP_OUTSIDE = "bbox outside the image"
DROP_NO_POLYGON = "polygon with < 3 points (or segmentation [])"
FIX_SHORT_PART = "polygon parts with < 3 points removed"
FIX_ISCROWD = "no 'iscrowd' (taken as 0)"
FIX_AREA = "no 'area' (computed from the mask)"
FIX_KEYPOINTS = "no 'keypoints' (all unlabelled)"
FIX_NUM_KEYPOINTS = "no 'num_keypoints' (counted)"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def decode_rle_string(counts: str) -> list:
    """Run lengths of COCO's compressed RLE string (pycocotools' rleFrString, in Python).

    Each run is a little-endian base-32 number, 5 bits per character (char - 48), bit 0x20
    = "more characters follow", bit 0x10 of the last one = negative; runs after the third
    are stored as the difference to the run two places before. Raises ValueError for a
    character outside '0'..'o' or a string that ends inside a number.
    """
    runs, x, k = [], 0, 0
    for ch in counts:
        c = ord(ch) - 48
        if not 0 <= c < 64:
            raise ValueError(f"character {ch!r} is not in COCO's compressed RLE alphabet ('0'..'o')")
        x |= (c & 0x1F) << (5 * k)
        k += 1
        if c & 0x20:
            continue
        if c & 0x10:
            x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
        x, k = 0, 0
    if k:
        raise ValueError("the string ends inside a number")
    return runs


def check_segmentation(segm, height: int, width: int) -> tuple:
    """Validate one COCO segmentation for an image of ``height x width``.

    Returns (cleaned segmentation, number of polygon parts removed for having < 3 points).
    A cleaned polygon list may be empty (nothing left to draw). Raises ValueError with
    the reason (the caller adds the file and entry).
    """
    if isinstance(segm, list):
        kept = []
        for j, part in enumerate(segm):
            if not isinstance(part, list) or not all(_is_number(v) for v in part):
                raise ValueError(f"field 'segmentation' polygon {j} must be a list of numbers [x0, y0, x1, y1, ...]")
            if not all(math.isfinite(v) for v in part):
                raise ValueError(f"field 'segmentation' polygon {j} has a NaN or infinite coordinate")
            if len(part) % 2:
                raise ValueError(f"field 'segmentation' polygon {j} has {len(part)} numbers, needs x, y pairs")
            xs, ys = part[0::2], part[1::2]
            if xs and (min(xs) < -width or max(xs) > 2 * width or min(ys) < -height or max(ys) > 2 * height):
                raise ValueError(f"field 'segmentation' polygon {j} has a coordinate far outside the {width}x{height} "
                                 f"(WxH) image (x in [{min(xs):.6g}, {max(xs):.6g}], y in [{min(ys):.6g}, "
                                 f"{max(ys):.6g}]; allowed: one image size beyond each side)")
            if len(part) >= 6:
                kept.append(part)
        return kept, len(segm) - len(kept)
    if not isinstance(segm, dict):
        raise ValueError(f"field 'segmentation' must be a polygon list or an RLE object, got {type(segm).__name__}")
    if "counts" not in segm or "size" not in segm:
        raise ValueError("field 'segmentation' (RLE) needs 'counts' and 'size'")
    size = segm["size"]
    if not isinstance(size, list) or size != [height, width]:
        raise ValueError(f"field 'segmentation' has size {size} but its image is [height, width] = {[height, width]}")
    counts = segm["counts"]
    if isinstance(counts, str):
        try:
            runs = decode_rle_string(counts)
        except ValueError as e:
            raise ValueError(f"field 'segmentation' (RLE) 'counts' is not a COCO compressed string: {e}") from None
    elif isinstance(counts, list) and all(_is_int(v) for v in counts):
        runs = counts
    else:
        raise ValueError("field 'segmentation' (RLE) 'counts' must be a compressed string or a list of integers")
    if any(r < 0 for r in runs):
        raise ValueError("field 'segmentation' (RLE) 'counts' has a negative run length")
    if sum(runs) != height * width:
        raise ValueError(f"field 'segmentation' (RLE) runs cover {sum(runs)} pixels, the image has "
                         f"height x width = {height * width}")
    return {"size": [height, width], "counts": counts}, 0


def segmentation_rle(segm, height: int, width: int) -> dict:
    """pycocotools RLE of a segmentation that ``check_segmentation`` returned (None: empty polygon)."""
    from pycocotools import mask as mask_utils  # noqa: PLC0415

    if isinstance(segm, list):
        return mask_utils.merge(mask_utils.frPyObjects(segm, height, width)) if segm else None
    if isinstance(segm["counts"], list):
        return mask_utils.frPyObjects(segm, height, width)
    return {"size": segm["size"], "counts": segm["counts"].encode("ascii")}


@dataclass
class CheckedCoco:
    """``check_coco``'s result: the entries to use and what was dropped or filled in.

    annotations: kept annotations, copies with ``segmentation`` cleaned, ``iscrowd`` (0/1)
    and ``area`` always present (and ``keypoints``/``num_keypoints`` in a keypoint file).
    dropped, fixed: Counter {reason: number of annotations}.
    """

    images: list
    categories: list
    annotations: list
    keypoint_names: list | None
    skeleton: list | None
    dropped: Counter = field(default_factory=Counter)
    fixed: Counter = field(default_factory=Counter)


def _fail(ann_file, where: str, message: str, ann_id=None):
    """Raise ``file: where message`` (+ the annotation's id, which a user can search for)."""
    raise DatasetError(f"{ann_file}: {where} {message}" + ("" if ann_id is None else f" (annotation id {ann_id})"))


def check_fields(ann_file, where: str, entry, fields: dict) -> None:
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


def _unique_ids(ann_file, key: str, entries: list) -> None:
    seen = {}
    for i, e in enumerate(entries):
        if e["id"] in seen:
            raise DatasetError(f"{ann_file}: '{key}' has duplicate ids: {key}[{seen[e['id']]}] and {key}[{i}] "
                               f"both have id {e['id']}")
        seen[e["id"]] = i


def _keypoint_spec(ann_file, categories: list):
    """(names, 0-based skeleton) of the file's keypoint categories, or (None, None)."""
    kp_cats = []
    for i, c in enumerate(categories):
        names = c.get("keypoints")
        if names is None or names == []:
            continue
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            _fail(ann_file, f"categories[{i}]", "field 'keypoints' must be a list of names (strings)")
        skeleton = c.get("skeleton", [])
        if not isinstance(skeleton, list) or not all(
                isinstance(e, list) and len(e) == 2 and all(_is_int(v) and 1 <= v <= len(names) for v in e)
                for e in skeleton):
            _fail(ann_file, f"categories[{i}]", f"field 'skeleton' must be a list of [a, b] keypoint numbers "
                                                f"in 1..{len(names)}")
        kp_cats.append(c)
    if not kp_cats:
        return None, None
    if len({tuple(c["keypoints"]) for c in kp_cats}) > 1:
        raise DatasetError(f"{ann_file}: categories list different 'keypoints'; one keypoint set per file")
    return list(kp_cats[0]["keypoints"]), [[a - 1, b - 1] for a, b in kp_cats[0].get("skeleton", [])]


def _check_keypoints(ann_file, where: str, ann: dict, out: dict, k: int, fixed: Counter) -> None:
    kp = ann.get("keypoints")
    if kp is None:
        kp = [0] * (3 * k)
        fixed[FIX_KEYPOINTS] += 1
    if not isinstance(kp, list) or len(kp) != 3 * k or not all(_is_number(v) and math.isfinite(v) for v in kp):
        n = len(kp) if isinstance(kp, list) else type(kp).__name__
        _fail(ann_file, where, f"field 'keypoints' must be 3 x {k} finite numbers (x, y, v per keypoint), "
                               f"got {n} values", ann["id"])
    if any(v not in (0, 1, 2) for v in kp[2::3]):
        _fail(ann_file, where, "field 'keypoints' has a visibility flag v not in {0, 1, 2}", ann["id"])
    labelled = sum(v > 0 for v in kp[2::3])
    if "num_keypoints" not in ann:
        fixed[FIX_NUM_KEYPOINTS] += 1
    elif not _is_int(ann["num_keypoints"]) or ann["num_keypoints"] < 0:
        _fail(ann_file, where, f"field 'num_keypoints' must be an integer >= 0, got {ann['num_keypoints']!r}",
              ann["id"])
    out["keypoints"], out["num_keypoints"] = kp, ann.get("num_keypoints", labelled)


def _area(segm, h: int, w: int) -> float:
    from pycocotools import mask as mask_utils  # noqa: PLC0415

    rle = segmentation_rle(segm, h, w)
    return 0.0 if rle is None else float(mask_utils.area(rle))


def check_coco(ann_file, data: dict) -> CheckedCoco:
    """Validate a parsed COCO instance file (see the module docstring for every decision)."""
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise DatasetError(f"{ann_file}: missing top-level key '{key}'")
        if not isinstance(data[key], list):
            raise DatasetError(f"{ann_file}: '{key}' must be a list, got {type(data[key]).__name__}")
    for i, img in enumerate(data["images"]):
        check_fields(ann_file, f"images[{i}]", img, _IMAGE_FIELDS)
        for side in ("height", "width"):
            if not 1 <= img[side] <= MAX_SIDE:
                _fail(ann_file, f"images[{i}]", f"field '{side}' = {img[side]} is not in 1..{MAX_SIDE} "
                                                f"(image id {img['id']})")
    for i, cat in enumerate(data["categories"]):
        check_fields(ann_file, f"categories[{i}]", cat, _CAT_FIELDS)
    _unique_ids(ann_file, "images", data["images"])
    _unique_ids(ann_file, "categories", data["categories"])
    names_seen = {}
    for i, cat in enumerate(data["categories"]):  # results are reported per class name: no two alike
        if cat["name"] in names_seen:
            _fail(ann_file, f"categories[{i}]", f"field 'name' = {cat['name']!r} is also the name of "
                                                f"categories[{names_seen[cat['name']]}]")
        names_seen[cat["name"]] = i
    for i, ann in enumerate(data["annotations"]):
        check_fields(ann_file, f"annotations[{i}]", ann, _ANN_FIELDS)
    _unique_ids(ann_file, "annotations", data["annotations"])
    names, skeleton = _keypoint_spec(ann_file, data["categories"])
    sizes = {img["id"]: (img["height"], img["width"]) for img in data["images"]}
    cat_ids = {cat["id"] for cat in data["categories"]}
    out = CheckedCoco(data["images"], data["categories"], [], names, skeleton)
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        box = ann["bbox"]
        if len(box) != 4 or not all(_is_number(v) and abs(v) <= _FLOAT32_MAX for v in box):  # NaN fails too
            raise DatasetError(f"{ann_file}: {where} field 'bbox' must be 4 finite numbers (within float32's "
                               f"range), got {str(box)[:80]}")
        if ann["image_id"] not in sizes:
            raise DatasetError(f"{ann_file}: {where} field 'image_id' = {ann['image_id']} is not in 'images'")
        if ann["category_id"] not in cat_ids:
            raise DatasetError(f"{ann_file}: {where} field 'category_id' = {ann['category_id']} "
                               f"is not in 'categories'")
        h, w = sizes[ann["image_id"]]
        try:
            segm, removed = check_segmentation(ann["segmentation"], h, w)
        except ValueError as e:
            _fail(ann_file, where, str(e), ann['id'])
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1):  # True/False compare equal to 1/0
            _fail(ann_file, where, f"field 'iscrowd' must be 0 or 1, got {crowd!r}", ann['id'])
        area = ann.get("area")
        if area is not None and not (_is_number(area) and math.isfinite(area) and area >= 0):
            _fail(ann_file, where, f"field 'area' must be a finite number >= 0, got {area!r}", ann['id'])
        clean = dict(ann, segmentation=segm, iscrowd=int(crowd))
        if names is not None:
            _check_keypoints(ann_file, where, ann, clean, len(names), out.fixed)
        # Drop decisions, once the whole entry is known to be well formed.
        x1, y1, bw, bh = np.asarray(box, np.float32)  # float32: the same arithmetic as the targets
        if not (bw > 0 and bh > 0):
            out.dropped[DROP_EMPTY_BOX] += 1
            continue
        if not (min(x1 + bw, w) > max(x1, 0) and min(y1 + bh, h) > max(y1, 0)):
            out.dropped[DROP_OUTSIDE] += 1
            continue
        if isinstance(segm, list) and not segm:
            out.dropped[DROP_NO_POLYGON] += 1
            continue
        out.fixed[FIX_SHORT_PART] += removed
        if "iscrowd" not in ann:
            out.fixed[FIX_ISCROWD] += 1
        if area is None:
            clean["area"] = _area(segm, h, w)
            out.fixed[FIX_AREA] += 1
        out.annotations.append(clean)
    out.fixed = Counter({k: v for k, v in out.fixed.items() if v})
    return out


def format_report(checked: CheckedCoco) -> str:
    """Lines 'dropped: N reason' / 'kept, fixed: N reason' (empty string if nothing happened)."""
    lines = [f"  dropped: {n} annotation(s): {reason}" for reason, n in sorted(checked.dropped.items())]
    lines += [f"  kept, fixed: {n}: {reason}" for reason, n in sorted(checked.fixed.items())]
    return "\n".join(lines)
