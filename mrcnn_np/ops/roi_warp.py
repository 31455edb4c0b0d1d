"""RoIWarp: RoIPool's rounded RoI, then bilinear sampling of the bins -- the middle row of Table 2c.

Mask R-CNN, section 3 and Table 2c: RoIWarp (from MNC, Dai et al. 2016) "also adopted
bilinear resampling", but "was implemented as quantizing RoI just like RoIPool" -- so it
"overlooked the alignment issue". Table 2c isolates the three ingredients: RoIPool (no
alignment, no bilinear, max), RoIWarp (no alignment, bilinear, max or avg) and RoIAlign
(alignment, bilinear, max or avg). RoIWarp barely beats RoIPool there (27.2 vs 26.9 mask
AP), RoIAlign gains about 3 AP: the alignment is what matters, not the interpolation.

The exact definition implemented here (the paper specifies only "quantised RoI +
bilinear"; this is the operational definition of docs/REFERENCE.md section 8.4):

  1. quantise the RoI corners to feature cells exactly as RoIPool does, with C rounding
     (halves away from zero)::

         qx1 = round(x1 * spatial_scale)   qy1 = round(y1 * spatial_scale)
         qx2 = round(x2 * spatial_scale)   qy2 = round(y2 * spatial_scale)

  2. run RoIAlign on the quantised box ``[qx1, qy1, qx2, qy2]`` in feature coordinates
     (spatial_scale 1, ``aligned=False``): size ``max(qx2 - qx1, 1)``, PW equal bins with no
     further rounding, ``sampling_ratio`` bilinear samples per bin side at
     ``qx1 + pw * bin_w + (ix + 0.5) * bin_w / sampling_ratio``, aggregated by max or average,
     with RoIAlign's border rules.

So RoIWarp and RoIAlign differ *only* in step 1, the rounding of the corners, which is the
comparison the ablation makes. (We do not use RoIPool's inclusive "+1" box
``[qx1, qx2 + 1)`` here: it would also enlarge every RoI by one cell and mix a scale change
into the comparison.) RoIs get no gradient; the input gradient is RoIAlign's on the
quantised box.

Shapes::

    N images, C channels, H x W feature map, K RoIs, PH x PW output bins
    input (N, C, H, W) float16/32/64        rois (K, 5) [batch_index, x1, y1, x2, y2] image px,
                                             or a list of N per-image (K_i, 4) boxes
    (float16 is computed in float32 and returned as float16, as torchvision does)
    out   (K, C, PH, PW) input's dtype       argmax (K, C, PH, PW) int32, iy * grid_w + ix
"""

from __future__ import annotations

import numpy as np

from .._checks import check_rois
from ..gpu.launch import array_module
from .bilinear import accept_torchvision_forms, as_dtype, check_scale
from .roi_align import roi_align, roi_align_backward


def quantize_rois(rois, spatial_scale, dtype=None):
    """(K, 5) RoIs with corners rounded to feature cells: [b, round(x1 s), ..., round(y2 s)].

    The result is in *feature* coordinates (use it with spatial_scale=1). C rounding, in
    ``dtype`` (default: the rois' own float dtype), as RoIPool computes it.
    """
    rois = check_rois(rois)
    xp = array_module(rois)
    dtype = rois.dtype if dtype is None else np.dtype(dtype)
    rois = rois.astype(dtype)
    t = np.dtype(dtype).type
    v = rois[:, 1:] * t(check_scale(spatial_scale))
    a = xp.abs(v)
    f = xp.floor(a)
    q = xp.copysign(f + (a - f >= 0.5), v).astype(dtype)  # C round; see bilinear.c_round
    return xp.concatenate([rois[:, :1], q], axis=1)


def roi_warp(input, rois, output_size, spatial_scale=1.0, sampling_ratio=2, *,
             aggregation="max", return_argmax=False, impl=None):
    """RoIWarp forward: out (K, C, PH, PW), or (out, argmax) when return_argmax.

    Arguments as :func:`mrcnn_np.ops.roi_align` (no ``aligned``: RoIWarp has no alignment);
    the default aggregation is "max", the paper's first RoIWarp row. impl picks the RoIAlign
    implementation that runs on the quantised RoIs ("reference" is the loop specification).
    """
    input, rois, out_dtype = accept_torchvision_forms(input, rois)
    q = quantize_rois(rois, spatial_scale, getattr(input, "dtype", None) if
                      getattr(input, "dtype", np.dtype("O")).kind == "f" else None)
    res = roi_align(input, q, output_size, 1.0, sampling_ratio, False,
                    aggregation=aggregation, return_argmax=return_argmax, impl=impl)
    return (as_dtype(res[0], out_dtype), res[1]) if return_argmax else as_dtype(res, out_dtype)


def roi_warp_backward(grad_output, rois, input_shape, output_size, spatial_scale=1.0,
                      sampling_ratio=2, *, aggregation="max", argmax=None, impl=None):
    """dL/dinput (N, C, H, W): RoIAlign's backward on the quantised RoIs."""
    grad_output, rois, out_dtype = accept_torchvision_forms(grad_output, rois)
    dtype = getattr(grad_output, "dtype", None)
    q = quantize_rois(rois, spatial_scale, dtype if dtype is not None and dtype.kind == "f" else None)
    return as_dtype(roi_align_backward(grad_output, q, input_shape, output_size, 1.0,
                                       sampling_ratio, False, aggregation=aggregation,
                                       argmax=argmax, impl=impl), out_dtype)
