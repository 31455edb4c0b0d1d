"""RoI pooling ops (RoIPool, RoIWarp, RoIAlign, TF's crop_and_resize) as differentiable Tensor ops.

Concept: the RoI op crops a fixed-size feature (e.g. 7x7 or 14x14) for every proposal
from the feature map (Mask R-CNN §3 "RoIAlign"). Gradients flow to the feature map only;
the RoI coordinates are constants (proposals are detached, as in the paper and in
torchvision). The array functions live in :mod:`mrcnn_np.ops` (forward + ``*_backward``);
this module only records them on the tape (one wrapper, ``_record``, for the three
paper ops; ``crop_and_resize`` has no argmax and records itself;
multi-level FPN pooling is recorded by :func:`mrcnn_np.detection.pooler.pool_rois`).
Max-aggregating variants keep the argmax of the forward pass so the backward routes each
gradient to the winning sample.

Shapes: input (N, C, H, W) Tensor; rois (K, 5) array [batch_index, x1, y1, x2, y2];
output (K, C, PH, PW).
"""

from __future__ import annotations

from ..ops.crop_and_resize import crop_and_resize as crop_and_resize_array
from ..ops.crop_and_resize import crop_and_resize_backward
from ..ops.roi_align import roi_align as roi_align_array
from ..ops.roi_align import roi_align_backward
from ..ops.roi_pool import roi_pool as roi_pool_array
from ..ops.roi_pool import roi_pool_backward
from ..ops.roi_warp import roi_warp as roi_warp_array
from ..ops.roi_warp import roi_warp_backward
from .tensor import Tensor, as_tensor, make_result, needs_grad

__all__ = ["crop_and_resize", "roi_align", "roi_pool", "roi_warp"]


def _record(name, forward, backward, input, rois, output_size, spatial_scale, max_aggregation,
            impl, **kw):
    """The one tape wrapper of the single-level RoI ops: forward now, backward on the tape.

    forward / backward: the array op and its ``*_backward`` (``argmax=`` a keyword in all);
    kw: the op's own arguments (sampling_ratio, aligned, aggregation), passed to both.
    The argmax is kept only when the op aggregates by max and the input needs a gradient.
    """
    x = as_tensor(input)
    rois = rois.data if isinstance(rois, Tensor) else rois
    want_arg = max_aggregation and needs_grad(x)
    res = forward(x.data, rois, output_size, spatial_scale, return_argmax=want_arg, impl=impl, **kw)
    out, argmax = res if want_arg else (res, None)
    shape = x.shape

    def grad_fn(g):
        return (backward(g, rois, shape, output_size, spatial_scale, argmax=argmax, impl=impl,
                         **kw),)
    return make_result(out, (x,), grad_fn, name)


def roi_align(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False, *,
              aggregation="avg", impl=None):
    """Differentiable RoIAlign (torchvision signature; ``aggregation`` "avg" or "max")."""
    return _record("roi_align", roi_align_array, roi_align_backward, input, rois, output_size,
                   spatial_scale, aggregation == "max", impl, sampling_ratio=sampling_ratio,
                   aligned=aligned, aggregation=aggregation)


def roi_pool(input, rois, output_size, spatial_scale=1.0, *, impl=None):
    """Differentiable RoIPool (Fast R-CNN's quantised max pooling)."""
    return _record("roi_pool", roi_pool_array, roi_pool_backward, input, rois, output_size,
                   spatial_scale, True, impl)


def roi_warp(input, rois, output_size, spatial_scale=1.0, sampling_ratio=2, *,
             aggregation="max", impl=None):
    """Differentiable RoIWarp (quantised box, bilinear samples; the Table 2c ablation)."""
    return _record("roi_warp", roi_warp_array, roi_warp_backward, input, rois, output_size,
                   spatial_scale, aggregation == "max", impl, sampling_ratio=sampling_ratio,
                   aggregation=aggregation)


def crop_and_resize(input, rois, output_size, spatial_scale=1.0, *, extrapolation_value=0.0,
                    method="bilinear", impl=None):
    """Differentiable crop_and_resize (TF's edge-to-edge sampling; :mod:`mrcnn_np.ops.crop_and_resize`).

    The gradient reaches the input only: the RoIs and extrapolation_value are constants.
    """
    x = as_tensor(input)
    rois = rois.data if isinstance(rois, Tensor) else rois
    out = crop_and_resize_array(x.data, rois, output_size, spatial_scale,
                                extrapolation_value=extrapolation_value, method=method, impl=impl)
    shape = x.shape

    def grad_fn(g):
        return (crop_and_resize_backward(g, rois, shape, output_size, spatial_scale,
                                         method=method, impl=impl),)
    return make_result(out, (x,), grad_fn, "crop_and_resize")
