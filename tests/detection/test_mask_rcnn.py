"""The whole model: training losses and inference on the teaching preset, bad input, weight
round trips, and (live, `reference`) equality with torchvision's maskrcnn_resnet50_fpn
carrying the same random weights: FPN features, proposals, class logits and box deltas,
mask logits and final detections."""

import dataclasses

import numpy as np
import pytest

from mrcnn_np.engine.data import to_model_image
from mrcnn_np.autodiff import no_grad
from mrcnn_np.datasets.shapes import random_scene
from mrcnn_np.detection.config import preset, with_fields
from mrcnn_np.detection.convert import convert_state_dict, load_model, save_weights, torchvision_config
from mrcnn_np.detection.mask_rcnn import LOSS_NAMES, MaskRCNN, total_loss
from mrcnn_np.detection.roi_heads import boxes_to_rois
from tests.model_checks import assert_loss_trains_every_parameter, scene_batch

TINY = with_fields(preset("teaching"), num_classes=6, **{"rpn.pre_nms_top_n_train": 200,
                                                       "rpn.post_nms_top_n_train": 100,
                                                       "roi_heads.batch_size_per_image": 32})


@pytest.mark.parametrize("variant", [
    {}, {"roi_op": "roipool"}, {"roi_op": "roiwarp", "aggregation": "avg"},
    {"mask_head.loss": "softmax"}, {"class_agnostic": True}, {"kind": "mlp"},
    {"architecture": "c4", "mask_head.resolution": 14, "rpn.anchor_sizes": ((8, 16, 32, 64),)}])
def test_training_losses_and_gradients(variant):
    cfg = with_fields(TINY, **variant)
    model = MaskRCNN(cfg, seed=0)
    imgs, tgts = scene_batch([0, 1])
    out = model(imgs, tgts)
    assert set(LOSS_NAMES) <= set(out)
    assert_loss_trains_every_parameter(model, out)


def test_inference_outputs_original_pixels():
    model = MaskRCNN(with_fields(TINY, **{"roi_heads.score_thresh": 0.0}), seed=0)
    imgs, _ = scene_batch([2, 3], size=80)
    dets = model.predict(imgs)
    for d in dets:
        assert d["masks"].shape[1:] == (80, 80)
        assert len(d["boxes"]) == len(d["scores"]) == len(d["labels"]) == len(d["masks"])
        assert (d["boxes"] >= 0).all() and (d["boxes"] <= 80).all()
        assert (np.diff(d["scores"]) <= 0).all()


def test_intermediates_for_the_notebooks():
    model = MaskRCNN(TINY, seed=0)
    imgs, tgts = scene_batch([4])
    out, inter = model(imgs, tgts, return_intermediates=True)
    for key in ("anchors", "proposals", "sampled_rois", "mask_targets", "features", "anchor_labels",
                "mask_logits", "roi_matched_idxs"):
        assert key in inter, key
    assert inter["mask_targets"].shape[0] == out["num_pos_rois"] == inter["mask_logits"].shape[0]
    # every loss stays in the model's dtype (a Python scalar must not promote to float64)
    assert all(out[k].dtype == np.float32 for k in LOSS_NAMES)


def test_bad_targets_are_named():
    model = MaskRCNN(TINY)
    imgs, tgts = scene_batch([0])
    with pytest.raises(ValueError, match="targets are required"):
        model(imgs)
    bad = [dict(tgts[0], boxes=np.array([[5, 5, 5, 9]], np.float32), labels=np.array([1]),
                masks=tgts[0]["masks"][:1])]
    with pytest.raises(ValueError, match="non-positive width"):
        model(imgs, bad)
    with pytest.raises(ValueError, match="no 'masks'"):
        model(imgs, [{"boxes": tgts[0]["boxes"], "labels": tgts[0]["labels"]}])


def test_image_without_objects_trains():
    model = MaskRCNN(TINY, seed=0)
    imgs, tgts = scene_batch([0, 1])
    tgts[1] = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64),
               "masks": np.zeros((0, 64, 64), np.uint8)}
    out = model(imgs, tgts)
    assert np.isfinite(total_loss(out).data)


def test_save_and_load_round_trip(tmp_path):
    model = MaskRCNN(TINY, seed=3)
    save_weights(model, tmp_path / "w")
    again = load_model(tmp_path / "w")
    assert again.cfg == model.cfg
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_model(tmp_path / "nope")


def _tv_model(torch, min_size, max_size, score_thresh):
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    torch.manual_seed(0)
    tv = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=min_size, max_size=max_size,
                               box_score_thresh=score_thresh).eval()
    with torch.no_grad():     # non-trivial batch-norm statistics and larger predictor weights
        g = torch.Generator().manual_seed(0)
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        tv.roi_heads.box_predictor.cls_score.weight.mul_(0.1)   # spread the scores (no ties)
    return tv


@pytest.mark.reference
@pytest.mark.slow
def test_equals_torchvision_maskrcnn_resnet50_fpn():
    import torch

    tv = _tv_model(torch, 192, 256, score_thresh=0.001)
    cfg = torchvision_config(frozen_bn_eps=1e-5, min_size=(192,), max_size=256)
    cfg = with_fields(cfg, **{"roi_heads.score_thresh": 0.001})
    ours = MaskRCNN(cfg)
    missing, unexpected = ours.load_state_dict(convert_state_dict(tv.state_dict()))
    assert not missing and not unexpected
    ours.eval()
    sc = random_scene(7, 150)
    img = to_model_image(sc["image"])

    with torch.no_grad():
        il, _ = tv.transform([torch.from_numpy(img)])
        tv_feats = tv.backbone(il.tensors)
        tv_props, _ = tv.rpn(il, tv_feats)
        tv_dets, _ = tv.roi_heads(tv_feats, tv_props, il.image_sizes)
        tv_final = tv.transform.postprocess(tv_dets, il.image_sizes, [img.shape[1:]])[0]
        box_x = tv.roi_heads.box_head(tv.roi_heads.box_roi_pool(tv_feats, tv_props, il.image_sizes))
        tv_logits, tv_deltas = tv.roi_heads.box_predictor(box_x)
        det_boxes = [tv_dets[0]["boxes"][:20]]
        mx = tv.roi_heads.mask_roi_pool(tv_feats, det_boxes, il.image_sizes)
        tv_mask_logits = tv.roi_heads.mask_predictor(tv.roi_heads.mask_head(mx))

    with no_grad():
        final, inter = ours([img], return_intermediates=True)
        # FPN features
        assert inter["batch"].shape == tuple(il.tensors.shape)
        np.testing.assert_allclose(inter["batch"], il.tensors.numpy(), atol=1e-5)
        for a, b in zip(inter["features"], tv_feats.values()):
            b = b.numpy()
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * np.abs(b).max())
        # proposals
        p, q = inter["proposals"][0], tv_props[0].numpy()
        assert p.shape == q.shape
        np.testing.assert_allclose(p, q, rtol=1e-3, atol=1e-2)
        # box head on torchvision's proposals
        rpn_feats, roi_feats = ours.features(inter["batch"])
        from mrcnn_np.detection.pooler import infer_scales
        scales = infer_scales([f.shape for f in roi_feats], inter["image_sizes"])
        logits, deltas, _ = ours.roi_heads.box_outputs(roi_feats, boxes_to_rois([q]), scales)
        for a, b in ((logits.data, tv_logits.numpy()), (deltas.data, tv_deltas.numpy())):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * np.abs(b).max())
        # mask logits on torchvision's detections
        ml = ours.roi_heads.mask_logits_for_rois(roi_feats, boxes_to_rois([det_boxes[0].numpy()]), scales).data
        b = tv_mask_logits.numpy()
        np.testing.assert_allclose(ml, b, rtol=1e-3, atol=1e-3 * np.abs(b).max())
        # detections from torchvision's proposals: identical (same proposals -> same levels)
        from mrcnn_np.detection.transform import postprocess
        dets = ours.roi_heads.forward_test(roi_feats, [q], scales, inter["image_sizes"])
        d = postprocess(dets, inter["image_sizes"], [img.shape[1:]])[0]
    assert len(d["boxes"]) == len(tv_final["boxes"]) > 0
    np.testing.assert_allclose(d["scores"], tv_final["scores"].numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(d["labels"], tv_final["labels"].numpy())
    np.testing.assert_allclose(d["boxes"], tv_final["boxes"].numpy(), rtol=1e-3, atol=1e-2)
    # probabilities: sigmoid of logits that agree to 1e-3 of their range
    np.testing.assert_allclose(d["masks"], tv_final["masks"].numpy()[:, 0], atol=1e-2)
    # end to end, a proposal ~1e-5 px from an FPN level boundary (sqrt(area) = 112, 224, ...)
    # may be pooled from the neighbouring level by one library and not the other, so we ask
    # that nearly all final detections agree (same label and score)
    e, ts, tl = final[0], tv_final["scores"].numpy(), tv_final["labels"].numpy()
    matched = [np.any((np.abs(ts - s) < 1e-3) & (tl == lab)) for s, lab in zip(e["scores"], e["labels"])]
    assert np.mean(matched) >= 0.9, np.mean(matched)
    assert dataclasses.is_dataclass(cfg)
