"""RoI heads: pool features for each RoI, then the box branch and the mask branch.

Mask R-CNN §3 (Fig. 4): after the RPN, each RoI is pooled from the feature maps
(RoIAlign, or RoIPool / RoIWarp for the Table 2c ablation) and fed to two parallel
branches: the box branch (class + box refinement) and the mask branch (an m x m mask per
class). In training the mask loss is computed on the positive RoIs only; at inference the
mask branch runs on the final detections (the top-scoring boxes after NMS).
With ``keypoint_on`` a third branch (§5, ``keypoint_head.py``) does the same for K
keypoint heatmaps (loss ``loss_keypoint``; detections gain ``keypoints`` and
``keypoints_scores``).

Two layouts (Fig. 4):
* FPN: 7 x 7 RoI features -> two fc layers -> predictor; 14 x 14 -> 4 convs -> deconv ->
  28 x 28 masks. RoIs are pooled from their FPN level (``pooler.py``).
* C4: 14 x 14 RoI features on res4 -> res5 (stride 2) -> 7 x 7 x C5, shared by the box
  predictor (after global average pooling) and the mask predictor (deconv -> 14 x 14).
* C5 (Table 2d, stride 32): RoIs pooled from the one res5 map, then the FPN layout's heads
  (res5 already belongs to the backbone, so it cannot be the head).

Shapes::

    S sampled RoIs, P positives, D detections, C channels, K classes incl. background
    features: list of L Tensors (N, C, H_l, W_l); rois: (S, 5) [batch_index, x1, y1, x2, y2]
"""

from __future__ import annotations

import math

import numpy as np

from ..autodiff import nn
from ..ops.masks import project_masks_on_boxes
from .backbone import make_stage
from .box_head import ConvFCHead, FastRCNNPredictor, TwoMLPHead, fastrcnn_loss, postprocess_detections, select_training_samples
from .keypoint_head import KeypointRCNNHeads, KeypointRCNNPredictor, heatmaps_to_keypoints, keypointrcnn_loss
from .mask_head import MaskRCNNHeads, MaskRCNNPredictor, MLPMaskHead, mask_loss, mask_probabilities
from .matcher import Matcher
from .pooler import pool_rois
from .sampler import BalancedPositiveNegativeSampler


def boxes_to_rois(boxes_per_image):
    """List of (B_i, 4) boxes -> (sum B_i, 5) RoIs with the image index in column 0."""
    parts = [np.concatenate([np.full((len(b), 1), i, np.float32), np.asarray(b, np.float32)], axis=1)
             for i, b in enumerate(boxes_per_image)]
    return np.concatenate(parts) if parts else np.zeros((0, 5), np.float32)


def _norm_fn(norm):
    """None, or channels -> GroupNorm (32 groups, fewer when the channels are not a multiple)."""
    return (lambda c: nn.GroupNorm(math.gcd(32, c), c)) if norm == "gn" else None


class RoIHeads(nn.Module):
    """Box and mask branches. ``cfg`` is a ``MaskRCNNConfig`` (read here once, at build time).

    in_channels: channels of the pooled maps (FPN: the FPN width; C4: res4's channels).
    """

    def __init__(self, cfg, in_channels, rng=None):
        super().__init__()
        rh, mh, k = cfg.roi_heads, cfg.mask_head, cfg.num_classes
        self.c4 = cfg.architecture == "c4"
        self.mask_on = cfg.mask_on
        self.pool_kw = dict(sampling_ratio=rh.sampling_ratio, roi_op=rh.roi_op,
                            aggregation=rh.aggregation, aligned=rh.aligned)
        self.box_pool_size = mh.pool_size if self.c4 else rh.box_pool_size
        self.mask_pool_size = mh.pool_size
        self.mask_kind, self.mask_loss_kind = mh.kind, mh.loss
        mask_channels = 1 if mh.class_agnostic else k
        if self.c4:
            # res5 (stage index 3) as the head; its first block has stride 2: 14 x 14 -> 7 x 7
            self.res5 = make_stage(cfg.backbone, in_channels, 3, rng=rng)
            c5 = cfg.backbone.stage_channels()[3]
            self.box_predictor = FastRCNNPredictor(c5, k, rng=rng)
            if self.mask_on:
                self.mask_predictor = MaskRCNNPredictor(c5, mh.dim_reduced, mask_channels, rng=rng)
        else:
            if rh.box_conv_layers:
                self.box_head = ConvFCHead(in_channels, rh.box_pool_size, rh.box_conv_layers, rh.representation_size,
                                           norm=_norm_fn(rh.box_norm), rng=rng)
            else:
                self.box_head = TwoMLPHead(in_channels * rh.box_pool_size ** 2, rh.representation_size, rng=rng)
            self.box_predictor = FastRCNNPredictor(rh.representation_size, k, rng=rng)
            if self.mask_on and mh.kind == "fcn":
                self.mask_head = MaskRCNNHeads(in_channels, mh.conv_layers, norm=_norm_fn(mh.norm), rng=rng)
                self.mask_predictor = MaskRCNNPredictor(self.mask_head.out_channels, mh.dim_reduced,
                                                        mask_channels, rng=rng)
            elif self.mask_on:
                self.mask_head = MLPMaskHead(in_channels * mh.pool_size ** 2, mask_channels,
                                             mh.resolution, mh.mlp_hidden, rng=rng)
        self.matcher = Matcher(rh.fg_iou_thresh, rh.bg_iou_thresh, allow_low_quality_matches=False)
        self.sampler = BalancedPositiveNegativeSampler(rh.batch_size_per_image, rh.positive_fraction)
        self.post_kw = dict(score_thresh=rh.score_thresh, nms_thresh=rh.nms_thresh,
                            detections_per_img=rh.detections_per_img)
        self.mask_resolution = mh.resolution
        self.keypoint_on = cfg.keypoint_on
        if self.keypoint_on:  # §5: its own 14 x 14 RoIAlign and FCN, built last so other inits do not change
            kh = cfg.keypoint_head
            self.keypoint_pool_size = kh.keypoint_pool_size
            self.keypoint_head = KeypointRCNNHeads(in_channels, kh.keypoint_layers, norm=_norm_fn(kh.keypoint_norm),
                                                   rng=rng)
            self.keypoint_predictor = KeypointRCNNPredictor(self.keypoint_head.out_channels, kh.num_keypoints, rng=rng)

    # ---------------------------------------------------------------- pieces
    def _box_features(self, features, rois, scales):
        """The box head's input to its predictor: res5 of the pooled RoIs (C4, shared with the
        mask branch) or the fc head's output."""
        x = pool_rois(features, rois, self.box_pool_size, scales, **self.pool_kw)
        return self.res5(x) if self.c4 else self.box_head(x)

    def _box_outputs(self, features, rois, scales):
        x = self._box_features(features, rois, scales)
        class_logits, box_regression = self.box_predictor(x)
        return class_logits, box_regression, x

    def _mask_logits(self, features, rois, scales, shared=None):
        if self.c4:
            return self.mask_predictor(shared)                 # res5 output of the same RoIs
        x = pool_rois(features, rois, self.mask_pool_size, scales, **self.pool_kw)
        if self.mask_kind == "mlp":
            return self.mask_head(x)
        return self.mask_predictor(self.mask_head(x))

    def mask_logits_for_rois(self, features, rois, scales):
        """Mask logits (R, K or 1, M, M) for given RoIs (S, 5), e.g. ground-truth boxes: the whole
        mask branch, including C4's res5 head, with detection factored out."""
        shared = self._box_features(features, rois, scales) if self.c4 else None
        return self._mask_logits(features, rois, scales, shared)

    def _keypoint_logits(self, features, rois, scales):
        x = pool_rois(features, rois, self.keypoint_pool_size, scales, **self.pool_kw)
        return self.keypoint_predictor(self.keypoint_head(x))          # (R, K, 56, 56)

    # ---------------------------------------------------------------- training
    def forward_train(self, features, proposals, scales, targets, rng):
        """Losses of both branches. proposals: list of (P_i, 4); targets: list of dicts
        (boxes, labels, masks in the resized image). Returns (losses, info)."""
        s = select_training_samples(proposals, [t["boxes"] for t in targets],
                                    [t["labels"] for t in targets], rng,
                                    sampler=self.sampler, matcher=self.matcher)
        rois = boxes_to_rois(s["proposals"])
        class_logits, box_regression, head_out = self._box_outputs(features, rois, scales)
        loss_cls, loss_box = fastrcnn_loss(class_logits, box_regression, s["labels"], s["regression_targets"])
        losses = {"loss_cls": loss_cls, "loss_box_reg": loss_box}
        labels = np.concatenate(s["labels"])
        pos = np.flatnonzero(labels > 0)
        info = {"sampled_rois": rois, "roi_labels": labels, "num_pos_rois": len(pos),
                "roi_matched_idxs": np.concatenate(s["matched_idxs"])}
        if self.mask_on:
            mask_targets = []
            for props, lab, idx, t in zip(s["proposals"], s["labels"], s["matched_idxs"], targets):
                p = lab > 0
                mask_targets.append(project_masks_on_boxes(np.asarray(t["masks"]), props[p], idx[p],
                                                           self.mask_resolution))
            mask_targets = (np.concatenate(mask_targets) if mask_targets
                            else np.zeros((0, self.mask_resolution, self.mask_resolution), np.float32))
            shared = head_out[pos] if self.c4 else None
            logits = self._mask_logits(features, rois[pos], scales, shared)
            losses["loss_mask"] = mask_loss(logits, labels[pos], mask_targets, kind=self.mask_loss_kind)
            info["mask_targets"] = mask_targets
            info["mask_logits"] = logits.data
        if self.keypoint_on:  # like the mask branch: on the positive RoIs, against their matched GT object
            pos_props = [props[lab > 0] for props, lab in zip(s["proposals"], s["labels"])]
            pos_idx = [idx[lab > 0] for idx, lab in zip(s["matched_idxs"], s["labels"])]
            logits = self._keypoint_logits(features, rois[pos], scales)
            losses["loss_keypoint"] = keypointrcnn_loss(logits, pos_props, [t["keypoints"] for t in targets], pos_idx)
            info["keypoint_logits"] = logits.data
        return losses, info

    # ---------------------------------------------------------------- inference
    def forward_test(self, features, proposals, scales, image_sizes, mask_readout="class"):
        """Detections per image (boxes, scores, labels, and mask_probs (D, M, M)).
        mask_readout: how softmax-trained masks are read ("class" or "foreground",
        ``mask_probabilities``); sigmoid masks ignore it."""
        rois = boxes_to_rois(proposals)
        class_logits, box_regression, _ = self._box_outputs(features, rois, scales)
        dets = postprocess_detections(class_logits.data, box_regression.data, proposals, image_sizes,
                                      **self.post_kw)
        if self.mask_on:
            det_rois = boxes_to_rois([d["boxes"] for d in dets])
            labels = np.concatenate([d["labels"] for d in dets])
            if len(det_rois):
                logits = self.mask_logits_for_rois(features, det_rois, scales).data
                probs = mask_probabilities(logits, labels, kind=self.mask_loss_kind, readout=mask_readout)
            else:
                m = self.mask_resolution
                probs = np.zeros((0, m, m), np.float32)
            start = 0
            for d in dets:
                d["mask_probs"] = probs[start:start + len(d["boxes"])]
                start += len(d["boxes"])
        if self.keypoint_on:  # keypoints (D, K, 3) [x, y, 1] and their heatmap scores (D, K)
            det_rois = boxes_to_rois([d["boxes"] for d in dets])
            k = self.keypoint_predictor.out_channels
            kps, kp_scores = np.zeros((0, k, 3), np.float32), np.zeros((0, k), np.float32)
            if len(det_rois):
                kps, kp_scores = heatmaps_to_keypoints(self._keypoint_logits(features, det_rois, scales).data,
                                                       det_rois[:, 1:])
            start = 0
            for d in dets:
                d["keypoints"] = kps[start:start + len(d["boxes"])]
                d["keypoints_scores"] = kp_scores[start:start + len(d["boxes"])]
                start += len(d["boxes"])
        return dets
