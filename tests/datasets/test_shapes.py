"""The synthetic shapes scenes: determinism, occlusion invariants, COCO output."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from mrcnn_np.datasets.coco import CocoDataset, segmentation_to_mask
from mrcnn_np.datasets.shapes import (
    CATEGORY_IDS, ShapesConfig, ensure_shapes, format_statistics, generate_shapes, random_scene,
    scene_seed,
)

CROWDED = dict(min_objects=6, max_objects=10, overlap_prob=1.0)


def test_scene_contract():
    s = random_scene(3)
    n = len(s["labels"])
    assert s["image"].shape == (128, 128, 3) and s["image"].dtype == np.uint8
    assert s["boxes"].shape == (n, 4) and s["boxes"].dtype == np.float32
    assert s["labels"].dtype == np.int64 and s["masks"].shape == (n, 128, 128) and s["masks"].dtype == np.uint8
    assert s["class_names"][0] == "background" and len(s["class_names"]) == 6
    assert set(np.unique(s["masks"])) <= {0, 1}
    assert ((s["labels"] >= 1) & (s["labels"] <= 5)).all()


def test_deterministic_for_a_seed():
    a, b, c = random_scene(11), random_scene(11), random_scene(12)
    for key in ("image", "boxes", "labels", "masks"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["image"], c["image"])


def test_upright_shapes_change_only_the_angle():
    seen = set()
    for seed in range(6):
        rotated = random_scene(seed, min_size=30, overlap_prob=0.0)
        upright = random_scene(seed, min_size=30, overlap_prob=0.0, rotate=False)
        np.testing.assert_array_equal(rotated["labels"], upright["labels"])    # same objects, same places
        for a, b in zip(rotated["amodal_masks"], upright["amodal_masks"]):
            assert np.abs(np.argwhere(a).mean(0) - np.argwhere(b).mean(0)).max() < 2.0
        for label, mask in zip(upright["labels"], upright["amodal_masks"]):
            name = upright["class_names"][label]
            ys, xs = np.nonzero(mask)
            if name == "square":          # stands on a side: fills its bounding box
                assert mask.sum() > 0.9 * (np.ptp(ys) + 1) * (np.ptp(xs) + 1)
            if name == "triangle":        # points up: narrow top rows, wide bottom rows
                top, bottom = mask[ys.min():ys.min() + 3].sum(), mask[ys.max() - 2:ys.max() + 1].sum()
                assert top < bottom / 3
            seen.add(name)
    assert {"square", "triangle"} <= seen


@pytest.mark.parametrize("seed", range(30))
def test_occlusion_invariants(seed):
    cfg = ShapesConfig(**CROWDED)
    s = random_scene(seed, config=cfg)
    masks = s["masks"].astype(int)
    assert masks.sum(0).max() <= 1, "a pixel belongs to two instances"
    for box, m in zip(s["boxes"], s["masks"]):
        ys, xs = np.nonzero(m)
        np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])  # tight
        assert len(xs) >= cfg.min_visible_pixels
        # A mask holds only pixels of its own object: one flat colour plus noise (clipped).
        # A hidden part of an earlier object left in its mask would show another colour.
        assert s["image"][m.astype(bool)].std(axis=0).max() < 2 * cfg.noise_std


@given(seed=st.integers(0, 2**31), size=st.sampled_from([32, 64, 96]), n=st.integers(0, 8),
       min_size=st.floats(2, 12), extra=st.floats(0, 20), overlap=st.floats(0, 1))
def test_invariants_for_any_config(seed, size, n, min_size, extra, overlap):
    cfg = ShapesConfig(image_size=size, min_objects=n, max_objects=n + 2, min_size=min_size,
                       max_size=min(min_size + extra, size), overlap_prob=overlap)
    s = random_scene(seed, config=cfg)
    k = len(s["labels"])
    assert s["masks"].shape == (k, size, size) and s["boxes"].shape == (k, 4)
    assert k + s["n_dropped"] >= n  # every drawn object is either kept or counted as dropped
    assert s["masks"].astype(int).sum(0).max(initial=0) <= 1
    assert (s["masks"] <= s["amodal_masks"]).all()
    for box, m in zip(s["boxes"], s["masks"]):
        ys, xs = np.nonzero(m)
        assert len(xs) >= cfg.min_visible_pixels
        np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_visible_mask_is_the_amodal_mask_minus_what_later_objects_cover():
    for seed in range(10):
        s = random_scene(seed, **CROWDED)
        vis, full = s["masks"].astype(bool), s["amodal_masks"].astype(bool)
        for k in range(len(vis)):
            covered_later = full[k + 1:].any(axis=0) if k + 1 < len(vis) else np.zeros_like(vis[k])
            np.testing.assert_array_equal(vis[k], full[k] & ~covered_later)
        np.testing.assert_array_equal(s["occluded"], vis.sum((1, 2)) < full.sum((1, 2)))


def test_occlusion_happens_and_is_counted():
    scenes = [random_scene(seed, **CROWDED) for seed in range(20)]
    assert sum(s["occluded"].sum() for s in scenes) > 10
    assert sum(s["n_dropped"] for s in scenes) > 0
    free = [random_scene(seed, max_objects=1) for seed in range(5)]
    assert not any(s["occluded"].any() or s["n_dropped"] for s in free)


def test_config_sizes_and_classes():
    s = random_scene(0, size=64, min_objects=5, max_objects=5, min_size=4, max_size=10, overlap_prob=0,
                     classes=("star", "circle"))
    assert s["image"].shape == (64, 64, 3)
    assert s["class_names"] == ["background", "star", "circle"]
    wh = s["boxes"][:, 2:] - s["boxes"][:, :2]
    assert (wh <= 11).all()


@pytest.mark.parametrize("bad", [dict(min_objects=3, max_objects=2), dict(min_size=0), dict(classes=("blob",)),
                                 dict(overlap_prob=2.0), dict(image_size=8), dict(min_size=80)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        ShapesConfig(**bad)


def test_config_and_options_together_is_an_error():
    with pytest.raises(ValueError, match="either config"):
        random_scene(0, config=ShapesConfig(), max_objects=2)


def test_image_i_does_not_depend_on_set_size(tmp_path):
    generate_shapes(tmp_path / "a", 2, 1, size=64, seed=5, progress=False)
    generate_shapes(tmp_path / "b", 4, 3, size=64, seed=5, progress=False)
    for split, name in (("train", "000001.png"), ("val", "000000.png")):
        a = np.asarray(Image.open(tmp_path / "a" / split / name))
        b = np.asarray(Image.open(tmp_path / "b" / split / name))
        np.testing.assert_array_equal(a, b)
    assert scene_seed(5, "train", 1) != scene_seed(5, "val", 1) != scene_seed(6, "val", 1)


def test_coco_output_round_trip(tmp_path):
    stats = generate_shapes(tmp_path, 3, 4, size=96, seed=1, progress=False)
    data = json.loads((tmp_path / "annotations" / "val.json").read_text())
    ids = sorted(c["id"] for c in data["categories"])
    assert ids[0] > 1 and ids != list(range(ids[0], ids[0] + len(ids)))  # not 0/1-based, not contiguous
    for ann in data["annotations"]:
        assert isinstance(ann["segmentation"]["counts"], str) and ann["iscrowd"] == 0
    ds = CocoDataset(tmp_path / "annotations" / "val.json", tmp_path / "val")
    assert len(ds) == 4 and stats["val"]["images"] == 4
    assert sum(stats["val"]["per_class"].values()) == stats["val"]["instances"] == len(data["annotations"])
    for i in range(4):
        scene = random_scene(scene_seed(1, "val", i), size=96)
        item = ds[i]
        np.testing.assert_array_equal(item["image"], scene["image"])  # PNG is lossless
        np.testing.assert_array_equal(item["masks"], scene["masks"])
        np.testing.assert_array_equal(item["boxes"], scene["boxes"])
        # contiguous label -> COCO id -> the same class name, both ways
        for lab in item["labels"]:
            name = ds.class_names[lab]
            assert ds.label_to_cat_id[lab] == CATEGORY_IDS[name]
            assert ds.cat_id_to_label[CATEGORY_IDS[name]] == lab
        np.testing.assert_array_equal(item["labels"], [ds.cat_id_to_label[CATEGORY_IDS[scene["class_names"][k]]]
                                                       for k in scene["labels"]])
    for ann in data["annotations"]:  # area = mask pixel count, bbox = tight xywh
        m = segmentation_to_mask(ann["segmentation"], 96, 96)
        assert ann["area"] == int(m.sum())
        ys, xs = np.nonzero(m)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]


def test_statistics_and_reuse(tmp_path):
    reused, stats = ensure_shapes(tmp_path, 2, 2, size=64, seed=0, progress=False)
    assert not reused and stats["train"]["images"] == 2
    text = format_statistics(stats)
    assert "train: 2 images" in text and "occluded" in text
    stamp = (tmp_path / "annotations" / "train.json").stat().st_mtime_ns
    reused, again = ensure_shapes(tmp_path, 2, 2, size=64, seed=0, progress=False)
    assert reused and again == stats
    assert (tmp_path / "annotations" / "train.json").stat().st_mtime_ns == stamp
    reused, _ = ensure_shapes(tmp_path, 2, 2, size=64, seed=1, progress=False)  # other seed: regenerate
    assert not reused
    (tmp_path / "params.json").write_text("{broken")
    reused, _ = ensure_shapes(tmp_path, 2, 2, size=64, seed=1, progress=False)
    assert not reused
