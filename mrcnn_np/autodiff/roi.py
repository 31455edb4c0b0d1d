"""RoI pooling ops (RoIPool, RoIWarp, RoIAlign) as differentiable Tensor ops.

Concept: the RoI op crops a fixed-size feature (e.g. 7x7 or 14x14) for every proposal
from the feature map (Mask R-CNN §3 "RoIAlign"). Gradients flow to the feature map only;
the RoI coordinates are constants (proposals are detached, as in the paper and in
torchvision). The array functions live in :mod:`mrcnn_np.ops` (forward + ``*_backward``);
this module only records them on the tape. Max-aggregating variants keep the argmax of
the forward pass so the backward routes each gradient to the winning sample.

Shapes: input (N, C, H, W) Tensor; rois (K, 5) array [batch_index, x1, y1, x2, y2];
output (K, C, PH, PW).
"""

from __future__ import annotations

from .tensor import Tensor, as_tensor, make_result, needs_grad

__all__ = ["roi_align", "roi_pool", "roi_warp"]


def _rois_array(rois):
    return rois.data if isinstance(rois, Tensor) else rois


def roi_align(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False, *,
              aggregation="avg", impl=None):
    """Differentiable RoIAlign (torchvision signature; ``aggregation`` "avg" or "max")."""
    from ..ops.roi_align import roi_align as fwd, roi_align_backward as bwd
    x = as_tensor(input)
    rois = _rois_array(rois)
    want_arg = aggregation == "max" and needs_grad(x)
    res = fwd(x.data, rois, output_size, spatial_scale, sampling_ratio, aligned,
              aggregation=aggregation, return_argmax=want_arg, impl=impl)
    out, argmax = res if want_arg else (res, None)
    shape = x.shape

    def backward(g):
        return (bwd(g, rois, shape, output_size, spatial_scale, sampling_ratio, aligned,
                    aggregation=aggregation, argmax=argmax, impl=impl),)
    return make_result(out, (x,), backward, "roi_align")


def roi_pool(input, rois, output_size, spatial_scale=1.0, *, impl=None):
    """Differentiable RoIPool (Fast R-CNN's quantised max pooling)."""
    from ..ops.roi_pool import roi_pool as fwd, roi_pool_backward as bwd
    x = as_tensor(input)
    rois = _rois_array(rois)
    out, argmax = fwd(x.data, rois, output_size, spatial_scale, return_argmax=True, impl=impl)
    shape = x.shape

    def backward(g):
        return (bwd(g, rois, argmax, shape, output_size, spatial_scale, impl=impl),)
    return make_result(out, (x,), backward, "roi_pool")


def roi_warp(input, rois, output_size, spatial_scale=1.0, sampling_ratio=2, *,
             aggregation="max", impl=None):
    """Differentiable RoIWarp (quantised box, bilinear samples; the Table 2c ablation)."""
    from ..ops.roi_warp import roi_warp as fwd, roi_warp_backward as bwd
    x = as_tensor(input)
    rois = _rois_array(rois)
    want_arg = aggregation == "max" and needs_grad(x)
    res = fwd(x.data, rois, output_size, spatial_scale, sampling_ratio,
              aggregation=aggregation, return_argmax=want_arg, impl=impl)
    out, argmax = res if want_arg else (res, None)
    shape = x.shape

    def backward(g):
        return (bwd(g, rois, shape, output_size, spatial_scale, sampling_ratio,
                    aggregation=aggregation, argmax=argmax, impl=impl),)
    return make_result(out, (x,), backward, "roi_warp")
