"""The COCO-format reader: polygons, RLE (both kinds), crowds, id mapping, bad input."""

import copy
import json

import numpy as np
import pytest
from PIL import Image

from mrcnn_np.datasets.coco import CocoDataset, DatasetError, encode_mask, segmentation_to_mask

H, W = 20, 30


def _square(x0, y0, x1, y1):
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def _uncompressed_rle(mask):
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with 0s."""
    flat = mask.ravel(order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    return {"size": [H, W], "counts": counts}


def make_data():
    """One image with every kind of annotation, one image with none."""
    crowd = _square(20, 10, 30, 20)
    return {
        "images": [{"id": 7, "file_name": "a.png", "height": H, "width": W},
                   {"id": 9, "file_name": "b.png", "height": H, "width": W}],
        "categories": [{"id": 40, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": [
            # polygon with two parts: squares [2,6)x[2,6) and [10,14)x[2,6)
            {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0, "area": 32, "bbox": [2, 2, 12, 4],
             "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6], [10, 2, 14, 2, 14, 6, 10, 6]]},
            {"id": 2, "image_id": 7, "category_id": 40, "iscrowd": 0, "area": 12, "bbox": [0, 10, 4, 3],
             "segmentation": _uncompressed_rle(_square(0, 10, 4, 13))},
            {"id": 3, "image_id": 7, "category_id": 3, "iscrowd": 0, "area": 9, "bbox": [15, 15, 3, 3],
             "segmentation": encode_mask(_square(15, 15, 18, 18))},
            {"id": 4, "image_id": 7, "category_id": 40, "iscrowd": 1, "area": 100, "bbox": [20, 10, 10, 10],
             "segmentation": _uncompressed_rle(crowd)},
            {"id": 5, "image_id": 7, "category_id": 3, "iscrowd": 0, "area": 0, "bbox": [5, 5, 0, 4],
             "segmentation": [[5, 5, 5, 9, 5, 7]]},  # degenerate: zero width
            {"id": 6, "image_id": 7, "category_id": 3, "iscrowd": 0, "area": 0, "bbox": [1, 1, 2, 2],
             "segmentation": [[1, 1, 3, 3]]},  # polygon of two points only
        ],
    }


def write(tmp_path, data, images=True):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    if images:
        for im in data["images"]:
            Image.fromarray(np.full((im["height"], im["width"], 3), 100, np.uint8)).save(tmp_path / im["file_name"])
    return ann


def test_reads_every_segmentation_kind(tmp_path):
    ds = CocoDataset(write(tmp_path, make_data()), tmp_path)
    assert len(ds) == 2 and ds.image_ids == [7, 9]
    assert ds.class_names == ["background", "cat", "dog"]  # sorted by category id: 3, 40
    assert ds.cat_id_to_label == {3: 1, 40: 2} and ds.label_to_cat_id == {1: 3, 2: 40}
    assert ds.num_dropped_degenerate == 2
    s = ds[0]
    assert s["image"].shape == (H, W, 3) and s["image"].dtype == np.uint8 and s["image_id"] == 7
    np.testing.assert_array_equal(s["labels"], [1, 2, 1])
    np.testing.assert_array_equal(s["boxes"], [[2, 2, 14, 6], [0, 10, 4, 13], [15, 15, 18, 18]])
    assert s["boxes"].dtype == np.float32 and s["labels"].dtype == np.int64
    np.testing.assert_array_equal(s["masks"][0], _square(2, 2, 6, 6) | _square(10, 2, 14, 6))
    np.testing.assert_array_equal(s["masks"][1], _square(0, 10, 4, 13))
    np.testing.assert_array_equal(s["masks"][2], _square(15, 15, 18, 18))
    np.testing.assert_array_equal(s["crowd_boxes"], [[20, 10, 30, 20]])
    np.testing.assert_array_equal(s["crowd_masks"][0], _square(20, 10, 30, 20))
    assert "degenerate" in repr(ds)


def test_image_without_annotations(tmp_path):
    ds = CocoDataset(write(tmp_path, make_data()), tmp_path)
    s = ds[1]
    assert s["boxes"].shape == (0, 4) and s["labels"].shape == (0,) and s["masks"].shape == (0, H, W)
    assert s["crowd_masks"].shape == (0, H, W)
    assert ds[-1]["image_id"] == 9
    with pytest.raises(IndexError):
        ds[2]


def test_polygon_and_rle_agree():
    poly = [[2, 2, 6, 2, 6, 6, 2, 6]]
    m = segmentation_to_mask(poly, H, W)
    np.testing.assert_array_equal(segmentation_to_mask(encode_mask(m), H, W), m)
    np.testing.assert_array_equal(segmentation_to_mask(_uncompressed_rle(m), H, W), m)
    assert isinstance(encode_mask(m)["counts"], str)


def test_box_outside_the_image_is_dropped(tmp_path):
    data = make_data()
    data["annotations"] = [{"id": 1, "image_id": 9, "category_id": 3, "bbox": [40, 2, 5, 5],
                            "segmentation": [[40, 2, 45, 2, 45, 7]]}]
    s = CocoDataset(write(tmp_path, data), tmp_path)[1]
    assert s["boxes"].shape == (0, 4) and np.isfinite(s["boxes"]).all()


def _break(path, value):
    """Copy of make_data() with the entry at ``path`` (a tuple of keys) set, or removed if value is None."""
    data = copy.deepcopy(make_data())
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize("path, value, expected", [
    (("images",), None, "missing top-level key 'images'"),
    (("annotations",), {"a": 1}, "'annotations' must be a list"),
    (("images", 0, "file_name"), None, "images[0] has no 'file_name' field"),
    (("images", 1, "id"), "9", "images[1] field 'id' must be an integer"),
    (("categories", 0, "name"), 5, "categories[0] field 'name' must be a string"),
    (("annotations", 1, "image_id"), 123, "annotations[1] field 'image_id' = 123 is not in 'images'"),
    (("annotations", 2, "category_id"), 99, "annotations[2] field 'category_id' = 99 is not in 'categories'"),
    (("annotations", 0, "bbox"), [1, 2, 3], "annotations[0] field 'bbox' must be 4 finite numbers"),
    (("annotations", 0, "segmentation"), None, "annotations[0] has no 'segmentation' field"),
    (("annotations", 0, "segmentation"), 5, "annotations[0] field 'segmentation' must be"),
    (("annotations", 2, "segmentation", "size"), [5, 5], "annotations[2] field 'segmentation' has size"),
    (("annotations", 3), "text", "annotations[3] must be an object"),
])
def test_bad_json_fields_are_named(tmp_path, path, value, expected):
    ann = write(tmp_path, _break(path, value), images=False)
    with pytest.raises(DatasetError) as e:
        CocoDataset(ann, tmp_path)
    assert str(ann) in str(e.value) and expected in str(e.value)


def test_malformed_and_missing_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(DatasetError, match="bad.json: malformed JSON"):
        CocoDataset(bad, tmp_path)
    with pytest.raises(DatasetError, match="nothere.json: annotation file not found"):
        CocoDataset(tmp_path / "nothere.json", tmp_path)
    bad.write_text("[1, 2]")
    with pytest.raises(DatasetError, match="top level must be a JSON object"):
        CocoDataset(bad, tmp_path)


def test_image_files_are_checked_when_loaded(tmp_path):
    ann = write(tmp_path, make_data(), images=False)
    ds = CocoDataset(ann, tmp_path)  # the constructor does not open images
    with pytest.raises(DatasetError, match=r"a\.png: image file not found \(image id 7"):
        ds[0]
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(DatasetError, match="a.png: image is 5x5"):
        ds[0]
    (tmp_path / "b.png").write_text("not a png")
    with pytest.raises(DatasetError, match="b.png: cannot read image"):
        ds[1]


def test_pycocotools_object_is_the_ground_truth(tmp_path):
    ds = CocoDataset(write(tmp_path, make_data()), tmp_path)
    assert sorted(ds.coco.getImgIds()) == [7, 9] and sorted(ds.coco.getCatIds()) == [3, 40]
    # The ground truth is the checked file: the two dropped (degenerate) annotations 5, 6 are not in it
    # (before the up-front check it held all 6, and such entries crashed COCOeval).
    assert sorted(ds.coco.getAnnIds(imgIds=[7])) == [1, 2, 3, 4]
    assert all(ds.coco.anns[i]["iscrowd"] in (0, 1) and ds.coco.anns[i]["area"] >= 0 for i in (1, 2, 3, 4))
