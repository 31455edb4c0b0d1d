"""Mask R-CNN: the whole model, composed so that its forward pass reads like the paper's figure.

    images --transform--> batch --backbone (+FPN)--> features
    features --RPN head--> objectness, deltas --(anchors, NMS)--> proposals
    features, proposals --RoI heads--> class scores, boxes, masks      (He et al. 2017, Fig. 1)

In training the forward pass returns the five losses (summed with unit weights, §3.1):
``loss_rpn_cls``, ``loss_rpn_loc`` (RPN), ``loss_cls``, ``loss_box_reg`` (box branch) and
``loss_mask``, plus counts. In inference it returns detections in original-image pixels:
``boxes`` (D, 4), ``scores`` (D,), ``labels`` (D,) and ``masks`` (D, H, W) probabilities.
With ``cfg.keypoint_on`` (§5) training adds ``loss_keypoint`` (targets then need
``keypoints`` (G, K, 3)) and inference adds ``keypoints`` (D, K, 3) and ``keypoints_scores`` (D, K).
``return_intermediates=True`` adds what the notebooks draw (anchors, proposals, sampled
RoIs, mask targets, features).

The config is read once, here: ``build_rpn`` and ``build_roi_heads`` turn it into the
plain numbers and sub-modules that ``rpn.RPN`` and ``roi_heads.RoIHeads`` are built from
(FPN / C5: a fc box head; C4: ``box_head.Res5Head``). With ``mask_on=False`` the model is
a Faster R-CNN (or, with ``keypoint_on``, a Keypoint R-CNN) and its targets need no masks.

Parameter names follow torchvision's ``maskrcnn_resnet50_fpn`` (``backbone.body.*``,
``backbone.fpn.*``, ``rpn.head.*``, ``roi_heads.box_head.*``, ...; C4: ``roi_heads.res5.*``),
so its weights load through ``convert.py``.

Shapes::

    images: list of N (3, H_i, W_i) float32 in [0, 1] (RGB)
    targets: list of N dicts: boxes (G, 4) xyxy float32, labels (G,) int64 in 1..K-1,
             masks (G, H_i, W_i) uint8 (only with mask_on: box-only targets train a
             Faster R-CNN); G = 0 for an image without objects (all RoIs background)
"""

from __future__ import annotations

import numpy as np

import math

from ..autodiff import Tensor, nn, no_grad
from .transform import postprocess, prepare_batch
from .backbone import ResNet
from .box_head import ConvFCHead, FastRCNNPredictor, Res5Head, TwoMLPHead
from .config import MaskRCNNConfig
from .fpn import BackboneWithFPN
from .keypoint_head import KeypointRCNNHeads, KeypointRCNNPredictor, check_keypoints, resize_keypoints
from .mask_head import MaskRCNNHeads, MaskRCNNPredictor, MLPMaskHead
from .pooler import infer_scales
from .pretrained import freeze_backbone
from .roi_heads import RoIHeads
from .rpn import RPN

LOSS_NAMES = ("loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask")
KEYPOINT_LOSS_NAMES = ("loss_keypoint",)     # only with cfg.keypoint_on (paper §5)


def loss_names(cfg: MaskRCNNConfig) -> tuple:
    """The loss terms of a model built from ``cfg``: the columns of its training log
    (``loss_mask`` stays, logged as 0, when ``mask_on`` is False; ``loss_keypoint`` only with keypoint_on)."""
    return LOSS_NAMES + (KEYPOINT_LOSS_NAMES if cfg.keypoint_on else ())


# ----------------------------------------------------------------------------- building
# The config is read here, once; every module below receives plain numbers. The order in
# which modules are built is the order of the generator's draws: changing it changes
# every initial weight (and the deterministic demo's numbers).
def _norm_fn(norm):
    """None, or channels -> GroupNorm (32 groups, fewer when the channels are not a multiple)."""
    return (lambda c: nn.GroupNorm(math.gcd(32, c), c)) if norm == "gn" else None


def build_rpn(cfg: MaskRCNNConfig, in_channels: int, rng=None) -> RPN:
    """The RPN of ``cfg`` on feature maps of ``in_channels`` channels."""
    r = cfg.rpn
    return RPN(in_channels, r.anchor_sizes, r.aspect_ratios,
               pre_nms_top_n=(r.pre_nms_top_n_train, r.pre_nms_top_n_test),
               post_nms_top_n=(r.post_nms_top_n_train, r.post_nms_top_n_test), nms_thresh=r.nms_thresh,
               fg_iou_thresh=r.fg_iou_thresh, bg_iou_thresh=r.bg_iou_thresh,
               batch_size_per_image=r.batch_size_per_image, positive_fraction=r.positive_fraction,
               score_thresh=r.score_thresh, rng=rng)


def build_roi_heads(cfg: MaskRCNNConfig, in_channels: int, rng=None) -> RoIHeads:
    """The RoI heads of ``cfg``; in_channels: channels of the pooled maps (FPN: the FPN width;
    C4: res4's; C5: res5's). C4 uses res5 as its box head and pools RoIs at the mask size."""
    rh, mh, k = cfg.roi_heads, cfg.mask_head, cfg.num_classes
    mask_channels = 1 if mh.class_agnostic else k
    mask_head = mask_predictor = keypoint_head = keypoint_predictor = None
    if cfg.architecture == "c4":
        # res5 as the head; its first block has stride 2: 14 x 14 -> 7 x 7
        box_head, box_pool_size = Res5Head(cfg.backbone, in_channels, rng=rng), mh.pool_size
        box_predictor = FastRCNNPredictor(box_head.out_channels, k, rng=rng)
        if cfg.mask_on:
            mask_predictor = MaskRCNNPredictor(box_head.out_channels, mh.dim_reduced, mask_channels, rng=rng)
    else:
        if rh.box_conv_layers:
            box_head = ConvFCHead(in_channels, rh.box_pool_size, rh.box_conv_layers, rh.representation_size,
                                  norm=_norm_fn(rh.box_norm), rng=rng)
        else:
            box_head = TwoMLPHead(in_channels * rh.box_pool_size ** 2, rh.representation_size, rng=rng)
        box_pool_size = rh.box_pool_size
        box_predictor = FastRCNNPredictor(rh.representation_size, k, rng=rng)
        if cfg.mask_on and mh.kind == "fcn":
            mask_head = MaskRCNNHeads(in_channels, mh.conv_layers, norm=_norm_fn(mh.norm), rng=rng)
            mask_predictor = MaskRCNNPredictor(mask_head.out_channels, mh.dim_reduced, mask_channels, rng=rng)
        elif cfg.mask_on:
            mask_head = MLPMaskHead(in_channels * mh.pool_size ** 2, mask_channels, mh.resolution, mh.mlp_hidden,
                                    rng=rng)
    kh = cfg.keypoint_head
    if cfg.keypoint_on:  # §5: its own 14 x 14 RoIAlign and FCN, built last so other inits do not change
        keypoint_head = KeypointRCNNHeads(in_channels, kh.keypoint_layers, norm=_norm_fn(kh.keypoint_norm), rng=rng)
        keypoint_predictor = KeypointRCNNPredictor(keypoint_head.out_channels, kh.num_keypoints, rng=rng)
    return RoIHeads(
        box_head, box_predictor, box_pool_size=box_pool_size, mask_head=mask_head, mask_predictor=mask_predictor,
        mask_pool_size=mh.pool_size, mask_resolution=mh.resolution, mask_loss=mh.loss,
        keypoint_head=keypoint_head, keypoint_predictor=keypoint_predictor,
        keypoint_pool_size=kh.keypoint_pool_size, roi_op=rh.roi_op, aggregation=rh.aggregation,
        sampling_ratio=rh.sampling_ratio, aligned=rh.aligned, fg_iou_thresh=rh.fg_iou_thresh,
        bg_iou_thresh=rh.bg_iou_thresh, batch_size_per_image=rh.batch_size_per_image,
        positive_fraction=rh.positive_fraction, score_thresh=rh.score_thresh, nms_thresh=rh.nms_thresh,
        detections_per_img=rh.detections_per_img)


class MaskRCNN(nn.Module):
    """Mask R-CNN built from a :class:`MaskRCNNConfig`.

    seed: seeds the weight initialisation and the samplers' generator (``sampling_rng``,
    whose state a checkpoint saves so that a resumed run draws the same samples).
    """

    def __init__(self, cfg: MaskRCNNConfig, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        rng = np.random.default_rng(seed)
        if cfg.architecture == "fpn":
            self.backbone = BackboneWithFPN(ResNet(cfg.backbone, num_stages=4, rng=rng), cfg.fpn_channels, rng=rng)
            channels = cfg.fpn_channels
        else:  # C4: the body up to res4 (res5 is the RoI head); C5 (Table 2d): the whole body
            self.backbone = ResNet(cfg.backbone, num_stages=3 if cfg.architecture == "c4" else 4, rng=rng)
            channels = self.backbone.out_channels[-1]
        self.rpn = build_rpn(cfg, channels, rng=rng)
        self.roi_heads = build_roi_heads(cfg, channels, rng=rng)
        self.sampling_rng = np.random.default_rng(seed + 1)
        if cfg.freeze_at:  # after every weight is drawn: freezing changes no initial value
            freeze_backbone(self, cfg.freeze_at)

    def features(self, batch):
        """Feature maps: FPN [P2..P6] (RPN on all, RoI heads on P2..P5), C4 [C4] or C5 [C5]."""
        feats = self.backbone(Tensor(batch))
        if self.cfg.architecture in ("c4", "c5"):  # one map, stride 16 or 32, for RPN and RoIs
            feats = feats[-1:]
            return feats, feats
        return feats, feats[:-1]

    def forward(self, images, targets=None, *, return_intermediates=False, mask_readout="class"):
        """Training (``targets`` given and ``self.training``): dict of losses and counts.
        Inference: list of per-image detection dicts in original-image pixels.
        mask_readout: softmax-trained masks read as p(class) ("class") or 1 - p(background)
        ("foreground"); see ``mask_probabilities``."""
        tc = self.cfg.transform
        training = self.training and targets is not None
        if self.training and targets is None:
            raise ValueError("in training mode targets are required (call model.eval() for inference)")
        min_size = tc.min_size[-1]
        if training and len(tc.min_size) > 1:
            min_size = int(self.sampling_rng.choice(tc.min_size))
        if training:
            _check_targets(targets, images, self.cfg.num_classes, self.cfg.mask_on,
                           self.cfg.keypoint_head.num_keypoints if self.cfg.keypoint_on else None)
        original_sizes = [tuple(im.shape[-2:]) for im in images]
        batch, image_sizes, targets_t = prepare_batch(
            images, targets if training else None, min_size=min_size, max_size=tc.max_size,
            mean=tc.image_mean, std=tc.image_std, size_divisible=tc.size_divisible)
        if training and self.cfg.keypoint_on:  # keypoints scale with the image, like the boxes
            targets_t = [dict(t, keypoints=resize_keypoints(t["keypoints"], orig, size))
                         for t, orig, size in zip(targets_t, original_sizes, image_sizes)]

        rpn_feats, roi_feats = self.features(batch)
        scales = infer_scales([f.shape for f in roi_feats], image_sizes)
        proposals, losses, rpn_info = self.rpn(batch.shape, rpn_feats, image_sizes,
                                               targets_t if training else None, rng=self.sampling_rng)
        inter = {"image_sizes": image_sizes, "batch": batch, "proposals": proposals, **rpn_info}
        if training:
            roi_losses, roi_info = self.roi_heads.forward_train(roi_feats, proposals, scales, targets_t,
                                                                self.sampling_rng)
            losses.update(roi_losses)
            out = dict(losses)
            out["num_pos_anchors"] = rpn_info["num_pos_anchors"]
            out["num_pos_rois"] = roi_info["num_pos_rois"]
            inter.update(roi_info)
        else:
            dets = self.roi_heads.forward_test(roi_feats, proposals, scales, image_sizes, mask_readout)
            inter["detections_resized"] = dets
            out = postprocess(dets, image_sizes, original_sizes)
            for d, size, orig in zip(out, image_sizes, original_sizes):
                if "keypoints" in d:
                    d["keypoints"] = resize_keypoints(d["keypoints"], size, orig)
        if return_intermediates:
            inter["features"] = [f.data for f in rpn_feats]
            return out, inter
        return out

    def predict(self, images, *, mask_readout="class"):
        """Inference without a graph: ``eval()`` + ``no_grad()`` + forward."""
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                return self.forward(images, mask_readout=mask_readout)
        finally:
            self.train(was_training)


def total_loss(losses):
    """The paper's multi-task loss: the plain sum of the loss terms present."""
    return sum(losses[k] for k in LOSS_NAMES + KEYPOINT_LOSS_NAMES if k in losses)


def _check_targets(targets, images, num_classes, mask_on=True, num_keypoints=None):
    """Refuse training targets the model cannot use, with a ValueError naming the entry.

    boxes (G, 4) finite with positive width and height; labels (G,) integers in
    1..num_classes-1; masks (G, H_i, W_i) only when ``mask_on`` (a box-only data set trains
    a Faster R-CNN or keypoint model); keypoints (G, K, 3) only when ``num_keypoints``.
    G = 0 is an image without objects: every RoI is background, the box losses are 0.
    """
    if len(targets) != len(images):
        raise ValueError(f"got {len(targets)} targets for {len(images)} images")
    for i, t in enumerate(targets):
        required = ("boxes", "labels") + (("masks",) if mask_on else ())
        for key in required:
            if key not in t:
                hint = " (the model has mask_on=True)" if key == "masks" else ""
                raise ValueError(f"targets[{i}] has no {key!r}{hint}")
        b = np.asarray(t["boxes"])
        if b.ndim != 2 or b.shape[1] != 4 or b.dtype.kind not in "fiu" or not np.isfinite(b).all():
            raise ValueError(f"targets[{i}]['boxes'] must be finite (G, 4), got shape {b.shape}")
        if len(b) and not ((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).all():
            raise ValueError(f"targets[{i}]['boxes'] has a box with non-positive width or height "
                             f"(torchvision raises too; drop degenerate boxes when loading)")
        labels = np.asarray(t["labels"])
        if labels.shape != (len(b),) or (len(b) and labels.dtype.kind not in "iu"):
            raise ValueError(f"targets[{i}]['labels'] must be ({len(b)},) integers (one per box), "
                             f"got shape {labels.shape} dtype {labels.dtype}")
        if len(b) and (labels.min() < 1 or labels.max() >= num_classes):
            raise ValueError(f"targets[{i}]['labels'] must be in 1..{num_classes - 1} (0 is the background), "
                             f"got {labels.min()}..{labels.max()}")
        if mask_on:
            m = np.asarray(t["masks"])
            if m.shape != (len(b), *np.shape(images[i])[-2:]):
                raise ValueError(f"targets[{i}]['masks'] must have shape (G, H, W) = "
                                 f"{(len(b), *np.shape(images[i])[-2:])} (one mask per box, the image's size), "
                                 f"got {m.shape}")
        if num_keypoints is not None:  # keypoint_on: every object needs its (K, 3) keypoints
            if "keypoints" not in t:
                raise ValueError(f"targets[{i}] has no 'keypoints' (the model has keypoint_on=True)")
            kp = check_keypoints(t["keypoints"], f"targets[{i}]['keypoints']", num_keypoints)
            if len(kp) != len(b):
                raise ValueError(f"targets[{i}]['keypoints'] has {len(kp)} objects but 'boxes' has {len(b)}")
