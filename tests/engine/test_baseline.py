"""The classical (non-learned) baseline: its building blocks and that it detects shapes."""

import numpy as np
import pytest

from mrcnn_np.datasets.coco import CocoDataset
from mrcnn_np.datasets.shapes import SHAPES, generate_shapes, random_scene, rasterize, shape_polygon
from mrcnn_np.engine.baseline import (
    baseline_predict, convex_hull_area, fit_background, label_components, run_baseline, shape_features,
)
from mrcnn_np.engine.evaluate import evaluate_coco


def test_label_components_by_connectivity_and_colour():
    fg = np.zeros((6, 8), bool)
    fg[1:3, 1:3] = True   # blob A
    fg[4, 0:8] = True     # blob B (a row), split by colour in the middle
    fg[1, 6] = True       # C, diagonal neighbour of nothing
    colours = np.zeros((6, 8, 3), np.float32)
    colours[4, 4:] = 200.0
    lab = label_components(fg, colours, 40.0)
    assert lab[~fg].max() == 0
    assert len(np.unique(lab[fg])) == 4  # A, B-left, B-right, C
    assert len(np.unique(lab[1:3, 1:3])) == 1 and lab[4, 3] != lab[4, 4]
    assert sorted(np.unique(lab[fg])) == [1, 2, 3, 4]  # relabelled 1..n in scan order
    assert len(np.unique(label_components(fg, colours, 1000.0)[fg])) == 3


def test_convex_hull_area():
    square = np.array([[0, 0], [4, 0], [4, 4], [0, 4], [2, 2], [1, 3]])
    assert convex_hull_area(square) == pytest.approx(16.0)
    assert convex_hull_area(np.array([[0, 0], [6, 0], [0, 3], [1, 1]])) == pytest.approx(9.0)
    assert convex_hull_area(np.array([[0, 0], [1, 1], [2, 2]])) == 0.0  # collinear


def test_features_separate_ideal_shapes():
    feats = {n: shape_features(rasterize(shape_polygon(n, 40, 40, 30, 0.3), 80))[:2] for n in SHAPES}
    assert feats["circle"][1] > feats["hexagon"][1] > feats["square"][1] > feats["triangle"][1]
    assert feats["star"][0] < 0.7 < min(feats[n][0] for n in SHAPES if n != "star")


def test_background_fit_recovers_a_gradient():
    yy, xx = np.mgrid[0:32, 0:32]
    bg = np.stack([50 + 2 * xx, 80 + yy, 120 + 0 * xx], axis=2).astype(float)
    img = bg.copy()
    img[10:16, 10:16] = 250  # an object is an outlier
    np.testing.assert_allclose(fit_background(img), bg, atol=1e-6)


@pytest.mark.parametrize("name", SHAPES)
def test_single_large_shape_is_found_and_named(name):
    s = random_scene(0, min_objects=1, max_objects=1, min_size=50, max_size=60, classes=(name,))
    names = ["background", *SHAPES]
    p = baseline_predict(s["image"], names)
    assert len(p["labels"]) == 1 and names[p["labels"][0]] == name
    gt = s["masks"][0].astype(bool)
    pm = p["masks"][0].astype(bool)
    assert (gt & pm).sum() / (gt | pm).sum() > 0.9
    assert 0 < p["scores"][0] <= 1


def test_baseline_ap_on_a_small_set(tmp_path):
    generate_shapes(tmp_path, 0, 12, size=128, seed=0, progress=False)
    ds = CocoDataset(tmp_path / "annotations" / "val.json", tmp_path / "val")
    preds = run_baseline(ds)
    assert [p["image_id"] for p in preds] == ds.image_ids
    out = evaluate_coco(preds, ds, print_table=False)
    assert 0.2 < out["segm"]["stats"]["AP"] < 1.0  # imperfect, but far better than nothing


def test_small_isolated_shapes_are_mostly_named_right():
    names = ["background", *SHAPES]
    right = total = 0
    for seed in range(40):
        s = random_scene(seed, min_objects=1, max_objects=1, min_size=10, max_size=16)
        p = baseline_predict(s["image"], names)
        total += 1
        right += len(p["labels"]) == 1 and p["labels"][0] == s["labels"][0]
    assert right / total >= 0.8, f"{right}/{total}"
