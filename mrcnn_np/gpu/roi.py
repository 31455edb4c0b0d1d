"""RoIAlign and RoIPool on the GPU: thin wrappers over kernels/roi_align.cu, roi_pool.cu.

Same signatures and results as :mod:`mrcnn_np.ops.roi_align` / :mod:`mrcnn_np.ops.roi_pool`
(minus ``impl``). CuPy input runs on the GPU; NumPy input runs the very same kernels
through the CPU host shim (slow; that is how the tests and notebook 07 check them).

Shapes: N images, C channels, H x W feature map, K RoIs, PH x PW output bins.
    input (N, C, H, W) float32/float64; rois (K, 5) [batch_index, x1, y1, x2, y2];
    output (K, C, PH, PW) of input's dtype; argmax (K, C, PH, PW) int32.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_features, check_rois
from .launch import array_module, launch

AGGREGATIONS = ("avg", "max")
GRID_MAX = 2**31 - 1  # larger adaptive grids get no samples (kernels/roi_align.cu, roi_bin)


def _pair(output_size, name="output_size"):
    ph, pw = (output_size, output_size) if np.isscalar(output_size) else tuple(output_size)
    if int(ph) != ph or int(pw) != pw or ph < 1 or pw < 1:
        raise ValueError(f"{name} must be a positive int or (PH, PW), got {output_size!r}")
    return int(ph), int(pw)


def _shape4(input_shape, name="input_shape"):
    """(N, C, H, W) as ints; H, W >= 1 (the kernels clamp indices to H-1 and W-1)."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4 or min(shape) < 0 or min(shape[2:]) < 1:
        raise ValueError(f"{name} must be (N, C, H, W) with H, W >= 1, got {input_shape!r}")
    return shape


def _scale(spatial_scale):
    s = float(spatial_scale)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"spatial_scale must be a positive finite number, got {spatial_scale!r}")
    return s


def _prepare_rois(rois, xp, dtype, n_images):
    """rois as a C-contiguous (K, 5) array of ``dtype`` whose batch indices are valid.

    The kernels index memory with the batch index, so an out-of-range one must be caught
    here, not by a crash (or silent garbage) on the device.
    """
    rois = check_rois(rois)
    rois = xp.ascontiguousarray(rois, dtype=dtype)
    if len(rois):
        b = rois[:, 0]
        if bool(((b < 0) | (b >= n_images) | (b != xp.floor(b))).any()):
            raise ValueError(f"rois[:, 0] must hold integer batch indices in [0, {n_images})")
    return rois


def _check_aggregation(aggregation):
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def _samples_per_bin(rois, xp, spatial_scale, ph, pw, sampling_ratio, aligned):
    """(K,) samples in each bin of each RoI: the range an argmax must lie in (0 = none).

    The grid rule of ``roi_bin`` in kernels/roi_align.cu, computed in the rois' dtype.
    """
    if sampling_ratio > 0:
        return xp.full(len(rois), sampling_ratio * sampling_ratio, np.int64)
    t = rois.dtype.type
    off = t(0.5) if aligned else t(0)
    sides = []
    for lo, hi, bins in ((2, 4, ph), (1, 3, pw)):
        size = (rois[:, hi] * t(spatial_scale) - off) - (rois[:, lo] * t(spatial_scale) - off)
        if not aligned:
            size = xp.maximum(size, t(1))
        c = xp.ceil(size / t(bins))
        sides.append(xp.where(xp.isfinite(c) & (c > 0) & (c <= GRID_MAX), c, 0).astype(np.int64))
    return sides[0] * sides[1]


def roi_align(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False,
              *, aggregation="avg", return_argmax=False):
    """RoIAlign forward. Returns out (K, C, PH, PW), or (out, argmax) if return_argmax.

    argmax (aggregation="max" only): int32 index iy * grid_w + ix of the winning sample
    inside each bin, -1 when the bin has no sample.
    """
    input = check_features(input)
    xp = array_module(input, rois)
    _check_aggregation(aggregation)
    ph, pw = _pair(output_size)
    n, c, h, w = _shape4(input.shape, "input.shape")
    spatial_scale = _scale(spatial_scale)
    input = xp.ascontiguousarray(input)
    rois = _prepare_rois(rois, xp, input.dtype, n)
    out = xp.zeros((len(rois), c, ph, pw), dtype=input.dtype)
    use_max = aggregation == "max"
    argmax = xp.full(out.shape if use_max else (1,), -1, dtype=np.int32)
    launch("roi_align_forward_kernel", out.size, dict(
        total=out.size, input=input, spatial_scale=spatial_scale, channels=c, height=h,
        width=w, pooled_h=ph, pooled_w=pw, sampling_ratio=sampling_ratio,
        aligned=int(bool(aligned)), use_max=int(use_max), rois=rois, output=out,
        argmax=argmax), input.dtype)
    if return_argmax:
        return out, (argmax if use_max else xp.full(out.shape, -1, dtype=np.int32))
    return out


def roi_align_backward(grad_output, rois, input_shape, output_size, spatial_scale=1.0,
                       sampling_ratio=-1, aligned=False, *, aggregation="avg", argmax=None):
    """RoIAlign backward: grad_input (N, C, H, W) from grad_output (K, C, PH, PW).

    aggregation="max" needs the argmax returned by the forward pass.
    """
    grad_output = check_features(grad_output, "grad_output")
    xp = array_module(grad_output, rois, argmax)
    _check_aggregation(aggregation)
    n, c, h, w = _shape4(input_shape)
    ph, pw = _pair(output_size)
    spatial_scale = _scale(spatial_scale)
    dtype = grad_output.dtype
    rois = _prepare_rois(rois, xp, dtype, n)
    if grad_output.shape != (len(rois), c, ph, pw):
        raise ValueError(f"grad_output must have shape {(len(rois), c, ph, pw)}, "
                         f"got {grad_output.shape}")
    use_max = aggregation == "max"
    if use_max:
        if argmax is None or tuple(argmax.shape) != grad_output.shape:
            raise ValueError("aggregation='max' needs argmax of grad_output's shape "
                             "(from roi_align(..., return_argmax=True))")
        argmax = xp.ascontiguousarray(argmax, dtype=np.int32)
        samples = _samples_per_bin(rois, xp, spatial_scale, ph, pw, sampling_ratio, aligned)
        if argmax.size and bool(((argmax < -1) | (argmax >= samples[:, None, None, None])).any()):
            raise ValueError("argmax names a sample outside its bin's grid; it must come from "
                             "roi_align(..., return_argmax=True) with the same arguments")
    else:
        argmax = xp.full((1,), -1, dtype=np.int32)
    grad_input = xp.zeros((n, c, h, w), dtype=dtype)
    launch("roi_align_backward_kernel", grad_output.size, dict(
        total=grad_output.size, grad_output=xp.ascontiguousarray(grad_output),
        spatial_scale=spatial_scale, channels=c, height=h, width=w, pooled_h=ph, pooled_w=pw,
        sampling_ratio=sampling_ratio, aligned=int(bool(aligned)), use_max=int(use_max),
        rois=rois, argmax=argmax, grad_input=grad_input), dtype)
    return grad_input


def roi_pool(input, rois, output_size, spatial_scale=1.0, *, return_argmax=False):
    """RoIPool forward (max). Returns out (K, C, PH, PW), or (out, argmax) if return_argmax.

    argmax: int32 flat index h * W + w into the input plane, -1 for an empty bin.
    """
    input = check_features(input)
    xp = array_module(input, rois)
    ph, pw = _pair(output_size)
    n, c, h, w = _shape4(input.shape, "input.shape")
    spatial_scale = _scale(spatial_scale)
    input = xp.ascontiguousarray(input)
    rois = _prepare_rois(rois, xp, input.dtype, n)
    out = xp.zeros((len(rois), c, ph, pw), dtype=input.dtype)
    argmax = xp.full(out.shape, -1, dtype=np.int32)
    launch("roi_pool_forward_kernel", out.size, dict(
        total=out.size, input=input, spatial_scale=spatial_scale, channels=c, height=h,
        width=w, pooled_h=ph, pooled_w=pw, rois=rois, output=out, argmax=argmax), input.dtype)
    return (out, argmax) if return_argmax else out


def roi_pool_backward(grad_output, rois, input_shape, output_size, spatial_scale=1.0, *,
                      argmax=None):
    """RoIPool backward: each output gradient goes to the pixel its argmax names.

    argmax: the forward's (``return_argmax=True``), a keyword as in every RoI backward.
    """
    grad_output = check_features(grad_output, "grad_output")
    xp = array_module(grad_output, rois, argmax)
    n, c, h, w = _shape4(input_shape)
    ph, pw = _pair(output_size)
    spatial_scale = _scale(spatial_scale)
    dtype = grad_output.dtype
    rois = _prepare_rois(rois, xp, dtype, n)
    if argmax is None:
        raise ValueError("argmax is required (roi_pool backward); get it from the forward "
                         "pass with return_argmax=True")
    if grad_output.shape != (len(rois), c, ph, pw) or tuple(argmax.shape) != grad_output.shape:
        raise ValueError(f"grad_output and argmax must have shape {(len(rois), c, ph, pw)}, "
                         f"got {grad_output.shape} and {tuple(argmax.shape)}")
    argmax = xp.ascontiguousarray(argmax, dtype=np.int32)
    if argmax.size and bool(((argmax < -1) | (argmax >= h * w)).any()):
        raise ValueError(f"argmax values must be -1 or in [0, H*W={h * w})")
    grad_input = xp.zeros((n, c, h, w), dtype=dtype)
    launch("roi_pool_backward_kernel", grad_output.size, dict(
        total=grad_output.size, grad_output=xp.ascontiguousarray(grad_output), channels=c,
        height=h, width=w, pooled_h=ph, pooled_w=pw, rois=rois, argmax=argmax,
        grad_input=grad_input), dtype)
    return grad_input
