"""RPN anchor targets, proposal filtering, box-head sample selection and detection
post-processing, against torchvision (golden values in tests/fixtures/heads.npz, and live
on other seeds), plus hand-checkable cases and bad input."""

import pathlib

import numpy as np
import pytest

from mrcnn_np.detection.box_head import (assign_targets_to_proposals, postprocess_detections,
                                         select_training_samples)
from mrcnn_np.detection.rpn import assign_targets_to_anchors, filter_proposals
from tests.detection._heads_cases import IMAGE_SIZES, make_case, torchvision_outputs

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "heads.npz"


def ours(case, pre_nms_top_n=300, post_nms_top_n=100):
    out = {"rpn_labels": [], "rpn_matched": []}
    for b in case["gt_boxes"]:
        lab, matched = assign_targets_to_anchors(case["anchors"], b)
        out["rpn_labels"].append(lab)
        out["rpn_matched"].append(matched)
    props = filter_proposals(case["anchors"], case["objectness"], case["deltas"], IMAGE_SIZES,
                             case["per_level"], pre_nms_top_n=pre_nms_top_n,
                             post_nms_top_n=post_nms_top_n)
    out["prop_boxes"] = [p[0] for p in props]
    out["prop_scores"] = [p[1] for p in props]
    s = select_training_samples(case["proposals"], case["gt_boxes"], case["gt_labels"],
                                np.random.default_rng(0))
    out.update(s_props=s["proposals"], s_matched=s["matched_idxs"], s_labels=s["labels"],
               s_targets=s["regression_targets"])
    dets = postprocess_detections(case["class_logits"], case["box_regression"], case["proposals"],
                                  IMAGE_SIZES)
    out.update(det_boxes=[d["boxes"] for d in dets], det_scores=[d["scores"] for d in dets],
               det_labels=[d["labels"] for d in dets])
    return out


def assert_same(mine, theirs):
    for key in theirs:
        for i, (a, b) in enumerate(zip(mine[key], theirs[key])):
            assert a.shape == b.shape, (key, i, a.shape, b.shape)
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4, err_msg=f"{key}[{i}]")
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{key}[{i}]")


@pytest.mark.parametrize("seed", [0, 1])
def test_golden_torchvision(seed):
    data = np.load(FIXTURE)
    theirs = {}
    for name in data.files:
        s, rest = name.split("_", 1)
        if s != f"s{seed}":
            continue
        key, i = rest.rsplit("_", 1)
        theirs.setdefault(key, {})[int(i)] = data[name]
    theirs = {k: [v[i] for i in sorted(v)] for k, v in theirs.items()}
    assert set(theirs) >= {"prop_boxes", "det_boxes", "s_targets", "rpn_labels"}
    assert_same(ours(make_case(seed)), theirs)


@pytest.mark.reference
@pytest.mark.parametrize("seed", [2, 3, 4])
@pytest.mark.parametrize("top_n", [(300, 100), (50, 20)])
def test_live_torchvision(seed, top_n):
    case = make_case(seed)
    assert_same(ours(case, *top_n), torchvision_outputs(case, *top_n))


def test_anchor_targets_by_hand():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 8], [20, 20, 30, 30], [0, 0, 5, 10]], np.float32)
    gt = np.array([[0, 0, 10, 10]], np.float32)
    labels, matched = assign_targets_to_anchors(anchors, gt)
    # IoU 1.0 -> positive, 0.8 -> positive, 0 -> negative, 0.5 -> ignored band [0.3, 0.7)
    np.testing.assert_array_equal(labels, [1, 1, 0, -1])
    np.testing.assert_array_equal(matched, np.repeat(gt, 4, axis=0))


def test_no_ground_truth_is_all_background():
    anchors = np.array([[0, 0, 10, 10], [5, 5, 9, 9]], np.float32)
    labels, matched = assign_targets_to_anchors(anchors, np.zeros((0, 4), np.float32))
    np.testing.assert_array_equal(labels, [0, 0])
    assert matched.shape == (2, 4) and not matched.any()
    idx, labs = assign_targets_to_proposals(anchors, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    np.testing.assert_array_equal(labs, [0, 0])
    s = select_training_samples([anchors], [np.zeros((0, 4), np.float32)], [np.zeros(0, np.int64)],
                                np.random.default_rng(0))
    assert (s["labels"][0] == 0).all() and np.isfinite(s["regression_targets"][0]).all()


def test_ground_truth_is_appended_and_regresses_to_zero():
    gt = np.array([[10, 10, 30, 40]], np.float32)
    s = select_training_samples([np.zeros((0, 4), np.float32)], [gt], [np.array([3])],
                                np.random.default_rng(0))
    np.testing.assert_array_equal(s["proposals"][0], gt)
    np.testing.assert_array_equal(s["labels"][0], [3])
    np.testing.assert_allclose(s["regression_targets"][0], 0, atol=1e-6)


def test_proposals_are_clipped_sorted_and_suppressed():
    case = make_case(5)
    props = filter_proposals(case["anchors"], case["objectness"], case["deltas"], IMAGE_SIZES,
                             case["per_level"], pre_nms_top_n=100, post_nms_top_n=1000)
    for (boxes, scores), (h, w) in zip(props, IMAGE_SIZES):
        assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= w).all()
        assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= h).all()
        assert (np.diff(scores) <= 0).all()
        assert len(boxes) <= 100 * len(case["per_level"])


def test_postprocess_score_threshold_and_top_k():
    case = make_case(6)
    dets = postprocess_detections(case["class_logits"], case["box_regression"], case["proposals"],
                                  IMAGE_SIZES, score_thresh=0.5, detections_per_img=5)
    for d in dets:
        assert len(d["boxes"]) <= 5
        assert (d["scores"] > 0.5).all()
        assert ((d["labels"] >= 1) & (d["labels"] < case["class_logits"].shape[1])).all()


def test_bad_input_is_named():
    case = make_case(0)
    with pytest.raises(ValueError, match="objectness"):
        filter_proposals(case["anchors"], case["objectness"][:, :-1], case["deltas"], IMAGE_SIZES,
                         case["per_level"])
    bad = case["objectness"].copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="objectness contains NaN"):
        filter_proposals(case["anchors"], bad, case["deltas"], IMAGE_SIZES, case["per_level"])
    with pytest.raises(ValueError, match="box_regression"):
        postprocess_detections(case["class_logits"], case["box_regression"][:, :-4],
                               case["proposals"], IMAGE_SIZES)
    with pytest.raises(ValueError, match="gt_labels"):
        assign_targets_to_proposals(case["proposals"][0], case["gt_boxes"][0], np.array([1, 2, 3, 4, 5, 6]))
