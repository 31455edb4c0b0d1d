"""Images without objects and box-only targets (Faster R-CNN / Keypoint R-CNN style training).

The cases follow the ones torchvision checks for its detection models with negative
samples (docs/REFERENCE.md §4, §6, §10, §11, §14): an image with no object is all
background. Every anchor and every proposal is labelled negative, the classification
losses stay finite and positive, and the box regression losses (RPN and box head), the
mask loss and the keypoint loss are exactly 0. A model without the mask branch
(``mask_on=False``) trains on targets that have no ``masks`` at all.
"""

import numpy as np
import pytest

from mrcnn_np.engine.data import to_model_image
from mrcnn_np.autodiff import Tensor
from mrcnn_np.datasets.shapes import random_scene
from mrcnn_np.detection.anchors import AnchorGenerator
from mrcnn_np.detection.box_head import assign_targets_to_proposals, fastrcnn_loss, select_training_samples
from mrcnn_np.detection.config import preset, with_fields
from mrcnn_np.detection.keypoint_head import keypointrcnn_loss
from mrcnn_np.detection.mask_head import mask_loss
from mrcnn_np.detection.mask_rcnn import MaskRCNN, total_loss
from mrcnn_np.detection.rpn import assign_targets_to_anchors, rpn_loss, sample_anchors
from mrcnn_np.detection.sampler import BalancedPositiveNegativeSampler

SMALL = {"rpn.pre_nms_top_n_train": 200, "rpn.post_nms_top_n_train": 100, "roi_heads.batch_size_per_image": 32}
TINY = with_fields(preset("teaching"), num_classes=6, **SMALL)
TINY_KP = with_fields(preset("teaching_keypoints"), **SMALL, **{"keypoint_head.keypoint_layers": (16, 16)})
# (label, config): the four model kinds torchvision trains with negative samples
MODELS = {"faster": with_fields(TINY, mask_on=False), "mask": TINY,
          "keypoint": with_fields(TINY_KP, mask_on=False), "keypoint+mask": TINY_KP}


def _empty_target(size, k=None, masks=True):
    t = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}
    if masks:
        t["masks"] = np.zeros((0, size, size), np.uint8)
    if k is not None:
        t["keypoints"] = np.zeros((0, k, 3), np.float32)
    return t


def _images(n, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((3, size, size)).astype(np.float32) for _ in range(n)]


# ---------------------------------------------------------------- the RPN
def test_rpn_labels_every_anchor_negative_without_objects():
    anchors = AnchorGenerator(((16,), (32,)), (0.5, 1.0, 2.0))((64, 64), [(16, 16), (8, 8)])
    labels, matched = assign_targets_to_anchors(anchors, np.zeros((0, 4), np.float32))
    assert labels.shape == (len(anchors),) and (labels == 0).all()
    assert matched.shape == (len(anchors), 4) and not matched.any()


def test_rpn_loss_without_objects_has_zero_box_loss():
    a = 300
    labels = [np.zeros(a, np.float32), np.zeros(a, np.float32)]
    pos, neg = sample_anchors(labels, BalancedPositiveNegativeSampler(64, 0.5), np.random.default_rng(0))
    assert len(pos) == 0 and len(neg) == 2 * 64
    rng = np.random.default_rng(1)
    obj = Tensor(rng.normal(size=(2, a)).astype(np.float32), requires_grad=True)
    deltas = Tensor(rng.normal(size=(2, a, 4)).astype(np.float32), requires_grad=True)
    cls, box = rpn_loss(obj, deltas, labels, np.zeros((2 * a, 4), np.float32), pos, neg)
    assert float(box.data) == 0.0
    assert np.isfinite(cls.data) and float(cls.data) > 0
    (cls + box).backward()
    assert not deltas.grad.any() and obj.grad[0, neg[neg < a]].any()


# ---------------------------------------------------------------- the box head
def test_box_head_assigns_every_proposal_to_background():
    proposals = np.array([[0, 0, 10, 10], [5, 5, 30, 40], [20, 10, 60, 60]], np.float32)
    matched, labels = assign_targets_to_proposals(proposals, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    np.testing.assert_array_equal(labels, [0, 0, 0])
    np.testing.assert_array_equal(matched, [0, 0, 0])
    s = select_training_samples([proposals], [np.zeros((0, 4), np.float32)], [np.zeros(0, np.int64)],
                                np.random.default_rng(0))
    assert len(s["labels"][0]) == 3 and (s["labels"][0] == 0).all()
    assert np.isfinite(s["regression_targets"][0]).all() and not s["regression_targets"][0].any()


def test_fastrcnn_loss_on_background_only_has_zero_box_loss():
    rng = np.random.default_rng(0)
    logits = Tensor(rng.normal(size=(5, 4)).astype(np.float32), requires_grad=True)
    reg = Tensor(rng.normal(size=(5, 16)).astype(np.float32), requires_grad=True)
    cls, box = fastrcnn_loss(logits, reg, np.zeros(5, np.int64), np.zeros((5, 4), np.float32))
    assert float(box.data) == 0.0 and np.isfinite(cls.data) and float(cls.data) > 0
    (cls + box).backward()
    assert not reg.grad.any() and logits.grad.any()


# ---------------------------------------------------------------- the mask and keypoint heads
def test_mask_and_keypoint_losses_without_positive_rois_are_zero():
    m = Tensor(np.ones((0, 4, 28, 28), np.float32), requires_grad=True)
    assert float(mask_loss(m, np.zeros(0, np.int64), np.zeros((0, 28, 28), np.float32)).data) == 0.0
    kp = Tensor(np.ones((0, 13, 56, 56), np.float32), requires_grad=True)
    loss = keypointrcnn_loss(kp, [np.zeros((0, 4), np.float32)], [np.zeros((0, 13, 3), np.float32)],
                             [np.zeros(0, np.int64)])
    loss.backward()
    assert float(loss.data) == 0.0 and kp.grad is not None and not kp.grad.any()


# ---------------------------------------------------------------- whole models
@pytest.mark.parametrize("kind", list(MODELS))
def test_model_trains_on_images_without_objects(kind):
    cfg = MODELS[kind]
    model = MaskRCNN(cfg, seed=0)
    k = cfg.keypoint_head.num_keypoints if cfg.keypoint_on else None
    targets = [_empty_target(64, k, masks=cfg.mask_on) for _ in range(2)]
    out = model(_images(2), targets)
    assert out["num_pos_anchors"] == 0 and out["num_pos_rois"] == 0
    assert float(out["loss_rpn_loc"].data) == 0.0 and float(out["loss_box_reg"].data) == 0.0
    assert float(out["loss_rpn_cls"].data) > 0 and float(out["loss_cls"].data) > 0
    assert ("loss_mask" in out) == cfg.mask_on and ("loss_keypoint" in out) == cfg.keypoint_on
    for name in ("loss_mask", "loss_keypoint"):
        if name in out:
            assert float(out[name].data) == 0.0
    loss = total_loss(out)
    assert np.isfinite(loss.data)
    loss.backward()
    assert all(np.isfinite(p.grad).all() for _, p in model.named_parameters() if p.grad is not None)
    assert not model.rpn.head.bbox_pred.weight.grad.any()          # no positive anchor: no box gradient


def test_faster_rcnn_trains_on_box_only_targets():
    model = MaskRCNN(MODELS["faster"], seed=0)
    images, targets = [], []
    for s in (0, 1):
        sc = random_scene(s, 64)
        images.append(to_model_image(sc["image"]))
        targets.append({"boxes": sc["boxes"], "labels": sc["labels"]})         # no masks
    targets[1] = _empty_target(64, masks=False)                               # and one image without objects
    out = model(images, targets)
    assert "loss_mask" not in out and out["num_pos_rois"] > 0
    assert float(out["loss_box_reg"].data) > 0
    total_loss(out).backward()
    dets = model.predict(images)
    assert all("masks" not in d and len(d["boxes"]) == len(d["scores"]) for d in dets)


def test_keypoint_rcnn_trains_without_masks():
    from mrcnn_np.datasets.keypoints import random_keypoint_scene

    model = MaskRCNN(MODELS["keypoint"], seed=0)
    sc = random_keypoint_scene(0, 96)
    image = to_model_image(sc["image"])
    out = model([image], [{k: sc[k] for k in ("boxes", "labels", "keypoints")}])
    assert "loss_mask" not in out and np.isfinite(out["loss_keypoint"].data)


def test_mask_model_still_needs_masks_and_bad_targets_are_named():
    model = MaskRCNN(TINY, seed=0)
    image = _images(1)
    boxes, labels = np.array([[4, 4, 30, 30]], np.float32), np.array([1])
    with pytest.raises(ValueError, match=r"targets\[0\] has no 'masks' \(the model has mask_on=True\)"):
        model(image, [{"boxes": boxes, "labels": labels}])
    with pytest.raises(ValueError, match=r"targets\[0\]\['masks'\] must have shape"):
        model(image, [{"boxes": boxes, "labels": labels, "masks": np.zeros((2, 64, 64), np.uint8)}])
    with pytest.raises(ValueError, match=r"targets\[0\]\['masks'\] must have shape"):
        model(image, [{"boxes": boxes, "labels": labels, "masks": np.zeros((1, 32, 32), np.uint8)}])
    masks = np.zeros((1, 64, 64), np.uint8)
    for bad in (np.array([0]), np.array([6]), np.array([-1])):
        with pytest.raises(ValueError, match=r"targets\[0\]\['labels'\] must be in 1\.\.5"):
            model(image, [{"boxes": boxes, "labels": bad, "masks": masks}])
    for bad in (np.array([1, 2]), np.array([1.0])):
        with pytest.raises(ValueError, match=r"targets\[0\]\['labels'\] must be \(1,\) integers"):
            model(image, [{"boxes": boxes, "labels": bad, "masks": masks}])
