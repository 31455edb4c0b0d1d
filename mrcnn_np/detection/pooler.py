"""Multi-level RoI pooler: pick each RoI's FPN level, then pool it from that level.

FPN paper (Lin et al. 2017), eq. 1: an RoI of width w and height h (image pixels) is
assigned to pyramid level ``k = floor(k0 + log2(sqrt(w h) / 224))``, k0 = 4, clamped to the
levels present (P2..P5 for RoI pooling): an ImageNet-sized 224 x 224 RoI reads P4 (stride
16), one half that size P3, and so on -- small objects read fine, high-resolution maps.
Mask R-CNN with FPN (section 3.1) pools its box-head (7 x 7) and mask-head (14 x 14)
features this way.

torchvision's details (``MultiScaleRoIAlign``; docs/REFERENCE.md section 9), kept exactly:
  * scales are inferred from sizes: ``scale_l = 2 ** round(log2(H_l / H_img))`` with
    ``H_img`` the largest image height of the batch (only heights are used), and
    ``k_min = -log2(scale of the first level)``, ``k_max = -log2(scale of the last)``;
  * ``k = floor(4 + log2(sqrt(area) / 224) + 1e-6)`` (eps *outside* the log), in float32,
    clamped to [k_min, k_max]; a zero-area box gets log2(0) = -inf, so k_min;
  * with a single level no mapping is done;
  * each RoI is pooled from its level with that level's spatial_scale; output row i is RoI i.

Any of the three RoI ops of Table 2c can do the pooling (``roi_op``), or TensorFlow's
``crop_and_resize`` ("crop_and_resize", no aggregation: one edge-to-edge sample per output
cell, cropped straight to PH x PW as matterport's Keras model did). The forward pass returns
the level of every RoI and, for max aggregations, the argmax, which is all the bookkeeping
:func:`pooler_backward` needs to route the gradient of each RoI back to its own level.
:func:`pool_rois` records the two on the autodiff tape (the heads call it).

Shapes::

    N images, L levels, C channels, K RoIs, PH x PW output bins
    features  list of L arrays (N, C, H_l, W_l)       rois (K, 5) [batch_index, x1, y1, x2, y2]
    pooled    (K, C, PH, PW)    levels (K,) int64 in [0, L)    argmax (K, C, PH, PW) int32 or None
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_boxes, check_rois
from ..autodiff.tensor import make_result
from ..ops.crop_and_resize import crop_and_resize, crop_and_resize_backward
from ..ops.roi_align import roi_align, roi_align_backward
from ..ops.roi_pool import roi_pool, roi_pool_backward
from ..ops.roi_warp import roi_warp, roi_warp_backward

ROI_OPS = ("roialign", "roiwarp", "roipool", "crop_and_resize")
DEFAULT_AGGREGATION = {"roialign": "avg", "roiwarp": "max", "roipool": "max", "crop_and_resize": None}


def _crop_forward(input, rois, output_size, spatial_scale, *, return_argmax=False, impl=None):
    """crop_and_resize in the pooler's calling convention (no argmax: it has no bins)."""
    out = crop_and_resize(input, rois, output_size, spatial_scale, impl=impl)
    return (out, None) if return_argmax else out


def _crop_backward(grad, rois, input_shape, output_size, spatial_scale, *, argmax=None, impl=None):
    return crop_and_resize_backward(grad, rois, input_shape, output_size, spatial_scale, impl=impl)


# Each op's forward and backward, and the keyword arguments it takes besides the common
# (input, rois, output_size, spatial_scale) -- every backward takes ``argmax=`` by keyword.
_OPS = {"roialign": (roi_align, roi_align_backward, ("sampling_ratio", "aligned", "aggregation")),
        "roiwarp": (roi_warp, roi_warp_backward, ("sampling_ratio", "aggregation")),
        "roipool": (roi_pool, roi_pool_backward, ()),
        "crop_and_resize": (_crop_forward, _crop_backward, ())}


def infer_scale(feature_size: int, image_size: int) -> float:
    """The power of two closest to feature_size / image_size (e.g. 200 / 800 -> 0.25)."""
    if feature_size < 1 or image_size < 1:
        raise ValueError(f"sizes must be positive, got {feature_size} and {image_size}")
    return 2.0 ** round(math.log2(feature_size / image_size))


def infer_scales(feature_shapes, image_shapes) -> list[float]:
    """spatial_scale of every level from its height and the batch's largest image height.

    feature_shapes: list of (N, C, H_l, W_l) (or just (H_l, W_l)); image_shapes: list of
    (h, w) sizes of the resized, unpadded images.
    """
    if len(feature_shapes) == 0 or len(image_shapes) == 0:
        raise ValueError("feature_shapes and image_shapes must not be empty")
    h_img = max(int(s[0]) for s in image_shapes)
    return [infer_scale(int(s[-2]), h_img) for s in feature_shapes]


def level_range(scales) -> tuple[int, int]:
    """(k_min, k_max): the pyramid levels of the first and last map (scale 1/4 -> level 2)."""
    return int(round(-math.log2(scales[0]))), int(round(-math.log2(scales[-1])))


def map_levels(boxes, k_min: int, k_max: int, canonical_scale: float = 224.0,
               canonical_level: int = 4, eps: float = 1e-6) -> np.ndarray:
    """Index (K,) int64 in [0, k_max - k_min] of the level each box (K, 4) is pooled from.

    FPN eq. 1 with torchvision's eps: floor(level0 + log2(sqrt(w h) / scale0) + eps), float32.
    Boxes with zero (or negative, inverted) area go to the finest level.
    """
    boxes = check_boxes(boxes).astype(np.float32)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0)
    with np.errstate(divide="ignore"):
        lvl = np.floor(np.float32(canonical_level) + np.log2(np.sqrt(area) / np.float32(canonical_scale))
                       + np.float32(eps))
    return (np.clip(lvl, k_min, k_max).astype(np.int64) - k_min)


def _check_op(roi_op, aggregation):
    if roi_op not in ROI_OPS:
        raise ValueError(f"roi_op must be one of {ROI_OPS}, got {roi_op!r}")
    aggregation = DEFAULT_AGGREGATION[roi_op] if aggregation is None else aggregation
    if roi_op == "roipool" and aggregation != "max":
        raise ValueError("roi_op='roipool' is a max pooling; aggregation must be 'max'")
    if roi_op == "crop_and_resize" and aggregation is not None:
        raise ValueError("roi_op='crop_and_resize' takes one sample per output cell and has no "
                         f"aggregation; aggregation must be None, got {aggregation!r}")
    return aggregation


def _op_call(roi_op, sampling_ratio, aligned, aggregation):
    """(forward, backward, keyword arguments) of one RoI op, its extra arguments filled in."""
    fwd, bwd, names = _OPS[roi_op]
    given = dict(sampling_ratio=sampling_ratio, aligned=aligned, aggregation=aggregation)
    return fwd, bwd, {k: given[k] for k in names}


def _levels_of(rois, scales, canonical_scale, canonical_level):
    if len(scales) == 1:
        return np.zeros(len(rois), np.int64)
    k_min, k_max = level_range(scales)
    return map_levels(rois[:, 1:], k_min, k_max, canonical_scale, canonical_level)


def multiscale_roi_pool(features, rois, output_size, scales, *, sampling_ratio=2,
                        roi_op="roialign", aggregation=None, aligned=False,
                        canonical_scale=224.0, canonical_level=4, impl=None):
    """Pool every RoI from its FPN level. Returns (pooled, levels, argmax).

    features: list of L maps (N, C, H_l, W_l), finest first. rois: (K, 5) image pixels.
    scales: spatial_scale per level (see :func:`infer_scales`). roi_op: "roialign" |
    "roiwarp" | "roipool" | "crop_and_resize"; aggregation: "avg" | "max" (default: avg for
    RoIAlign, max for RoIWarp and RoIPool; None, the only choice, for crop_and_resize).
    aligned: RoIAlign only. argmax is None unless the aggregation is "max".
    """
    aggregation = _check_op(roi_op, aggregation)
    if len(features) == 0 or len(features) != len(scales):
        raise ValueError(f"features and scales must have the same non-zero length, "
                         f"got {len(features)} and {len(scales)}")
    rois = check_rois(rois)
    n, c = features[0].shape[:2]
    ph, pw = (output_size, output_size) if np.isscalar(output_size) else tuple(output_size)
    levels = _levels_of(rois, scales, canonical_scale, canonical_level)
    dtype = features[0].dtype
    pooled = np.zeros((len(rois), c, ph, pw), dtype)
    use_max = aggregation == "max"
    argmax = np.full(pooled.shape, -1, np.int32) if use_max else None
    fwd, _, kw = _op_call(roi_op, sampling_ratio, aligned, aggregation)
    for lvl, (feat, scale) in enumerate(zip(features, scales)):
        idx = np.nonzero(levels == lvl)[0]
        if len(idx) == 0:
            continue
        out, am = fwd(feat, rois[idx], (ph, pw), scale, return_argmax=True, impl=impl, **kw)
        pooled[idx] = out
        if use_max:
            argmax[idx] = am
    return pooled, levels, argmax


def pooler_backward(grad_pooled, rois, levels, feature_shapes, scales, output_size, *,
                    sampling_ratio=2, roi_op="roialign", aggregation=None, aligned=False,
                    argmax=None, impl=None):
    """Gradients (list of L arrays (N, C, H_l, W_l)) of the features from dL/dpooled (K, C, PH, PW).

    ``levels`` and ``argmax`` are what :func:`multiscale_roi_pool` returned; each RoI's
    gradient flows into its own level only.
    """
    aggregation = _check_op(roi_op, aggregation)
    rois = check_rois(rois)
    levels = np.asarray(levels)
    if levels.shape != (len(rois),):
        raise ValueError(f"levels must have shape ({len(rois)},), got {levels.shape}")
    if aggregation == "max" and argmax is None:
        raise ValueError("max aggregation needs the argmax returned by multiscale_roi_pool")
    grad_pooled = np.asarray(grad_pooled)
    _, bwd, kw = _op_call(roi_op, sampling_ratio, aligned, aggregation)
    grads = []
    for lvl, (shape, scale) in enumerate(zip(feature_shapes, scales)):
        idx = np.nonzero(levels == lvl)[0]
        if len(idx) == 0:
            grads.append(np.zeros(tuple(shape), grad_pooled.dtype))
            continue
        am = argmax[idx] if aggregation == "max" else None
        grads.append(bwd(grad_pooled[idx], rois[idx], shape, output_size, scale, argmax=am,
                         impl=impl, **kw))
    return grads


def pool_rois(features, rois, output_size, scales, *, sampling_ratio=2, roi_op="roialign",
              aggregation=None, aligned=False):
    """Differentiable multi-level RoI pooling: (K, C, PH, PW) Tensor from a list of feature Tensors.

    The one tape wrapper of the pooler: the forward is :func:`multiscale_roi_pool` (each
    RoI read from its FPN level; one level: no mapping), the backward
    :func:`pooler_backward` (each RoI's gradient sent to the level it came from).
    """
    datas = [f.data for f in features]
    kw = dict(sampling_ratio=sampling_ratio, roi_op=roi_op, aggregation=aggregation, aligned=aligned)
    pooled, levels, argmax = multiscale_roi_pool(datas, rois, output_size, scales, **kw)

    def backward(g):
        return tuple(pooler_backward(g, rois, levels, [d.shape for d in datas], scales, output_size,
                                     argmax=argmax, **kw))
    return make_result(pooled, tuple(features), backward, f"pool_rois[{roi_op}]")
