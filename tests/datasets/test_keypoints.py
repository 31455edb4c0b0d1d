"""Synthetic stick-figure keypoint scenes, their COCO keypoint JSON read back by CocoDataset,
flipping keypoints in the data pipeline, and COCO keypoint AP (evaluate_keypoints)."""

import json

import numpy as np
import pytest

from mrcnn_np.datasets.coco import CocoDataset, DatasetError
from mrcnn_np.datasets.keypoints import (CATEGORY, KEYPOINT_NAMES, SKELETON, KeypointsConfig, ensure_keypoints,
                                         generate_keypoints, random_keypoint_scene)
from mrcnn_np.detection.keypoint_head import keypoint_flip_map
from mrcnn_np.engine.data import BatchLoader, hflip, sample_to_input, shapes_split
from mrcnn_np.engine.evaluate_keypoints import evaluate_keypoints, keypoint_sigmas

K = len(KEYPOINT_NAMES)


@pytest.fixture(scope="module")
def kp_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("kp")
    stats = generate_keypoints(out, n_train=8, n_val=12, size=96, seed=1, progress=False)
    return out, stats


# ---------------------------------------------------------------- scenes
def test_scene_shapes_and_determinism():
    a, b = random_keypoint_scene(7), random_keypoint_scene(7)
    n = len(a["boxes"])
    assert a["image"].shape == (128, 128, 3) and a["image"].dtype == np.uint8
    assert a["keypoints"].shape == (n, K, 3) and a["keypoints"].dtype == np.float32
    assert a["masks"].shape == (n, 128, 128) and (a["labels"] == 1).all()
    for key in ("image", "boxes", "masks", "keypoints"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["image"], random_keypoint_scene(8)["image"])


def test_visibility_flags_follow_coco():
    counts = np.zeros(3, int)
    for seed in range(40):
        sc = random_keypoint_scene(seed, 96)
        for mask, kp in zip(sc["masks"], sc["keypoints"]):
            x, y, v = kp[:, 0], kp[:, 1], kp[:, 2]
            counts += np.bincount(v.astype(int), minlength=3)
            assert ((x[v == 0] == 0) & (y[v == 0] == 0)).all()           # unlabelled: x = y = 0
            lab = v > 0
            assert ((x[lab] >= 0) & (x[lab] < 96) & (y[lab] >= 0) & (y[lab] < 96)).all()
            on_own_pixel = mask[y[lab].astype(int), x[lab].astype(int)] == 1
            np.testing.assert_array_equal(on_own_pixel, v[lab] == 2)        # visible <=> its pixel shows it
    assert (counts > 0).all(), counts                                       # all three kinds occur
    assert counts[2] > counts[1]                                            # most joints are visible


def test_figures_face_the_viewer():
    # the figure's left shoulder/hip is on the image's right: what the flip map relies on
    for seed in range(20):
        for kp in random_keypoint_scene(seed)["keypoints"]:
            for left, right in ((1, 2), (7, 8)):
                if kp[left, 2] > 0 and kp[right, 2] > 0:
                    assert kp[left, 0] > kp[right, 0]


def test_config_is_checked():
    with pytest.raises(ValueError, match="min_height"):
        KeypointsConfig(min_height=200)
    with pytest.raises(ValueError, match="occluder_prob"):
        KeypointsConfig(occluder_prob=1.5)
    with pytest.raises(ValueError, match="not both"):
        random_keypoint_scene(0, config=KeypointsConfig(), min_figures=2)


# ---------------------------------------------------------------- COCO JSON written and read back
def test_coco_keypoint_json_round_trip(kp_data):
    out, stats = kp_data
    data = json.loads((out / "annotations" / "val.json").read_text())
    assert data["categories"] == [CATEGORY]
    assert data["categories"][0]["skeleton"] == [[a + 1, b + 1] for a, b in SKELETON]     # 1-based in JSON
    ann = data["annotations"][0]
    assert len(ann["keypoints"]) == 3 * K and ann["num_keypoints"] == sum(v > 0 for v in ann["keypoints"][2::3])
    ds = shapes_split(out, "val")
    assert ds.keypoint_names == list(KEYPOINT_NAMES) and ds.skeleton == [list(e) for e in SKELETON]
    n_figures = 0
    for i in range(len(ds)):
        sample = ds[i]
        scene = random_keypoint_scene(_scene_seed(1, "val", i), config=KeypointsConfig(image_size=96))
        np.testing.assert_array_equal(sample["image"], scene["image"])     # PNG is lossless
        np.testing.assert_allclose(sample["keypoints"], scene["keypoints"], atol=1e-4)
        np.testing.assert_array_equal(sample["masks"], scene["masks"])
        n_figures += len(sample["keypoints"])
    assert n_figures == stats["val"]["figures"]


def _scene_seed(seed, split, i):
    from mrcnn_np.datasets.shapes import scene_seed

    return scene_seed(seed, split, i)


def test_files_without_keypoints_give_no_keypoints(tmp_path):
    from mrcnn_np.datasets.shapes import generate_shapes

    generate_shapes(tmp_path, n_train=2, n_val=1, size=64, progress=False)
    ds = shapes_split(tmp_path, "train")
    assert ds.keypoint_names is None and "keypoints" not in ds[0]
    assert "keypoints" not in sample_to_input(ds[0])[1]


def test_bad_keypoint_lists_are_named(kp_data, tmp_path):
    out, _ = kp_data
    data = json.loads((out / "annotations" / "val.json").read_text())
    data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:-3]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    # Checked when the file is loaded (before any training), not when the image is first visited.
    with pytest.raises(DatasetError, match=r"annotations\[0\] field 'keypoints' must be 3 x 13"):
        CocoDataset(bad, out / "val")


def test_ensure_keypoints_reuses_a_complete_set(kp_data, tmp_path):
    reused, stats = ensure_keypoints(tmp_path, n_train=3, n_val=2, size=64, progress=False)
    assert not reused and stats["train"]["images"] == 3
    reused, again = ensure_keypoints(tmp_path, n_train=3, n_val=2, size=64, progress=False)
    assert reused and again == json.loads(json.dumps(stats))


# ---------------------------------------------------------------- flips in the data pipeline
def test_hflip_swaps_left_and_right(kp_data):
    out, _ = kp_data
    ds = shapes_split(out, "train")
    image, target = sample_to_input(ds[0])
    with pytest.raises(ValueError, match="keypoint_flip_map"):
        hflip(image, target)
    fm = keypoint_flip_map(ds.keypoint_names)
    fimage, ft = hflip(image, target, fm)
    w = image.shape[-1]
    for kp, fkp, fmask in zip(target["keypoints"], ft["keypoints"], ft["masks"]):
        np.testing.assert_allclose(fkp[:, 0][fkp[:, 2] > 0], w - kp[fm, 0][kp[fm, 2] > 0])
        vis = fkp[:, 2] == 2                       # a visible joint lies on its (flipped) figure's pixel
        assert (fmask[fkp[vis, 1].astype(int), np.minimum(fkp[vis, 0], w - 1e-3).astype(int)] == 1).mean() > 0.9
        if fkp[1, 2] > 0 and fkp[2, 2] > 0:        # still facing the viewer after the flip
            assert fkp[1, 0] > fkp[2, 0]
    back_image, back = hflip(fimage, ft, fm)
    np.testing.assert_array_equal(back_image, image)
    np.testing.assert_allclose(back["keypoints"], target["keypoints"], atol=1e-4)


def test_batch_loader_flips_keypoints_with_the_data_sets_map(kp_data):
    out, _ = kp_data
    ds = shapes_split(out, "train")
    loader = BatchLoader(ds, 2, np.random.default_rng(0), flip_prob=1.0)
    np.testing.assert_array_equal(loader.keypoint_flip_map, keypoint_flip_map(KEYPOINT_NAMES))
    images, targets, idx = loader.next_batch()
    for t, i in zip(targets, idx):
        raw = sample_to_input(ds[i])[1]["keypoints"]
        assert t["keypoints"].shape == raw.shape
        np.testing.assert_allclose(t["keypoints"][..., 2], raw[:, loader.keypoint_flip_map, 2])


# ---------------------------------------------------------------- keypoint AP
def _gt_predictions(ds, shift=(0.0, 0.0)):
    preds = []
    for i in range(len(ds)):
        s = ds[i]
        kp = s["keypoints"].copy()
        kp[..., :2] += np.array(shift, np.float32)
        preds.append(dict(image_id=s["image_id"], boxes=s["boxes"], labels=s["labels"],
                          scores=np.linspace(1, 0.5, len(s["boxes"])), keypoints=kp))
    return preds


def test_evaluate_keypoints_ground_truth_gives_ap_1(kp_data):
    ds = shapes_split(kp_data[0], "val")
    res = evaluate_keypoints(_gt_predictions(ds), ds, print_table=False)["keypoints"]
    assert res["stats"]["AP"] == pytest.approx(1.0) and res["stats"]["AR"] == pytest.approx(1.0)
    assert res["per_class"] == {"person": pytest.approx(1.0)}
    shifted = evaluate_keypoints(_gt_predictions(ds, (3.0, -2.0)), ds, print_table=False)["keypoints"]["stats"]
    assert 0.0 < shifted["AP"] < 0.9                       # OKS drops with the distance
    empty = [dict(image_id=ds[i]["image_id"], boxes=np.zeros((0, 4)), labels=np.zeros(0, np.int64),
                  scores=np.zeros(0), keypoints=np.zeros((0, K, 3))) for i in range(len(ds))]
    assert evaluate_keypoints(empty, ds, print_table=False)["keypoints"]["stats"]["AP"] == 0.0


def test_evaluate_keypoints_bad_input_is_named(kp_data):
    ds = shapes_split(kp_data[0], "val")
    preds = _gt_predictions(ds)
    first = next(i for i, p in enumerate(preds) if len(p["boxes"]))
    with pytest.raises(ValueError, match="no 'keypoints'"):
        evaluate_keypoints([{k: v for k, v in p.items() if k != "keypoints"} for p in preds], ds)
    preds[first] = dict(preds[first], keypoints=preds[first]["keypoints"][:, :4])
    with pytest.raises(ValueError, match="keypoint types"):
        evaluate_keypoints(preds, ds)
    with pytest.raises(ValueError, match="no OKS sigma"):
        keypoint_sigmas(["head", "tail"])
    with pytest.raises(ValueError, match="one value per keypoint"):
        evaluate_keypoints(_gt_predictions(ds), ds, sigmas=[0.05] * 3)
