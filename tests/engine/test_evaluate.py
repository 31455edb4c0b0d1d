"""COCO evaluation wrapper: conversions, perfect predictions, agreement with pycocotools."""

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval

from mrcnn_np.datasets.coco import CocoDataset, encode_mask
from mrcnn_np.datasets.shapes import generate_shapes
from mrcnn_np.engine.evaluate import STAT_NAMES, evaluate_coco, format_table, predictions_to_coco


@pytest.fixture(scope="module")
def shapes_val(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    generate_shapes(root, 0, 8, size=64, seed=3, progress=False)
    return CocoDataset(root / "annotations" / "val.json", root / "val")


def gt_predictions(ds):
    preds = []
    for i in range(len(ds)):
        s = ds[i]
        preds.append(dict(image_id=s["image_id"], boxes=s["boxes"], labels=s["labels"],
                          scores=np.linspace(1.0, 0.5, len(s["labels"])), masks=s["masks"]))
    return preds


def test_ground_truth_scores_one(shapes_val, capsys):
    out = evaluate_coco(gt_predictions(shapes_val), shapes_val)
    for iou_type in ("bbox", "segm"):
        for name in ("AP", "AP50", "AP75", "AR100"):
            assert out[iou_type]["stats"][name] == pytest.approx(1.0)
        assert all(v == pytest.approx(1.0) for v in out[iou_type]["per_class"].values())
    printed = capsys.readouterr().out
    assert "AP50" in printed and "per-class AP" in printed and "Average Precision" not in printed


def test_conversion_to_coco_results(shapes_val):
    preds = gt_predictions(shapes_val)[:1]
    s = shapes_val[0]
    box = predictions_to_coco(preds, shapes_val.coco, shapes_val.label_to_cat_id, "bbox")
    seg = predictions_to_coco(preds, shapes_val.coco, shapes_val.label_to_cat_id, "segm")
    x1, y1, x2, y2 = s["boxes"][0]
    assert box[0]["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1])
    assert box[0]["category_id"] == shapes_val.label_to_cat_id[int(s["labels"][0])]
    assert "bbox" not in seg[0] and isinstance(seg[0]["segmentation"]["counts"], str)
    assert seg[0]["segmentation"] == encode_mask(s["masks"][0])
    json.dumps(box + seg)  # JSON-ready


def _perturbed(ds, rng):
    """GT with jittered boxes, eroded/shifted masks, a few label swaps, random scores, extra FPs."""
    preds = []
    for p in gt_predictions(ds):
        n = len(p["labels"])
        boxes = p["boxes"] + rng.uniform(-3, 3, p["boxes"].shape).astype(np.float32)
        masks = np.roll(p["masks"], rng.integers(-2, 3), axis=2)
        labels = np.where(rng.random(n) < 0.2, rng.integers(1, 6, n), p["labels"])
        fp_box = np.array([[0, 0, 10, 12]], np.float32)
        fp_mask = np.zeros((1,) + masks.shape[1:], np.uint8)
        fp_mask[0, :12, :10] = 1
        preds.append(dict(image_id=p["image_id"], boxes=np.concatenate([boxes, fp_box]),
                          labels=np.concatenate([labels, [2]]), scores=rng.random(n + 1),
                          masks=np.concatenate([masks, fp_mask])))
    return preds


def test_matches_pycocotools_called_directly(shapes_val, rng):
    preds = _perturbed(shapes_val, rng)
    ours = evaluate_coco(preds, shapes_val, print_table=False)
    # The same detections written as COCO result dicts by hand, evaluated by pycocotools alone.
    for iou_type in ("bbox", "segm"):
        results = []
        for p in preds:
            for k in range(len(p["labels"])):
                e = {"image_id": p["image_id"], "score": float(p["scores"][k]),
                     "category_id": shapes_val.label_to_cat_id[int(p["labels"][k])]}
                if iou_type == "bbox":
                    b = p["boxes"][k].astype(float)
                    e["bbox"] = [b[0], b[1], b[2] - b[0], b[3] - b[1]]
                else:
                    e["segmentation"] = encode_mask(p["masks"][k])
                results.append(e)
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(shapes_val.coco, shapes_val.coco.loadRes(results), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        np.testing.assert_allclose([ours[iou_type]["stats"][n] for n in STAT_NAMES], ev.stats, rtol=0, atol=1e-12)
        assert 0.1 < ours[iou_type]["stats"]["AP50"] < 1.0  # the perturbation matters


def test_float_masks_are_thresholded_at_half(shapes_val):
    preds = gt_predictions(shapes_val)
    for p in preds:
        p["masks"] = (p["masks"] * 0.6 + 0.2)[:, None]  # (N, 1, H, W): inside 0.8, outside 0.2
    out = evaluate_coco(preds, shapes_val, iou_types=("segm",), print_table=False)
    assert out["segm"]["stats"]["AP"] == pytest.approx(1.0)


def test_subset_of_images(shapes_val):
    preds = gt_predictions(shapes_val)[:3]
    whole = evaluate_coco(preds, shapes_val, print_table=False)
    subset = evaluate_coco(preds, shapes_val, print_table=False, image_ids=[p["image_id"] for p in preds])
    assert whole["bbox"]["stats"]["AR100"] < 1.0  # the other images' objects are missed
    assert subset["bbox"]["stats"]["AP"] == pytest.approx(1.0) and subset["segm"]["stats"]["AR100"] == 1.0


def test_no_predictions_is_zero_not_a_crash(shapes_val):
    empty = [dict(image_id=i, boxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64),
                  scores=np.zeros(0), masks=np.zeros((0, 64, 64), np.uint8)) for i in shapes_val.image_ids]
    for preds in ([], empty, [dict(image_id=1, boxes=[], labels=[], scores=[])]):
        out = evaluate_coco(preds, shapes_val, iou_types=("bbox", "segm"), print_table=False)
        assert out["bbox"]["stats"]["AP"] == 0.0 and out["segm"]["stats"]["AR100"] == 0.0


def test_reference_toy_case(tmp_path):
    """docs/REFERENCE.md §15 (v5.py): one 120x100 image, two GT, three detections."""
    data = {
        "images": [{"id": 1, "file_name": "x.png", "width": 120, "height": 100}],
        "categories": [{"id": 1, "name": "a"}, {"id": 3, "name": "b"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 30], "area": 1200, "iscrowd": 0,
             "segmentation": [[10, 10, 50, 10, 50, 40, 10, 40]]},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [60, 50, 50, 40], "area": 2000, "iscrowd": 0,
             "segmentation": [[60, 50, 110, 50, 110, 90, 60, 90]]},
        ],
    }
    (tmp_path / "toy.json").write_text(json.dumps(data))
    ds = CocoDataset(tmp_path / "toy.json", tmp_path)
    assert ds.label_to_cat_id == {1: 1, 2: 3}
    preds = [dict(image_id=1, boxes=np.array([[10, 10, 50, 40], [60, 50, 110, 80], [0, 0, 5, 5]], np.float32),
                  labels=np.array([1, 2, 2]), scores=np.array([0.9, 0.8, 0.95]))]
    out = evaluate_coco(preds, ds, print_table=False)
    assert list(out) == ["bbox"]  # no masks: bbox only
    expected = [0.65, 0.75, 0.75, -1, 0.8, -1, 0.5, 0.8, 0.8, -1, 0.8, -1]
    np.testing.assert_allclose([out["bbox"]["stats"][n] for n in STAT_NAMES], expected, atol=1e-12)
    assert out["bbox"]["per_class"] == pytest.approx({"a": 1.0, "b": 0.3})


@pytest.mark.parametrize("change, expected", [
    (dict(image_id=999), "image_id'] = 999 is not an image"),
    (dict(labels=np.array([9])), "has labels [9] outside 1..5"),
    (dict(masks=np.zeros((1, 5, 5), np.uint8)), "masks'] must have shape"),
    (dict(scores=np.array([np.nan])), "contains NaN"),
    (dict(boxes=np.zeros((2, 4), np.float32)), "same length"),
])
def test_bad_predictions_are_named(shapes_val, change, expected):
    p = dict(image_id=shapes_val.image_ids[0], boxes=np.array([[0, 0, 5, 5]], np.float32), labels=np.array([1]),
             scores=np.array([0.5]), masks=np.zeros((1, 64, 64), np.uint8))
    p.update(change)
    with pytest.raises(ValueError) as e:
        evaluate_coco([p], shapes_val, iou_types=("bbox", "segm"), print_table=False)
    assert str(e.value).startswith("predictions[0]") and expected in str(e.value)


def test_segm_without_masks_is_an_error(shapes_val):
    p = dict(image_id=shapes_val.image_ids[0], boxes=np.array([[0, 0, 5, 5]], np.float32),
             labels=np.array([1]), scores=np.array([0.5]))
    with pytest.raises(ValueError, match="has no 'masks'"):
        evaluate_coco([p], shapes_val, iou_types=("segm",), print_table=False)


def test_format_table():
    res = {"bbox": {"stats": dict.fromkeys(STAT_NAMES, 0.25), "per_class": {"circle": 0.5}}}
    text = format_table(res)
    assert "AP75" in text and "0.250" in text and "circle" in text and "0.500" in text
