"""RoIPool: max-pool a feature-map region, rounded to the feature grid, into PH x PW bins.

Fast R-CNN (section 2.1) turns each RoI into a fixed-size feature by max pooling; the
Mask R-CNN paper (section 3) points out its two quantisations, which RoIAlign removes:
  1. the RoI corners are rounded to feature cells: ``round(x1 * spatial_scale)``
     (C ``round``: halves away from zero, so 2.5 -> 3 and -2.5 -> -3 -- *not* ``np.round``);
  2. the rounded RoI, taken as inclusive integer cells (hence the "+1"), is cut into bins
     whose edges are rounded outwards: rows ``floor(ph * bin_h) .. ceil((ph + 1) * bin_h)``.
A misalignment of up to half a cell (half a stride in image pixels) in the RoI, plus up to
a cell in the bins, is baked into every pooled feature.

Exactly torchvision's C++ kernel (docs/REFERENCE.md section 7):
  * ``roi_w = max(round(x2 s) - round(x1 s) + 1, 1)``, ``bin_w = roi_w / PW`` (float);
    bin edges are offset by the rounded start and clipped to [0, W] (same for rows);
  * an empty bin (nothing left after clipping) outputs 0 with argmax -1;
  * otherwise the running max starts at -FLT_MAX and is replaced only by a strictly
    greater value, scanning rows then columns: ties keep the first pixel; argmax is the
    flat index h * W + w into the input plane (-1 if nothing beat -FLT_MAX).
Backward: each output gradient is added to the input pixel its argmax names.

Shapes::

    N images, C channels, H x W feature map, K RoIs, PH x PW output bins
    input (N, C, H, W) float16/32/64        rois (K, 5) [batch_index, x1, y1, x2, y2] image px,
                                             or a list of N per-image (K_i, 4) boxes
    (float16 is computed in float32 and returned as float16, as torchvision does)
    out   (K, C, PH, PW) input's dtype       argmax (K, C, PH, PW) int32, h * W + w or -1
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..gpu.roi import roi_pool as roi_pool_cuda
from ..gpu.roi import roi_pool_backward as roi_pool_backward_cuda
from .bilinear import (accept_torchvision_forms, as_dtype, as_pair, c_round, check_input_shape,
                        check_scale, nchw_to_nhwc, prepare_argmax, prepare_grad, prepare_input,
                        prepare_rois)
from .dispatch import CUDA, resolve_impl

FLT_MAX = float(np.finfo(np.float32).max)  # the running max starts at -FLT_MAX, as in C
# Rounded corners are clamped to +-CORNER_MAX cells, far outside any feature map, so that
# coordinates near the float limits (~3e38, or inf once scaled) give the same bins in every
# twin -- an out-of-range float -> int conversion is undefined in C and differs in NumPy.
CORNER_MAX = 2**29


# ============================================================================ public API
def roi_pool(input, rois, output_size, spatial_scale=1.0, *, return_argmax=False, impl=None):
    """RoIPool forward. Returns out (K, C, PH, PW), or (out, argmax) when return_argmax.

    input: (N, C, H, W) float16/32/64. rois: (K, 5) [batch_index, x1, y1, x2, y2] image
    pixels (cast to input's dtype), or a list of per-image (K_i, 4) boxes. output_size: int or (PH, PW). spatial_scale: 1/stride.
    argmax: int32 (K, C, PH, PW) flat index h * W + w of the max in the input plane, -1 if empty.
    """
    input, rois, out_dtype = accept_torchvision_forms(input, rois)
    impl = resolve_impl(impl, input, rois, available=ROI_POOL)
    if impl == CUDA:  # the CUDA twin checks its arguments itself (CuPy arrays stay on the GPU)
        out, argmax = roi_pool_cuda(input, rois, output_size, spatial_scale, return_argmax=True)
    else:
        input = prepare_input(input)
        ph, pw = as_pair(output_size)
        scale = check_scale(spatial_scale)
        rois = prepare_rois(rois, input.dtype, input.shape[0])
        out, argmax = ROI_POOL[impl](input, rois, ph, pw, scale)
    out = as_dtype(out, out_dtype)
    return (out, argmax) if return_argmax else out


def roi_pool_backward(grad_output, rois, input_shape, output_size, spatial_scale=1.0, *,
                      argmax=None, impl=None):
    """dL/dinput (N, C, H, W): grad_output[k, c, ph, pw] is added at argmax[k, c, ph, pw].

    argmax: the forward's (``return_argmax=True``), a keyword as in every RoI backward.
    Only the batch index of ``rois`` is read (spatial_scale is accepted for symmetry).
    """
    grad_output, rois, out_dtype = accept_torchvision_forms(grad_output, rois)
    impl = resolve_impl(impl, grad_output, rois, argmax, available=ROI_POOL_BACKWARD)
    if impl == CUDA:
        return as_dtype(roi_pool_backward_cuda(grad_output, rois, input_shape, output_size,
                                               spatial_scale, argmax=argmax), out_dtype)
    n, c, h, w = check_input_shape(input_shape)
    ph, pw = as_pair(output_size)
    check_scale(spatial_scale)
    grad_output = np.asarray(grad_output)
    dtype = grad_output.dtype if grad_output.dtype in (np.float32, np.float64) else np.float32
    rois = prepare_rois(rois, dtype, n)
    grad_output = prepare_grad(grad_output, dtype, (len(rois), c, ph, pw))
    argmax = prepare_argmax(argmax, grad_output.shape, 0, h * w, "roi_pool backward")
    grad = ROI_POOL_BACKWARD[impl](grad_output, rois, argmax, (n, c, h, w))
    return as_dtype(grad, out_dtype)


# ============================================================================ geometry
def quantized_roi(roi, t, spatial_scale):
    """Quantisation 1: (start_w, start_h, end_w, end_h) as integer feature cells (C round,
    clamped to +-CORNER_MAX)."""
    s = t(spatial_scale)
    return tuple(int(np.clip(c_round(roi[i] * s), -CORNER_MAX, CORNER_MAX)) for i in (1, 2, 3, 4))


def roi_pool_bins(rois, dtype, spatial_scale, ph_, pw_, h, w):
    """Quantisation 2, for all RoIs: clipped bin edges hstart, hend (K, PH); wstart, wend (K, PW).

    A bin covers rows hstart..hend-1 and columns wstart..wend-1 (empty if either is empty).
    """
    t = np.dtype(dtype).type
    s = t(spatial_scale)
    with np.errstate(over="ignore", invalid="ignore"):  # corners near the float limit
        sw, sh, ew, eh = (np.clip(c_round(rois[:, i] * s), -CORNER_MAX, CORNER_MAX).astype(np.int64)
                          for i in (1, 2, 3, 4))
    roi_w = np.maximum(ew - sw + 1, 1)  # inclusive integer corners, at least one cell
    roi_h = np.maximum(eh - sh + 1, 1)
    bin_h = roi_h.astype(dtype) / t(ph_)
    bin_w = roi_w.astype(dtype) / t(pw_)
    p_h, p_w = np.arange(ph_ + 1).astype(dtype), np.arange(pw_ + 1).astype(dtype)
    hstart = np.floor(p_h[None, :-1] * bin_h[:, None]).astype(np.int64) + sh[:, None]
    hend = np.ceil(p_h[None, 1:] * bin_h[:, None]).astype(np.int64) + sh[:, None]
    wstart = np.floor(p_w[None, :-1] * bin_w[:, None]).astype(np.int64) + sw[:, None]
    wend = np.ceil(p_w[None, 1:] * bin_w[:, None]).astype(np.int64) + sw[:, None]
    return (np.clip(hstart, 0, h), np.clip(hend, 0, h), np.clip(wstart, 0, w),
            np.clip(wend, 0, w))


# ============================================================================ reference
def roi_pool_reference(input, rois, ph_, pw_, spatial_scale):
    """The specification: every bin of every RoI and channel, pixel by pixel."""
    n, c_, h, w = input.shape
    t = input.dtype.type
    out = np.zeros((len(rois), c_, ph_, pw_), input.dtype)
    argmax = np.full(out.shape, -1, np.int32)
    for k in range(len(rois)):
        b = int(rois[k, 0])
        start_w, start_h, end_w, end_h = quantized_roi(rois[k], t, spatial_scale)
        roi_w, roi_h = max(end_w - start_w + 1, 1), max(end_h - start_h + 1, 1)
        bin_h, bin_w = t(roi_h) / t(ph_), t(roi_w) / t(pw_)
        for ph in range(ph_):
            for pw in range(pw_):
                hstart = min(max(int(np.floor(t(ph) * bin_h)) + start_h, 0), h)
                hend = min(max(int(np.ceil(t(ph + 1) * bin_h)) + start_h, 0), h)
                wstart = min(max(int(np.floor(t(pw) * bin_w)) + start_w, 0), w)
                wend = min(max(int(np.ceil(t(pw + 1) * bin_w)) + start_w, 0), w)
                empty = hend <= hstart or wend <= wstart
                for c in range(c_):
                    best, best_i = (t(0) if empty else t(-FLT_MAX)), -1
                    for y in range(hstart, hend):
                        for x in range(wstart, wend):
                            if input[b, c, y, x] > best:  # strict: ties keep the first
                                best, best_i = input[b, c, y, x], y * w + x
                    out[k, c, ph, pw], argmax[k, c, ph, pw] = best, best_i
    return out, argmax


def roi_pool_backward_reference(grad_output, rois, argmax, input_shape):
    n, c_, h, w = input_shape
    grad_input = np.zeros(input_shape, grad_output.dtype)
    k_, _, ph_, pw_ = grad_output.shape
    for k in range(k_):
        b = int(rois[k, 0])
        for c in range(c_):
            for ph in range(ph_):
                for pw in range(pw_):
                    a = argmax[k, c, ph, pw]
                    if a >= 0:
                        grad_input[b, c, a // w, a % w] += grad_output[k, c, ph, pw]
    return grad_input


# ============================================================================ numpy
def roi_pool_numpy(input, rois, ph_, pw_, spatial_scale):
    """Vectorised over RoIs, bins and channels; loops over the pixel offsets inside a bin."""
    n, c_, h, w = input.shape
    k_ = len(rois)
    hs, he, ws, we = roi_pool_bins(rois, input.dtype, spatial_scale, ph_, pw_, h, w)
    x = input.transpose(0, 2, 3, 1)  # (N, H, W, C)
    b = rois[:, 0].astype(np.int64)[:, None, None]
    empty = ((he <= hs)[:, :, None] | (we <= ws)[:, None, :])[..., None]  # (K, PH, PW, 1)
    best = np.where(empty, input.dtype.type(0), input.dtype.type(-FLT_MAX))
    best = np.broadcast_to(best, (k_, ph_, pw_, c_)).copy()
    arg = np.full(best.shape, -1, np.int64)
    max_h = int((he - hs).max(initial=0))
    max_w = int((we - ws).max(initial=0))
    for dy in range(max_h):  # rows first, then columns: torchvision's scan order
        y = hs + dy
        y_ok = y < he
        y = np.minimum(y, h - 1)
        for dx in range(max_w):
            xx = ws + dx
            ok = (y_ok[:, :, None] & (xx < we)[:, None, :])[..., None]
            xx = np.minimum(xx, w - 1)
            v = x[b, y[:, :, None], xx[:, None, :]]                      # (K, PH, PW, C)
            win = ok & (v > best)
            best = np.where(win, v, best)
            arg = np.where(win, (y[:, :, None] * w + xx[:, None, :])[..., None], arg)
    return (np.ascontiguousarray(best.transpose(0, 3, 1, 2)),
            np.ascontiguousarray(arg.transpose(0, 3, 1, 2)).astype(np.int32))


def roi_pool_backward_numpy(grad_output, rois, argmax, input_shape):
    n, c_, h, w = input_shape
    grad = np.zeros((n, c_, h * w), grad_output.dtype)
    b = rois[:, 0].astype(np.int64)[:, None, None, None]
    c = np.arange(c_)[None, :, None, None]
    hit = argmax >= 0
    # np.add.at adds repeated indices one by one, in torchvision's (k, c, ph, pw) order
    np.add.at(grad, (b, c, np.where(hit, argmax, 0)), np.where(hit, grad_output, 0))
    return grad.reshape(input_shape)


# ============================================================================ numba
@njit(parallel=True, cache=True)
def _roi_pool_forward_kernel(x, batch, hs, he, ws, we, out, argmax):
    """x (N, H, W, C) channels-last; one RoI per task, channels innermost (SIMD)."""
    n, h, w, c_ = x.shape
    k_, _, ph_, pw_ = out.shape
    lowest = x.dtype.type(-FLT_MAX)
    for k in prange(k_):
        b = batch[k]
        best = np.empty(c_, x.dtype)
        arg = np.empty(c_, np.int32)
        for ph in range(ph_):
            for pw in range(pw_):
                empty = he[k, ph] <= hs[k, ph] or we[k, pw] <= ws[k, pw]
                best[:] = 0 if empty else lowest
                arg[:] = -1
                for y in range(hs[k, ph], he[k, ph]):
                    for xx in range(ws[k, pw], we[k, pw]):
                        row = x[b, y, xx]
                        i = np.int32(y * w + xx)
                        for c in range(c_):
                            if row[c] > best[c]:
                                best[c] = row[c]
                                arg[c] = i
                for c in range(c_):
                    out[k, c, ph, pw] = best[c]
                    argmax[k, c, ph, pw] = arg[c]


@njit(parallel=True, cache=True)
def _roi_pool_backward_kernel(g, batch, argmax, grad):
    """One channel per task: a channel's plane is written by that task only (no races)."""
    k_, c_, ph_, pw_ = g.shape
    w = grad.shape[3]
    for c in prange(c_):
        for k in range(k_):
            b = batch[k]
            for ph in range(ph_):
                for pw in range(pw_):
                    a = argmax[k, c, ph, pw]
                    if a >= 0:
                        grad[b, c, a // w, a % w] += g[k, c, ph, pw]


def roi_pool_numba(input, rois, ph_, pw_, spatial_scale):
    n, c_, h, w = input.shape
    out = np.empty((len(rois), c_, ph_, pw_), input.dtype)
    argmax = np.empty(out.shape, np.int32)
    if out.size:
        bins = roi_pool_bins(rois, input.dtype, spatial_scale, ph_, pw_, h, w)
        _roi_pool_forward_kernel(nchw_to_nhwc(input), rois[:, 0].astype(np.int64), *bins,
                                 out, argmax)
    return out, argmax


def roi_pool_backward_numba(grad_output, rois, argmax, input_shape):
    grad = np.zeros(input_shape, grad_output.dtype)
    if grad_output.size:
        _roi_pool_backward_kernel(grad_output, rois[:, 0].astype(np.int64), argmax, grad)
    return grad


# ============================================================================ the twins
ROI_POOL = {"reference": roi_pool_reference, "numpy": roi_pool_numpy, "numba": roi_pool_numba,
            CUDA: roi_pool_cuda}
ROI_POOL_BACKWARD = {"reference": roi_pool_backward_reference, "numpy": roi_pool_backward_numpy,
                     "numba": roi_pool_backward_numba, CUDA: roi_pool_backward_cuda}
