"""Keypoint head: one m x m "mask" per keypoint type, trained with an m^2-way softmax.

Mask R-CNN §5 (Human Pose Estimation): "We model a keypoint's location as a one-hot
mask, and adopt Mask R-CNN to predict K masks, one for each of K keypoint types". For
each visible ground-truth keypoint the training target is a one-hot m x m binary mask
with a single foreground pixel, and the loss is the cross-entropy of an **m^2-way
softmax** over the map (the keypoints compete for one location each, unlike the
per-pixel sigmoid of the mask branch). The head (as in torchvision / Detectron):

    RoIAlign 14 x 14 x C -> 8 x (3x3 conv 512 + ReLU) -> 4x4 stride-2 deconvolution to K maps
    (28 x 28) -> 2x bilinear upsampling -> (K, 56, 56) logits

The paper: "We found that a relatively high resolution output (compared to masks) is
required for keypoint-level localization accuracy". Exact semantics (docs/REFERENCE.md §14):

* Targets (``keypoints_to_heatmap``): a keypoint (x, y, v) in RoI (x1, y1, x2, y2) falls
  in cell ``ix = floor((x - x1) * S / (x2 - x1))`` (same for y); a keypoint exactly on the
  right/bottom edge belongs to the last cell; it is valid when inside the RoI and v > 0
  (v = 1 "labelled but not visible" keypoints are trained too, as in COCO).
* Loss (``keypointrcnn_loss``): cross-entropy over the S^2 positions, averaged over the
  valid keypoints of the positive RoIs; none valid -> 0 (with a zero gradient).
* Inference (``heatmaps_to_keypoints``): each RoI's maps are resized bicubically to the
  RoI's size in pixels (ceil(h) x ceil(w)); the argmax cell's centre is the keypoint and
  the resized logit there its score.

Horizontal flipping must swap left and right keypoints (``keypoint_flip_map``).

Shapes::

    P positive RoIs, D detections, K keypoint types, S = 56 heatmap size, C channels
    keypoints (G, K, 3) [x, y, v] pixels, v in {0, 1, 2};  rois (P, 4) [x1, y1, x2, y2]
    KeypointRCNNHeads:     (R, C, 14, 14) -> (R, D_head, 14, 14)
    KeypointRCNNPredictor: (R, D_head, 14, 14) -> (R, K, 56, 56) logits
"""

from __future__ import annotations

import math

import numpy as np

from ..autodiff import functional as F
from ..autodiff import init, nn
from ..autodiff.upsample import upsample_bilinear

__all__ = ["KeypointRCNNHeads", "KeypointRCNNPredictor", "keypoints_to_heatmap", "keypointrcnn_loss",
           "bicubic_matrix", "resize_bicubic", "heatmaps_to_keypoints", "keypoint_flip_map", "flip_keypoints",
           "resize_keypoints", "check_keypoints"]

BICUBIC_A = -0.75        # torch's (and OpenCV's) cubic convolution parameter


class KeypointRCNNHeads(nn.Sequential):
    """``len(layers)`` 3x3 convs (pad 1), each followed by ReLU, in one flat sequence.

    Without a norm the names are torchvision's (``0.weight``, ``2.weight``, ... with the
    ReLUs at the odd indices), so its keypoint weights load by name. norm: None (the paper)
    or a callable channels -> Module (GroupNorm when training from scratch); each block is
    then conv (no bias) -> norm -> ReLU.
    """

    def __init__(self, in_channels, layers=(512,) * 8, norm=None, rng=None):
        if not layers:
            raise ValueError("the keypoint head needs at least one conv layer")
        blocks = []
        for width in layers:
            conv = nn.Conv2d(in_channels, width, 3, padding=1, bias=norm is None, rng=rng)
            blocks.append(init.kaiming_conv_(conv, rng))
            if norm is not None:
                blocks.append(norm(width))
            blocks.append(nn.ReLU())
            in_channels = width
        super().__init__(*blocks)
        self.out_channels = in_channels


class KeypointRCNNPredictor(nn.Module):
    """4x4 stride-2 deconvolution (pad 1) to one logit map per keypoint (S -> 2S), then
    2x bilinear upsampling (2S -> 4S): 14 -> 28 -> 56. No ReLU: the maps are logits."""

    def __init__(self, in_channels, num_keypoints, rng=None):
        super().__init__()
        # torchvision's init (kaiming normal, fan_out; bias 0), the same as the mask head's
        self.kps_score_lowres = init.kaiming_conv_(
            nn.ConvTranspose2d(in_channels, num_keypoints, 4, stride=2, padding=1, rng=rng), rng)
        self.up_scale = 2
        self.out_channels = num_keypoints

    def forward(self, x):
        return upsample_bilinear(self.kps_score_lowres(x), scale_factor=self.up_scale)


# ---------------------------------------------------------------- checks and small helpers
def check_keypoints(keypoints, name: str = "keypoints", num_keypoints: int | None = None) -> np.ndarray:
    """(G, K, 3) finite float32 array [x, y, v]; a ValueError naming ``name`` otherwise."""
    kp = np.asarray(keypoints)
    if kp.ndim != 3 or kp.shape[2] != 3:
        raise ValueError(f"{name} must have shape (G, K, 3) [x, y, visibility], got {kp.shape}")
    if num_keypoints is not None and kp.shape[1] != num_keypoints:
        raise ValueError(f"{name} has {kp.shape[1]} keypoint types, the model predicts {num_keypoints}")
    if kp.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {kp.dtype}")
    if not np.isfinite(kp).all():
        raise ValueError(f"{name} has NaN or inf values")
    return kp.astype(np.float32, copy=False)


def keypoint_flip_map(names) -> np.ndarray:
    """(K,) int64: index of each keypoint's mirror twin ("left_x" <-> "right_x"), itself otherwise.

    ``flipped = keypoints[:, flip_map]`` relabels the keypoints of a mirrored image: what
    was the right wrist now sits where a left wrist would be. A "left_"/"right_" name
    without its twin is an error (it would silently keep the wrong side).
    """
    names = [str(n) for n in names]
    index = {n: i for i, n in enumerate(names)}
    if len(index) != len(names):
        raise ValueError(f"keypoint names must be distinct, got {names}")
    out = np.arange(len(names), dtype=np.int64)
    for i, n in enumerate(names):
        for a, b in (("left_", "right_"), ("right_", "left_")):
            if n.startswith(a):
                twin = b + n[len(a):]
                if twin not in index:
                    raise ValueError(f"keypoint {n!r} has no mirror twin {twin!r} in {names}")
                out[i] = index[twin]
    return out


def flip_keypoints(keypoints, width, flip_map) -> np.ndarray:
    """Keypoints of the left-right mirrored image: x' = W - x (pixel edges, as boxes), the
    left/right names swapped by ``flip_map``; unlabelled keypoints (v = 0) stay [0, 0, 0]."""
    kp = check_keypoints(keypoints)
    flip_map = np.asarray(flip_map, np.int64)
    if flip_map.shape != (kp.shape[1],):
        raise ValueError(f"flip_map must have shape ({kp.shape[1]},) for {kp.shape[1]} keypoint types, "
                         f"got {flip_map.shape}")
    out = kp[:, flip_map].copy()
    out[..., 0] = np.float32(width) - out[..., 0]
    out[out[..., 2] == 0] = 0                           # COCO: unlabelled means x = y = v = 0
    return out


def resize_keypoints(keypoints, original_size, new_size) -> np.ndarray:
    """Scale x by new_w / old_w and y by new_h / old_h (float32 ratios, torchvision's rule)."""
    kp = np.array(keypoints, np.float32)
    rh = np.float32(new_size[0]) / np.float32(original_size[0])
    rw = np.float32(new_size[1]) / np.float32(original_size[1])
    kp[..., 0] *= rw
    kp[..., 1] *= rh
    return kp


# ---------------------------------------------------------------- targets and loss
def keypoints_to_heatmap(keypoints, rois, heatmap_size: int):
    """One-hot training targets: the flat cell index of each keypoint in its RoI's S x S grid.

    keypoints: (P, K, 3) [x, y, v], the GT keypoints matched to each RoI; rois: (P, 4).
    Returns ``(targets (P, K) int64 = iy * S + ix (0 where invalid), valid (P, K) bool)``.
    float32 arithmetic in torchvision's order, so cells on a boundary agree with it.
    """
    kp = check_keypoints(keypoints)
    rois = np.asarray(rois, np.float32).reshape(-1, 4)
    if len(rois) != len(kp):
        raise ValueError(f"keypoints ({len(kp)}) and rois ({len(rois)}) must have one row per RoI")
    s = int(heatmap_size)
    x1, y1, x2, y2 = (rois[:, i:i + 1] for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):          # an empty RoI gives no valid cell
        scale_x = np.float32(s) / (x2 - x1)
        scale_y = np.float32(s) / (y2 - y1)
        x, y = kp[..., 0], kp[..., 1]
        fx = np.floor((x - x1) * scale_x)
        fy = np.floor((y - y1) * scale_y)
    fx = np.where(x == x2, s - 1, fx)       # the right/bottom edge belongs to the last cell
    fy = np.where(y == y2, s - 1, fy)
    valid = (fx >= 0) & (fx < s) & (fy >= 0) & (fy < s) & (kp[..., 2] > 0)   # NaN compares False
    ix = np.where(valid, fx, 0).astype(np.int64)
    iy = np.where(valid, fy, 0).astype(np.int64)
    return iy * s + ix, valid


def keypointrcnn_loss(keypoint_logits, proposals, gt_keypoints, matched_idxs):
    """Keypoint loss over the positive RoIs of a batch (torchvision's ``keypointrcnn_loss``).

    keypoint_logits: Tensor (P, K, S, S), RoIs in image order (the concatenation of
    ``proposals``); proposals: list of (P_i, 4) positive RoIs per image; gt_keypoints: list
    of (G_i, K, 3); matched_idxs: list of (P_i,) index of each RoI's GT object.
    Returns the mean cross-entropy of the S^2-way softmax over the valid keypoints (a
    scalar Tensor; 0 with a zero gradient when there is none).
    """
    p, k, h, w = keypoint_logits.shape
    if h != w:
        raise ValueError(f"keypoint_logits must be square maps (P, K, S, S), got {keypoint_logits.shape}")
    if not (len(proposals) == len(gt_keypoints) == len(matched_idxs)):
        raise ValueError(f"proposals ({len(proposals)}), gt_keypoints ({len(gt_keypoints)}) and matched_idxs "
                         f"({len(matched_idxs)}) must have one entry per image")
    targets, valid = [np.zeros((0, k), np.int64)], [np.zeros((0, k), bool)]
    for i, (props, gt, idx) in enumerate(zip(proposals, gt_keypoints, matched_idxs)):
        props = np.asarray(props, np.float32).reshape(-1, 4)
        idx = np.asarray(idx, np.int64).reshape(-1)
        gt = check_keypoints(gt, f"gt_keypoints[{i}]", k)
        if len(idx) != len(props):
            raise ValueError(f"image {i}: {len(props)} proposals but {len(idx)} matched_idxs")
        if len(idx) and (idx.min() < 0 or idx.max() >= len(gt)):
            raise ValueError(f"image {i}: matched_idxs must index its {len(gt)} GT objects, "
                             f"got {idx.min()}..{idx.max()}")
        t, v = keypoints_to_heatmap(gt[idx], props, h)
        targets.append(t)
        valid.append(v)
    targets, valid = np.concatenate(targets), np.concatenate(valid)
    if len(targets) != p:
        raise ValueError(f"keypoint_logits has {p} RoIs but the proposals hold {len(targets)}")
    return F.spatial_softmax_cross_entropy(keypoint_logits, targets, valid)


# ---------------------------------------------------------------- inference
def bicubic_matrix(in_size: int, out_size: int, dtype=np.float32) -> np.ndarray:
    """(out_size, in_size) matrix of one axis of torch's bicubic resize (align_corners=False).

    src = (dst + 0.5) * in / out - 0.5 (not clamped, unlike bilinear); the four inputs
    floor(src) - 1 .. floor(src) + 2 (clamped to the border) get Keys' cubic weights with
    A = -0.75 at distances t + 1, t, 1 - t, 2 - t (t = src - floor(src)).
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got in {in_size}, out {out_size}")
    a = BICUBIC_A
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5
    i0 = np.floor(src).astype(np.int64)
    t = src - i0

    def near(d):        # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):         # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    m = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    for j, wj in enumerate(weights):
        np.add.at(m, (rows, np.clip(i0 - 1 + j, 0, in_size - 1)), wj)   # border taps pile up
    return m.astype(dtype)


def resize_bicubic(maps, size) -> np.ndarray:
    """(C, H, W) -> (C, h, w) bicubic, align_corners=False (torch's ``interpolate``)."""
    maps = np.asarray(maps)
    h, w = size
    return bicubic_matrix(maps.shape[1], h, maps.dtype) @ maps @ bicubic_matrix(maps.shape[2], w, maps.dtype).T


def heatmaps_to_keypoints(maps, rois):
    """Keypoint locations and scores from the logit maps (torchvision's ``heatmaps_to_keypoints``).

    maps: (D, K, S, S) logits; rois: (D, 4) detection boxes (the same image's pixels).
    Returns ``(keypoints (D, K, 3) float32 [x, y, 1], scores (D, K) float32)``: per RoI the
    maps are resized bicubically to (ceil(h), ceil(w)) (h, w at least 1); the first argmax
    cell (ix, iy) gives x = x1 + (ix + 0.5) * w / ceil(w) (cell centre, the inverse of the
    target's floor), and the score is the resized logit there.
    For a RoI smaller than S pixels the bicubic resize samples the map without smoothing
    (as torchvision), so a one-pixel-sharp peak can fall between samples; trained heatmaps
    are smooth enough for this not to matter (tests/detection/test_keypoint_head.py).
    """
    maps = np.asarray(maps, np.float32)
    rois = np.asarray(rois, np.float32).reshape(-1, 4)
    if maps.ndim != 4 or len(maps) != len(rois):
        raise ValueError(f"maps must have shape (D, K, S, S) with D = len(rois) = {len(rois)}, got {maps.shape}")
    d, k = maps.shape[:2]
    widths = np.maximum(rois[:, 2] - rois[:, 0], np.float32(1))
    heights = np.maximum(rois[:, 3] - rois[:, 1], np.float32(1))
    keypoints = np.zeros((d, k, 3), np.float32)
    scores = np.zeros((d, k), np.float32)
    for i in range(d):
        mw, mh = int(math.ceil(widths[i])), int(math.ceil(heights[i]))
        roi_map = resize_bicubic(maps[i], (mh, mw))                        # (K, ceil h, ceil w)
        pos = roi_map.reshape(k, -1).argmax(axis=1)                        # first maximum, as torch
        ix, iy = pos % mw, pos // mw
        keypoints[i, :, 0] = (ix.astype(np.float32) + np.float32(0.5)) * (widths[i] / np.float32(mw)) + rois[i, 0]
        keypoints[i, :, 1] = (iy.astype(np.float32) + np.float32(0.5)) * (heights[i] / np.float32(mh)) + rois[i, 1]
        keypoints[i, :, 2] = 1
        scores[i] = roi_map[np.arange(k), iy, ix]
    return keypoints, scores
