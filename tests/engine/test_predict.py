"""Predictions on files and the error analysis: hits / false positives / misses, COCO entries,
score filtering, and the drawings of loss curves and errors."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mrcnn_np.engine.predict import detections_to_coco, keep_confident, match_to_ground_truth  # noqa: E402
from mrcnn_np.viz import draw_errors, plot_losses  # noqa: E402

GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], np.float32)
GT_LABELS = np.array([1, 1, 2])


def test_match_hits_false_positives_and_misses():
    boxes = np.array([[0, 0, 10, 10],     # hit on object 0
                      [1, 0, 11, 10],     # duplicate of object 0: a false positive
                      [20, 20, 30, 30],   # right place, wrong class: false positive
                      [60, 60, 70, 70]],  # nothing there
                     np.float32)
    labels = np.array([1, 1, 2, 2])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    hit, missed = match_to_ground_truth(boxes, labels, scores, GT, GT_LABELS)
    assert hit.tolist() == [True, False, False, False]
    assert missed.tolist() == [False, True, True]
    # the higher-scored duplicate takes the object
    hit, _ = match_to_ground_truth(boxes[:2], labels[:2], np.array([0.1, 0.9]), GT, GT_LABELS)
    assert hit.tolist() == [False, True]


def test_match_threshold_and_empty_inputs():
    shifted = np.array([[5, 0, 15, 10]], np.float32)  # IoU 1/3 with object 0
    assert match_to_ground_truth(shifted, [1], [1.0], GT, GT_LABELS, iou_thresh=0.3)[0].tolist() == [True]
    assert match_to_ground_truth(shifted, [1], [1.0], GT, GT_LABELS, iou_thresh=0.5)[0].tolist() == [False]
    hit, missed = match_to_ground_truth(np.zeros((0, 4)), [], [], GT, GT_LABELS)
    assert hit.shape == (0,) and missed.all()
    hit, missed = match_to_ground_truth(shifted, [1], [1.0], np.zeros((0, 4)), [])
    assert hit.tolist() == [False] and missed.shape == (0,)


def test_keep_confident_and_coco_entries():
    masks = np.zeros((2, 12, 12), np.float32)
    masks[0, 2:5, 3:7] = 0.9
    masks[1, :, :] = 0.4
    dets = {"boxes": np.array([[3, 2, 7, 5], [0, 0, 12, 12]], np.float32), "scores": np.array([0.8, 0.3]),
            "labels": np.array([1, 2]), "masks": masks}
    kept = keep_confident(dets, 0.5)
    assert len(kept["boxes"]) == 1 and kept["masks"].shape == (1, 12, 12)
    entries = detections_to_coco(dets, image_id=4, label_to_cat_id={1: 7, 2: 9}, first_id=10)
    assert [e["id"] for e in entries] == [10, 11] and [e["category_id"] for e in entries] == [7, 9]
    assert entries[0]["bbox"] == [3.0, 2.0, 4.0, 3.0] and entries[0]["area"] == 12
    assert entries[1]["area"] == 0  # probabilities below 0.5 are outside the mask
    assert entries[0]["score"] == pytest.approx(0.8)


def test_drawings_return_axes():
    import matplotlib.pyplot as plt

    log = {"iteration": np.arange(30), "loss_cls": np.linspace(2, 1, 30), "total": np.linspace(3, 1.5, 30)}
    ax = plot_losses(log, window=5)
    assert len(ax.lines) == 4 and [t.get_text() for t in ax.get_legend().get_texts()] == ["loss_cls", "total"]
    short = plot_losses({"iteration": np.arange(3), "total": np.ones(3)}, window=5)  # too short to smooth
    assert len(short.lines) == 1 and short.lines[0].get_label() == "total"
    image = np.zeros((60, 60, 3), np.uint8)
    ax = draw_errors(image, GT[:2], [1, 1], np.array([True, False]), GT, GT_LABELS, np.array([False, True, True]),
                     class_names=["bg", "a", "b"], scores=[0.9, 0.5])
    assert len(ax.patches) == 4 and {t.get_text() for t in ax.texts} == {"a 0.90", "FP a 0.50", "miss a", "miss b"}
    plt.close("all")
