"""Bilinear upsampling as a forward/backward pair (torch's ``interpolate(mode="bilinear")``).

Mask R-CNN §5 (keypoints): the keypoint head ends with a 4x4 stride-2 deconvolution
(14 -> 28) "followed by 2x bilinear upscaling, producing an output resolution of 56x56";
the paper found that a high-resolution output is needed for keypoint-level localisation.

Bilinear interpolation is separable and linear in the input, so one axis of it is a
fixed (out, in) matrix ``A`` whose row ``o`` holds the two weights of output ``o``:

    out = A_y @ x @ A_x.T           (per (n, c) plane)
    dx  = A_y.T @ dout @ A_x        (the backward is the transpose of the same matrices)

Row weights follow torch exactly (docs/REFERENCE.md §11 step 5 describes the same rule):
* ``align_corners=False``: source coordinate ``src = (dst + 0.5) * scale - 0.5``, clamped
  to 0 when negative; ``scale = in / out`` when a ``size`` is given and
  ``1 / scale_factor`` when a ``scale_factor`` is given (``recompute_scale_factor=False``,
  as torchvision's keypoint predictor calls it); for 2x both are 0.5.
* ``align_corners=True``: ``src = dst * (in - 1) / (out - 1)`` (0 when out = 1).
Then ``i0 = floor(src)``, ``i1 = min(i0 + 1, in - 1)``, weights ``1 - t`` and ``t`` with
``t = src - i0``. For 2x and align_corners=False every output mixes its two nearest inputs
with weights 0.75 / 0.25, and the border rows copy the border input.

Shapes::

    x (N, C, H, W) -> out (N, C, Ho, Wo);  A_y (Ho, H), A_x (Wo, W)
"""

from __future__ import annotations

import math

import numpy as np

from .im2col import pair
from .tensor import as_tensor, get_array_module, make_result

__all__ = ["bilinear_matrix", "upsample_bilinear_forward", "upsample_bilinear_backward", "upsample_bilinear"]


def bilinear_matrix(in_size: int, out_size: int, scale_factor=None, align_corners: bool = False,
                    dtype=np.float32) -> np.ndarray:
    """(out_size, in_size) matrix of one axis of bilinear resampling (torch's weights).

    scale_factor: the factor the caller asked for (it sets the source-coordinate scale
    ``1 / scale_factor`` instead of ``in / out``; only used with align_corners=False).
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got in {in_size}, out {out_size}")
    dst = np.arange(out_size, dtype=np.float64)
    if align_corners:
        src = dst * ((in_size - 1) / (out_size - 1)) if out_size > 1 else np.zeros(out_size)
    else:
        scale = in_size / out_size if scale_factor is None else 1.0 / scale_factor
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)     # negative -> 0 (torch clamps)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)                    # the last input has no right neighbour
    t = src - i0
    a = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    np.add.at(a, (rows, i0), 1.0 - t)                       # add.at: i0 == i1 at the border
    np.add.at(a, (rows, i1), t)
    return a.astype(dtype)


def _output_size(h, w, size, scale_factor):
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    if size is not None:
        return pair(size, "size"), (None, None)
    sf = (scale_factor, scale_factor) if np.isscalar(scale_factor) else tuple(scale_factor)
    if len(sf) != 2 or not all(s > 0 and math.isfinite(s) for s in sf):
        raise ValueError(f"scale_factor must be a positive number or pair, got {scale_factor}")
    return (int(math.floor(h * sf[0])), int(math.floor(w * sf[1]))), sf


def upsample_bilinear_forward(x, size=None, scale_factor=None, align_corners: bool = False):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), cache) with ``size=(Ho, Wo)`` or ``scale_factor``."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"upsample input must have shape (N, C, H, W), got {getattr(x, 'shape', None)}")
    if getattr(x, "dtype", np.dtype(int)).kind != "f":
        raise ValueError(f"upsample input must be float, got {x.dtype}")
    H, W = x.shape[2:]
    (Ho, Wo), sf = _output_size(H, W, size, scale_factor)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"upsampled size must be positive, got {(Ho, Wo)}")
    xp = get_array_module(x)
    ay = xp.asarray(bilinear_matrix(H, Ho, sf[0], align_corners, x.dtype))
    ax = xp.asarray(bilinear_matrix(W, Wo, sf[1], align_corners, x.dtype))
    out = ay @ (x @ ax.T)               # (Ho, H) @ (N, C, H, Wo): matmul broadcasts over N, C
    return out, (ay, ax)


def upsample_bilinear_backward(dout, cache):
    """dout (N, C, Ho, Wo) -> dx (N, C, H, W)."""
    ay, ax = cache
    return ay.T @ (dout @ ax)


def upsample_bilinear(x, size=None, scale_factor=None, align_corners: bool = False):
    """Tensor op: ``torch.nn.functional.interpolate(x, size, scale_factor, mode="bilinear",
    align_corners=align_corners, recompute_scale_factor=False)``."""
    x = as_tensor(x)
    out, cache = upsample_bilinear_forward(x.data, size, scale_factor, align_corners)
    return make_result(out, (x,), lambda g: (upsample_bilinear_backward(g, cache),), "upsample_bilinear")
