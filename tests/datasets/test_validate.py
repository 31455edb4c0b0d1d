"""The up-front check of a COCO file (datasets/validate.py): every hostile case is refused
with a line naming the file and the field, dropped with a count, or kept as documented;
and whatever the reader accepts, COCOeval then evaluates without crashing or hanging."""

import copy
import json

import numpy as np
import pytest
from PIL import Image

from mrcnn_np.datasets.coco import CocoDataset, DatasetError, encode_mask, segmentation_to_mask
from mrcnn_np.datasets.validate import (
    DROP_EMPTY_BOX, DROP_NO_POLYGON, DROP_OUTSIDE, FIX_AREA, FIX_ISCROWD, FIX_SHORT_PART, decode_rle_string,
)

H, W = 20, 30


def _square(x0, y0, x1, y1):
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


SQUARE = [[2, 2, 8, 2, 8, 8, 2, 8]]  # the pixels [2, 8) x [2, 8)


def _ann(i, **fields):
    ann = {"id": i, "image_id": 1, "category_id": 3, "iscrowd": 0, "area": 36, "bbox": [2, 2, 6, 6],
           "segmentation": copy.deepcopy(SQUARE)}
    ann.update(fields)
    return {k: v for k, v in ann.items() if v is not DELETE}


DELETE = object()


def _data(*anns):
    return {"images": [{"id": 1, "file_name": "a.png", "height": H, "width": W}],
            "categories": [{"id": 3, "name": "cat"}], "annotations": list(anns)}


def _write(tmp_path, data):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))  # NaN is written as the JSON extension NaN, which json.load reads
    for im in data["images"]:
        if isinstance(im, dict) and "file_name" in im and not (tmp_path / im["file_name"]).exists():
            Image.fromarray(np.full((H, W, 3), 100, np.uint8)).save(tmp_path / im["file_name"])
    return ann


def _refused(tmp_path, data, *expected):
    ann = _write(tmp_path, data)
    with pytest.raises(DatasetError) as e:
        CocoDataset(ann, tmp_path)
    msg = str(e.value)
    assert msg.startswith(str(ann)) and "\n" not in msg
    for text in expected:
        assert text in msg, msg
    return msg


# ---------------------------------------------------------------- refused: polygons (issue 16, item 1)

@pytest.mark.parametrize("part, expected", [
    ([2, 2, float("nan"), 2, 8, 8], "polygon 0 has a NaN or infinite coordinate"),
    ([2, 2, float("inf"), 2, 8, 8], "polygon 0 has a NaN or infinite coordinate"),
    ([2, 2, 3e9, 2, 8, 8], "polygon 0 has a coordinate far outside the 30x20"),
    ([2, 2, 8, -3e9, 8, 8], "polygon 0 has a coordinate far outside"),
    ([2, 2, 8, 2, 8], "polygon 0 has 5 numbers, needs x, y pairs"),
    ([2, 2, "8", 2, 8, 8], "polygon 0 must be a list of numbers"),
    ([[2, 2], [8, 2], [8, 8]], "polygon 0 must be a list of numbers"),
])
def test_bad_polygons_are_refused(tmp_path, part, expected):
    msg = _refused(tmp_path, _data(_ann(1), _ann(42, segmentation=[part])), expected)
    assert "annotations[1] field 'segmentation'" in msg and "(annotation id 42)" in msg


def test_bad_polygons_never_reach_pycocotools():
    for part in ([2, 2, float("nan"), 2, 8, 8], [2, 2, 3e9, 2, 8, 8]):
        with pytest.raises(ValueError, match="polygon 0"):
            segmentation_to_mask([part], H, W)


def test_polygon_near_the_image_is_kept():
    # up to one image size beyond each side is allowed (annotation tools overshoot a little)
    m = segmentation_to_mask([[-W, -H, 2 * W, -H, 2 * W, 2 * H, -W, 2 * H]], H, W)
    assert m.all()


# ---------------------------------------------------------------- refused: RLE (item 2)

def _rle(mask):
    return encode_mask(mask)


def _list_rle(mask):
    flat = mask.ravel(order="F")
    changes = np.flatnonzero(np.diff(np.r_[0, flat, 1 - flat[-1]]))  # run boundaries, starting with a 0-run
    return {"size": list(mask.shape), "counts": np.diff(np.r_[0, changes]).tolist()}


def test_rle_string_decoder_matches_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = (rng.random((H, W)) < rng.random()).astype(np.uint8)
        runs = decode_rle_string(_rle(m)["counts"])
        assert sum(runs) == H * W
        np.testing.assert_array_equal(np.repeat(np.arange(len(runs)) % 2, runs).reshape(W, H).T, m)
        assert _list_rle(m)["counts"] == runs


@pytest.mark.parametrize("segm, expected", [
    ({"size": [H, W], "counts": _rle(np.ones((10, 10), np.uint8))["counts"]}, "runs cover 100 pixels"),
    ({"size": [H, W], "counts": _rle(np.ones((40, 30), np.uint8))["counts"]}, "runs cover 1200 pixels"),
    ({"size": [H, W], "counts": "!!garbage!!"}, "not a COCO compressed string: character '!'"),
    ({"size": [H, W], "counts": "0o"}, "ends inside a number"),
    ({"size": [H, W], "counts": ""}, "runs cover 0 pixels"),
    ({"size": [H, W], "counts": [10, 20]}, "runs cover 30 pixels"),
    ({"size": [H, W], "counts": [0, 700]}, "runs cover 700 pixels"),
    ({"size": [H, W], "counts": [700, -100]}, "negative run length"),
    ({"size": [H, W], "counts": [300.0, 300]}, "'counts' must be a compressed string or a list of integers"),
    ({"size": [H, W], "counts": 5}, "'counts' must be a compressed string or a list of integers"),
    ({"size": [W, H], "counts": [600]}, "has size [30, 20] but its image is [height, width] = [20, 30]"),
    ({"size": "20x30", "counts": [600]}, "has size 20x30"),
    ({"counts": [600]}, "needs 'counts' and 'size'"),
])
def test_bad_rle_is_refused(tmp_path, segm, expected):
    msg = _refused(tmp_path, _data(_ann(1), _ann(42, segmentation=segm)), expected)
    assert "annotations[1] field 'segmentation'" in msg and "(annotation id 42)" in msg
    with pytest.raises(ValueError):
        segmentation_to_mask(segm, H, W)  # the public rasteriser checks too: no uninitialised memory


def test_good_rle_of_both_kinds_reads_back():
    m = _square(3, 4, 9, 12)
    np.testing.assert_array_equal(segmentation_to_mask(_rle(m), H, W), m)
    np.testing.assert_array_equal(segmentation_to_mask(_list_rle(m), H, W), m)


# ---------------------------------------------------------------- refused: other fields

@pytest.mark.parametrize("fields, expected", [
    ({"iscrowd": 2}, "field 'iscrowd' must be 0 or 1, got 2"),
    ({"iscrowd": "yes"}, "field 'iscrowd' must be 0 or 1"),
    ({"area": float("nan")}, "field 'area' must be a finite number >= 0"),
    ({"area": -5}, "field 'area' must be a finite number >= 0"),
    ({"area": "36"}, "field 'area' must be a finite number >= 0"),
    ({"bbox": [2, 2, float("nan"), 6]}, "annotations[1] field 'bbox' must be 4 finite numbers"),
    ({"bbox": [2, 2, True, 6]}, "annotations[1] field 'bbox' must be 4 finite numbers"),
    ({"bbox": [2, 2, 1e300, 6]}, "annotations[1] field 'bbox' must be 4 finite numbers (within float32's range)"),
    ({"category_id": 99}, "annotations[1] field 'category_id' = 99 is not in 'categories'"),
    ({"image_id": 5}, "annotations[1] field 'image_id' = 5 is not in 'images'"),
    ({"id": 1}, "'annotations' has duplicate ids: annotations[0] and annotations[1] both have id 1"),
])
def test_bad_annotation_fields_are_refused(tmp_path, fields, expected):
    _refused(tmp_path, _data(_ann(1), _ann(42, **fields)), expected)


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(images={"id": 1}), "'images' must be a list, got dict"),
    (lambda d: d["images"][0].update(height=0), "images[0] field 'height' = 0 is not in 1..20000"),
    (lambda d: d["images"][0].update(width=10 ** 9), "images[0] field 'width' = 1000000000 is not in 1..20000"),
    (lambda d: d["images"].append(dict(d["images"][0])), "'images' has duplicate ids"),
    (lambda d: d["categories"].append({"id": 3, "name": "dog"}), "'categories' has duplicate ids"),
])
def test_bad_images_and_categories_are_refused(tmp_path, change, expected):
    data = _data(_ann(1))
    change(data)
    _refused(tmp_path, data, expected)


def test_over_long_integer_and_deep_nesting_are_malformed_json(tmp_path):
    ann = tmp_path / "ann.json"
    ann.write_text('{"images": [], "annotations": [], "categories": [], "x": ' + "9" * 5000 + "}")
    with pytest.raises(DatasetError, match="malformed JSON"):
        CocoDataset(ann, tmp_path)
    ann.write_text('{"x": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(DatasetError, match="malformed JSON"):
        CocoDataset(ann, tmp_path)


# ---------------------------------------------------------------- dropped with a count, or kept (item 4)

def test_degenerate_annotations_are_dropped_and_counted(tmp_path):
    data = _data(
        _ann(1),
        _ann(2, segmentation=[]),                         # no polygon at all
        _ann(3, segmentation=[[2, 2, 8, 2]]),             # one part of 4 numbers (2 points)
        _ann(4, segmentation=[[2, 2]]),                   # a 2-number polygon
        _ann(5, bbox=[2, 2, -6, 6]),                      # negative width
        _ann(6, bbox=[2, 2, 6, 0]),                       # zero height
        _ann(7, bbox=[40, 2, 5, 5]),                      # wholly right of the image
        _ann(8, segmentation=[[2, 2, 8, 2], SQUARE[0]]),  # a short part beside a good one: part removed, kept
    )
    ds = CocoDataset(_write(tmp_path, data), tmp_path)
    assert ds.dropped == {DROP_NO_POLYGON: 3, DROP_EMPTY_BOX: 2, DROP_OUTSIDE: 1}
    assert ds.num_dropped_degenerate == 6 and ds.fixed == {FIX_SHORT_PART: 1}
    assert sorted(ds.coco.getAnnIds()) == [1, 8]  # the ground truth holds only what is trained on
    s = ds[0]
    assert len(s["boxes"]) == 2
    np.testing.assert_array_equal(s["masks"][1], _square(2, 2, 8, 8))
    assert "dropped: 3 annotation(s): polygon with < 3 points" in ds.report


def test_missing_iscrowd_and_area_are_filled_in(tmp_path):
    crowd_rle = _list_rle(_square(20, 10, 30, 20))
    data = _data(_ann(1, iscrowd=DELETE, area=DELETE),
                 _ann(2, iscrowd=1, area=DELETE, bbox=[20, 10, 10, 10], segmentation=crowd_rle),
                 _ann(3, iscrowd=True, bbox=[10, 10, 4, 4], segmentation=[[10, 10, 14, 10, 14, 14, 10, 14]]))
    ds = CocoDataset(_write(tmp_path, data), tmp_path)
    assert ds.fixed == {FIX_ISCROWD: 1, FIX_AREA: 2} and ds.dropped == {}
    assert ds.coco.anns[1]["iscrowd"] == 0 and ds.coco.anns[1]["area"] == 36
    assert ds.coco.anns[2]["area"] == 100 and ds.coco.anns[3]["iscrowd"] == 1
    s = ds[0]
    assert len(s["boxes"]) == 1 and len(s["crowd_boxes"]) == 2  # a crowd given as a polygon stays a crowd


def test_evaluation_of_every_accepted_quirk_does_not_crash(tmp_path):
    """What the reader accepts, COCOeval evaluates: predictions = ground truth give AP 1."""
    from mrcnn_np.engine.evaluate import evaluate_coco

    data = _data(
        _ann(1, iscrowd=DELETE, area=DELETE),
        _ann(2, segmentation=[]), _ann(3, segmentation=[[2, 2, 8, 2]]), _ann(4, segmentation=[[2, 2]]),
        _ann(5, bbox=[12, 3, 6, 5], segmentation=_list_rle(_square(12, 3, 18, 8)), area=DELETE),
        _ann(6, bbox=[20, 10, 6, 6], segmentation=_rle(_square(20, 10, 26, 16)), iscrowd=DELETE),
        _ann(7, bbox=[0, 12, 8, 8], segmentation=[[0, 12, 8, 12], [0, 12, 8, 12, 8, 20, 0, 20]]),
        _ann(8, iscrowd=1, bbox=[24, 0, 6, 6], segmentation=[[24, 0, 30, 0, 30, 6, 24, 6]]),
    )
    ds = CocoDataset(_write(tmp_path, data), tmp_path)
    s = ds[0]
    pred = dict(image_id=1, boxes=s["boxes"], labels=s["labels"], scores=np.ones(len(s["boxes"])), masks=s["masks"])
    out = evaluate_coco([pred], ds, print_table=False)
    assert out["bbox"]["stats"]["AP"] == pytest.approx(1.0) and out["segm"]["stats"]["AP"] == pytest.approx(1.0)


def test_duplicate_category_names_are_refused(tmp_path):
    data = _data(_ann(1))
    data["categories"].append({"id": 4, "name": "cat"})
    _refused(tmp_path, data, "categories[1] field 'name' = 'cat' is also the name of categories[0]")


# ---------------------------------------------------------------- keypoint files

def _kp_data(*anns, **cat):
    data = _data(*anns)
    data["categories"][0].update({"keypoints": ["a", "b"], "skeleton": [[1, 2]], **cat})
    return data


@pytest.mark.parametrize("cat, kp, expected", [
    ({}, [1, 2, 2, 3, 4], "annotations[0] field 'keypoints' must be 3 x 2 finite numbers"),
    ({}, [1, 2, 2, 3, float("nan"), 2], "field 'keypoints' must be 3 x 2 finite numbers"),
    ({}, [1, 2, 3, 3, 4, 2], "visibility flag v not in {0, 1, 2}"),
    ({}, "1 2 2 3 4 2", "field 'keypoints' must be 3 x 2 finite numbers"),
    ({"keypoints": "a b"}, [1, 2, 2, 3, 4, 2], "categories[0] field 'keypoints' must be a list of names"),
    ({"skeleton": [[1, 3]]}, [1, 2, 2, 3, 4, 2], "categories[0] field 'skeleton' must be a list of [a, b]"),
    ({"skeleton": [1, 2]}, [1, 2, 2, 3, 4, 2], "categories[0] field 'skeleton' must be a list of [a, b]"),
])
def test_bad_keypoints_are_refused(tmp_path, cat, kp, expected):
    _refused(tmp_path, _kp_data(_ann(1, keypoints=kp, num_keypoints=2), **cat), expected)


def test_keypoint_ground_truth_is_completed_and_evaluates(tmp_path):
    from mrcnn_np.datasets.validate import FIX_KEYPOINTS, FIX_NUM_KEYPOINTS
    from mrcnn_np.engine.evaluate_keypoints import evaluate_keypoints

    data = _kp_data(_ann(1, keypoints=[3, 3, 2, 6, 6, 1]),
                    _ann(2, bbox=[12, 10, 6, 6], segmentation=[[12, 10, 18, 10, 18, 16, 12, 16]]))
    ds = CocoDataset(_write(tmp_path, data), tmp_path)
    assert ds.fixed == {FIX_KEYPOINTS: 1, FIX_NUM_KEYPOINTS: 2}
    assert ds.coco.anns[1]["num_keypoints"] == 2 and ds.coco.anns[2]["keypoints"] == [0] * 6
    s = ds[0]
    np.testing.assert_array_equal(s["keypoints"][1], np.zeros((2, 3)))
    pred = dict(image_id=1, boxes=s["boxes"], labels=s["labels"], scores=np.ones(2), keypoints=s["keypoints"])
    res = evaluate_keypoints([pred], ds, sigmas=[0.05, 0.05], print_table=False)["keypoints"]["stats"]
    assert res["AP"] == pytest.approx(1.0)  # the unlabelled figure is ignored, not a crash (KeyError)
