"""Drawing helpers of the images/instances section of mrcnn_np.viz."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mrcnn_np.datasets.shapes import random_scene  # noqa: E402
from mrcnn_np.viz import draw_instances, overlay_masks, show_samples  # noqa: E402


def test_draw_instances_draws_every_instance():
    s = random_scene(4, min_objects=3, max_objects=3)
    ax = draw_instances(s["image"], s["boxes"], s["labels"], s["masks"], np.array([0.9, 0.5, 0.25]),
                        s["class_names"])
    assert len(ax.patches) == 3
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == f"{s['class_names'][s['labels'][0]]} 0.90" and texts[2].endswith("0.25")
    plt.close(ax.figure)


def test_draw_instances_float_image_and_no_instances():
    ax = draw_instances(np.full((8, 8, 3), 0.5))
    assert len(ax.patches) == 0 and len(ax.images) == 1
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="image must have shape"):
        draw_instances(np.zeros((8, 8)))


def test_overlay_tints_only_mask_pixels():
    img = np.full((4, 4, 3), 100, np.uint8)
    masks = np.zeros((1, 4, 4), np.float32)
    masks[0, :2] = 0.9  # probabilities: > 0.5 is inside
    masks[0, 2] = 0.4
    out = overlay_masks(img, masks)
    np.testing.assert_allclose(out[2:], 100 / 255)
    assert not np.allclose(out[:2], 100 / 255)


def test_show_samples_grid():
    scenes = [random_scene(i, size=64) for i in range(5)]
    fig = show_samples(scenes, n=5, cols=3)
    assert len(fig.axes) == 6 and not fig.axes[5].axison
    assert sum(len(ax.patches) for ax in fig.axes) == sum(len(s["labels"]) for s in scenes)
    plt.close(fig)


# --- issue 19's pictures: ignored anchors sampled, NMS classes coloured, zoom past the edge,
# --- error labels that do not overlap

def test_draw_matches_samples_ignored_anchors_and_legend_counts():
    from mrcnn_np.viz import draw_matches

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (700, 2))
    anchors = np.concatenate([xy, xy + 20], 1)
    matches = np.full(700, -2)
    matches[:5], matches[5:100] = 0, -1  # 5 positives of GT 0, 95 negatives, 600 ignored
    ax = draw_matches(np.zeros((64, 64, 3), np.uint8), anchors, matches, np.array([[10., 10, 30, 30]]),
                      show_negatives=10)
    dashed = [p for p in ax.patches if p.get_linestyle() == "--"]
    assert len(dashed) == 40 and len(ax.patches) == 5 + 40 + 10 + 1
    legend = " | ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert "all 5" in legend and "40 drawn of 600" in legend and "10 drawn of 95" in legend
    plt.close("all")


def test_draw_nms_step_colours_boxes_by_class_with_a_legend():
    from mrcnn_np.viz import draw_nms_step

    boxes = np.array([[0., 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [21, 21, 31, 31]])
    classes = np.array([0, 0, 1, 1])
    ax = draw_nms_step(boxes, np.ones(4), [0, 2], [1, 3], classes=classes)
    edge = [p.get_edgecolor()[:3] for p in ax.patches]
    assert edge[0] == edge[1] and edge[2] == edge[3] and edge[0] != edge[2]
    assert [p.get_linestyle() for p in ax.patches] == ["-", "--", "-", "--"]
    assert {"class 0", "class 1", "kept", "suppressed"} <= {t.get_text() for t in ax.get_legend().get_texts()}
    with pytest.raises(ValueError, match="classes has 3 entries for 4 boxes"):
        draw_nms_step(boxes, np.ones(4), [], [], classes=[0, 1, 2])
    plt.close("all")


def test_draw_mask_target_marks_the_area_outside_the_image():
    from mrcnn_np.viz import draw_mask_target

    mask = np.zeros((40, 40))
    mask[30:, 30:] = 1
    edge, _ = draw_mask_target(mask, [28, 28, 40, 40], np.ones((28, 28)), margin=0.6)
    hatched = [p for p in edge.patches if p.get_hatch()]
    assert len(hatched) == 1 and any("outside the image" in t.get_text() for t in edge.texts)
    inside, _ = draw_mask_target(mask, [15, 15, 25, 25], np.ones((28, 28)), margin=0.3)
    assert not [p for p in inside.patches if p.get_hatch()] and not inside.texts
    plt.close("all")


def test_draw_errors_labels_do_not_overlap():
    from mrcnn_np.viz import draw_errors

    gt = np.array([[10., 10, 40, 40], [12, 12, 42, 42], [11, 11, 41, 41]])
    dets = np.array([[10., 10, 40, 40], [11, 10, 40, 41], [10, 11, 41, 40], [12, 12, 42, 42]])
    fig, ax = plt.subplots(figsize=(3.3, 3.6))
    draw_errors(np.zeros((60, 60, 3), np.uint8), dets, [1, 1, 2, 1], np.array([True, False, False, True]),
                gt, [1, 1, 2], np.array([False, False, True]), scores=[0.9, 0.8, 0.7, 0.6], ax=ax)
    fig.tight_layout()
    fig.canvas.draw()
    from matplotlib.text import Text

    extents = [Text.get_window_extent(t) for t in ax.texts]  # the label itself, not its leader line
    assert len(extents) == 5
    for i in range(len(extents)):
        for j in range(i):
            assert not extents[i].overlaps(extents[j]), (ax.texts[i].get_text(), ax.texts[j].get_text())
    plt.close("all")
