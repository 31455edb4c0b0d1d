"""RoI heads: pool features for each RoI, then the box branch and the mask branch.

Mask R-CNN §3 (Fig. 4): after the RPN, each RoI is pooled from the feature maps
(RoIAlign, or RoIPool / RoIWarp for the Table 2c ablation) and fed to two parallel
branches: the box branch (class + box refinement) and the mask branch (an m x m mask per
class). In training the mask loss is computed on the positive RoIs only; at inference the
mask branch runs on the final detections (the top-scoring boxes after NMS).
With ``keypoint_on`` a third branch (§5, ``keypoint_head.py``) does the same for K
keypoint heatmaps (loss ``loss_keypoint``; detections gain ``keypoints`` and
``keypoints_scores``).

Three layouts (Fig. 4; Table 2d), chosen once when the model is built (``mask_rcnn.py``
passes the matching box feature head, ``box_head.py``):
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

import numpy as np

from ..autodiff import nn
from ..ops.masks import project_masks_on_boxes
from .box_head import fastrcnn_loss, postprocess_detections, select_training_samples
from .keypoint_head import heatmaps_to_keypoints, keypointrcnn_loss
from .mask_head import mask_loss, mask_probabilities
from .matcher import Matcher
from .pooler import pool_rois
from .sampler import BalancedPositiveNegativeSampler


def boxes_to_rois(boxes_per_image):
    """List of (B_i, 4) boxes -> (sum B_i, 5) RoIs with the image index in column 0."""
    parts = [np.concatenate([np.full((len(b), 1), i, np.float32), np.asarray(b, np.float32)], axis=1)
             for i, b in enumerate(boxes_per_image)]
    return np.concatenate(parts) if parts else np.zeros((0, 5), np.float32)


class RoIHeads(nn.Module):
    """The box, mask and keypoint branches on the RoIs, built from their modules and settings.

    box_head: a box feature head (``TwoMLPHead``, ``ConvFCHead`` or C4's ``Res5Head``; see
    ``box_head.py``), kept under its ``state_name`` (``box_head`` or ``res5``); it reads RoIs
    pooled to ``box_pool_size``. box_predictor: ``FastRCNNPredictor``.
    mask_head, mask_predictor: the mask branch (None, None: no masks). FCN: both; MLP: the
    head only; C4: the predictor only, on the box head's output (``shares_with_mask``).
    It reads RoIs pooled to ``mask_pool_size`` and predicts ``mask_resolution`` masks
    trained with ``mask_loss`` ("sigmoid" or "softmax").
    keypoint_head, keypoint_predictor: the keypoint branch (§5), on ``keypoint_pool_size``.
    pooling: ``roi_op``, ``aggregation``, ``sampling_ratio``, ``aligned`` (``pool_rois``).
    training: the matcher (``fg_iou_thresh``, ``bg_iou_thresh``) and sampler
    (``batch_size_per_image``, ``positive_fraction``); inference: ``score_thresh``,
    ``nms_thresh``, ``detections_per_img`` (``postprocess_detections``).
    """

    def __init__(self, box_head, box_predictor, *, box_pool_size=7, mask_head=None, mask_predictor=None,
                 mask_pool_size=14, mask_resolution=28, mask_loss="sigmoid", keypoint_head=None,
                 keypoint_predictor=None, keypoint_pool_size=14, roi_op="roialign", aggregation=None,
                 sampling_ratio=2, aligned=False, fg_iou_thresh=0.5, bg_iou_thresh=0.5,
                 batch_size_per_image=512, positive_fraction=0.25, score_thresh=0.05, nms_thresh=0.5,
                 detections_per_img=100):
        super().__init__()
        # registration order = state-dict order: box head, box predictor, mask, keypoints
        self.box_head_name = box_head.state_name
        setattr(self, self.box_head_name, box_head)
        self.box_predictor = box_predictor
        for name, module in (("mask_head", mask_head), ("mask_predictor", mask_predictor),
                             ("keypoint_head", keypoint_head), ("keypoint_predictor", keypoint_predictor)):
            if module is not None:
                setattr(self, name, module)
        self.mask_on = mask_head is not None or mask_predictor is not None
        self.keypoint_on = keypoint_head is not None
        if self.keypoint_on != (keypoint_predictor is not None):
            raise ValueError("keypoint_head and keypoint_predictor come together (both or neither)")
        self.mask_layers = [m for m in (mask_head, mask_predictor) if m is not None]   # applied in order
        self.box_pool_size, self.mask_pool_size, self.keypoint_pool_size = box_pool_size, mask_pool_size, \
            keypoint_pool_size
        self.mask_resolution, self.mask_loss_kind = mask_resolution, mask_loss
        self.pool_kw = dict(sampling_ratio=sampling_ratio, roi_op=roi_op, aggregation=aggregation, aligned=aligned)
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=False)
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.post_kw = dict(score_thresh=score_thresh, nms_thresh=nms_thresh, detections_per_img=detections_per_img)

    @property
    def box_feature_head(self):
        """The box feature head, whatever its state name."""
        return getattr(self, self.box_head_name)

    # ---------------------------------------------------------------- pieces
    def box_features(self, features, rois, scales):
        """The box predictor's input for RoIs (S, 5): the box feature head on the pooled RoIs."""
        return self.box_feature_head(pool_rois(features, rois, self.box_pool_size, scales, **self.pool_kw))

    def box_outputs(self, features, rois, scales):
        """(class_logits (S, K), box_regression (S, 4 K), box features) for RoIs (S, 5)."""
        x = self.box_features(features, rois, scales)
        class_logits, box_regression = self.box_predictor(x)
        return class_logits, box_regression, x

    def mask_logits_for_rois(self, features, rois, scales, box_features=None):
        """Mask logits (R, K or 1, M, M) for given RoIs (R, 5), e.g. ground-truth boxes: the whole
        mask branch, including C4's res5 head, with detection factored out.
        box_features: the box head's output for the same RoIs, when the caller has it (C4
        reuses it instead of running res5 again; the other layouts ignore it)."""
        if self.box_feature_head.shares_with_mask:
            x = self.box_features(features, rois, scales) if box_features is None else box_features
        else:
            x = pool_rois(features, rois, self.mask_pool_size, scales, **self.pool_kw)
        for layer in self.mask_layers:
            x = layer(x)
        return x

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
        class_logits, box_regression, box_x = self.box_outputs(features, rois, scales)
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
            box_x = box_x[pos] if self.box_feature_head.shares_with_mask else None
            logits = self.mask_logits_for_rois(features, rois[pos], scales, box_x)
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
        class_logits, box_regression, _ = self.box_outputs(features, rois, scales)
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
