"""RoIAlign: pool a feature-map region into a fixed PH x PW grid with no rounding anywhere.

Mask R-CNN section 3 ("RoIAlign"): RoIPool rounds the RoI to the feature grid and rounds
its bins again, so the pooled features are shifted against the object by up to a stride;
harmless for classification, harmful for pixel-accurate masks. RoIAlign keeps the RoI
coordinates as real numbers (``x / 16``, not ``[x / 16]``), cuts the RoI into PH x PW equal
bins, reads ``grid_h x grid_w`` regularly spaced points in each bin by bilinear
interpolation and aggregates them (average by default; ``aggregation="max"`` is the
paper's other column in Table 2c).

Exactly torchvision's C++ kernel (docs/REFERENCE.md section 8), including its borders:
  * RoI in feature coordinates: ``start = x1 * spatial_scale - offset`` (offset 0.5 when
    ``aligned`` -- pixel i covers [i, i+1) and is read at its centre -- else 0);
    ``aligned=False`` forces the RoI to be at least 1 x 1 (legacy), ``aligned=True``
    allows any size, even 0 or negative.
  * ``sampling_ratio > 0``: that many samples per bin side; ``<= 0`` (adaptive):
    ``ceil(roi_h / PH)`` x ``ceil(roi_w / PW)``, about one sample per cell.
  * sample (iy, ix) of bin (ph, pw) sits at
    ``y = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h`` (same for x).
  * a sample with y < -1, y > H, x < -1 or x > W reads 0; in [-1, 0] and [H-1, H] it reads
    the border row/column (see :func:`mrcnn_np.ops.bilinear.bilinear_interpolate`).
  * "avg" divides by ``max(grid_h * grid_w, 1)``: samples that fell outside count, as zeros.
  * "max" (ours, torchvision has no max): the largest sample value; an outside sample
    takes part with its value 0 (so a bin wholly outside the map gives 0) and, if it wins,
    passes no gradient back; a bin with no sample at all (grid 0, only possible with
    ``aligned=True`` and adaptive sampling) gives 0 and argmax -1. Ties: first sample wins.

The backward pass scatters each output gradient to the 4 bilinear neighbours of every
sample (avg: divided by the count; max: only the winning sample). RoIs get no gradient.

Shapes::

    N images, C channels, H x W feature map, K RoIs, PH x PW output bins
    input (N, C, H, W) float16/32/64        rois (K, 5) [batch_index, x1, y1, x2, y2] image px,
                                             or a list of N per-image (K_i, 4) boxes
    (float16 is computed in float32 and returned as float16, as torchvision does)
    out   (K, C, PH, PW) input's dtype       argmax (K, C, PH, PW) int32, iy * grid_w + ix
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..gpu.roi import roi_align as roi_align_cuda
from ..gpu.roi import roi_align_backward as roi_align_backward_cuda
from .bilinear import (accept_torchvision_forms, as_dtype, as_pair, axis_tables_numba,
                        bilinear_interpolate, bilinear_interpolate_gradient, channel_block,
                        check_aggregation, check_input_shape, check_scale, nchw_to_nhwc,
                        nhwc_to_nchw, prepare_argmax, prepare_grad, prepare_input, prepare_rois)
from .roi_geometry import (check_sample_budget, grid_groups, roi_geometry, roi_geometry_arrays, sample_axes,
                            sample_coordinate)
from .dispatch import CUDA, resolve_impl


# ============================================================================ public API
def roi_align(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False, *,
              aggregation="avg", return_argmax=False, impl=None):
    """RoIAlign forward. Returns out (K, C, PH, PW), or (out, argmax) when return_argmax.

    input: (N, C, H, W) float16/32/64 features. rois: (K, 5) [batch_index, x1, y1, x2, y2]
    in image pixels (cast to input's dtype), or a list of per-image (K_i, 4) boxes. output_size: int or (PH, PW). spatial_scale:
    feature cells per image pixel (1/stride). sampling_ratio: samples per bin side, <= 0
    adaptive. aligned: half-pixel shift (detectron2's ROIAlignV2). aggregation: "avg" | "max".
    argmax: int32 index iy * grid_w + ix of the winning sample (all -1 for "avg").
    """
    input, rois, out_dtype = accept_torchvision_forms(input, rois)
    impl = resolve_impl(impl, input, rois, available=ROI_ALIGN)
    if impl == CUDA:  # the CUDA twin checks its arguments itself (CuPy arrays stay on the GPU)
        res = roi_align_cuda(input, rois, output_size, spatial_scale, sampling_ratio, aligned,
                             aggregation=aggregation, return_argmax=True)
    else:
        input = prepare_input(input)
        ph, pw = as_pair(output_size)
        scale = check_scale(spatial_scale)
        use_max = check_aggregation(aggregation) == "max"
        rois = prepare_rois(rois, input.dtype, input.shape[0])
        check_sample_budget(rois, input.dtype, scale, ph, pw, int(sampling_ratio), bool(aligned))
        out, argmax = ROI_ALIGN[impl](input, rois, ph, pw, scale, int(sampling_ratio),
                                      bool(aligned), use_max)
        res = out, (argmax if argmax is not None else np.full(out.shape, -1, np.int32))
    return (as_dtype(res[0], out_dtype), res[1]) if return_argmax else as_dtype(res[0], out_dtype)


def roi_align_backward(grad_output, rois, input_shape, output_size, spatial_scale=1.0,
                       sampling_ratio=-1, aligned=False, *, aggregation="avg", argmax=None,
                       impl=None):
    """dL/dinput (N, C, H, W) from dL/dout (K, C, PH, PW); the same geometry as the forward.

    aggregation="max" needs the forward's argmax (``return_argmax=True``); an argmax that
    names no sample of its bin raises ValueError (in every twin, the CUDA one included).
    """
    grad_output, rois, out_dtype = accept_torchvision_forms(grad_output, rois)
    impl = resolve_impl(impl, grad_output, rois, available=ROI_ALIGN_BACKWARD)
    if impl == CUDA:
        return as_dtype(roi_align_backward_cuda(
            grad_output, rois, input_shape, output_size, spatial_scale, sampling_ratio, aligned,
            aggregation=aggregation, argmax=argmax), out_dtype)
    n, c, h, w = check_input_shape(input_shape)
    ph, pw = as_pair(output_size)
    scale = check_scale(spatial_scale)
    use_max = check_aggregation(aggregation) == "max"
    grad_output = np.asarray(grad_output)
    dtype = grad_output.dtype if grad_output.dtype in (np.float32, np.float64) else np.float32
    rois = prepare_rois(rois, dtype, n)
    grad_output = prepare_grad(grad_output, dtype, (len(rois), c, ph, pw))
    check_sample_budget(rois, dtype, scale, ph, pw, int(sampling_ratio), bool(aligned))
    if use_max:
        argmax = prepare_argmax(argmax, grad_output.shape, 0, np.iinfo(np.int32).max,
                                "aggregation='max'")
        geo = roi_geometry_arrays(rois, dtype, scale, ph, pw, int(sampling_ratio), bool(aligned))
        samples = np.maximum(geo[5], 0) * np.maximum(geo[6], 0)  # samples per bin, per RoI
        if argmax.size and (argmax >= samples[:, None, None, None]).any():
            raise ValueError("argmax names a sample outside its bin's grid; it must come from "
                             "roi_align(..., return_argmax=True) with the same arguments")
    grad = ROI_ALIGN_BACKWARD[impl](grad_output, rois, (n, c, h, w), ph, pw, scale,
                                    int(sampling_ratio), bool(aligned), use_max, argmax)
    return as_dtype(grad, out_dtype)


# ============================================================================ reference
def roi_align_reference(input, rois, ph_, pw_, spatial_scale, sampling_ratio, aligned, use_max):
    """The specification: one output element at a time, one sample at a time."""
    n, c_, h, w = input.shape
    t = input.dtype.type
    out = np.zeros((len(rois), c_, ph_, pw_), input.dtype)
    argmax = np.full(out.shape, -1, np.int32)
    for k in range(len(rois)):
        b, start_h, start_w, bin_h, bin_w, gh, gw = roi_geometry(
            rois[k], t, spatial_scale, ph_, pw_, sampling_ratio, aligned)
        count = t(max(gh * gw, 1))
        for c in range(c_):
            plane = input[b, c]
            for ph in range(ph_):
                for pw in range(pw_):
                    total, best, best_i = t(0), t(0), -1
                    for iy in range(gh):
                        y = sample_coordinate(start_h, ph, bin_h, iy, gh)
                        for ix in range(gw):
                            x = sample_coordinate(start_w, pw, bin_w, ix, gw)
                            v = bilinear_interpolate(plane, y, x)
                            total += v
                            if best_i < 0 or v > best:  # strict: the first maximum wins
                                best, best_i = v, iy * gw + ix
                    if use_max:
                        out[k, c, ph, pw], argmax[k, c, ph, pw] = best, best_i
                    else:
                        out[k, c, ph, pw] = total / count
    return out, argmax


def roi_align_backward_reference(grad_output, rois, input_shape, ph_, pw_, spatial_scale,
                                  sampling_ratio, aligned, use_max, argmax):
    n, c_, h, w = input_shape
    t = grad_output.dtype.type
    grad_input = np.zeros(input_shape, grad_output.dtype)
    for k in range(len(rois)):
        b, start_h, start_w, bin_h, bin_w, gh, gw = roi_geometry(
            rois[k], t, spatial_scale, ph_, pw_, sampling_ratio, aligned)
        count = t(gh * gw)
        for c in range(c_):
            for ph in range(ph_):
                for pw in range(pw_):
                    g = grad_output[k, c, ph, pw]
                    if use_max:  # only the winning sample received the output
                        a = int(argmax[k, c, ph, pw])
                        samples = [] if a < 0 else [(a // gw, a % gw)]
                    else:
                        samples = [(iy, ix) for iy in range(gh) for ix in range(gw)]
                    for iy, ix in samples:
                        y = sample_coordinate(start_h, ph, bin_h, iy, gh)
                        x = sample_coordinate(start_w, pw, bin_w, ix, gw)
                        w1, w2, w3, w4, x_lo, x_hi, y_lo, y_hi = bilinear_interpolate_gradient(
                            h, w, y, x)
                        if y_lo < 0:  # the sample read 0 from outside the map
                            continue
                        for wk, yy, xx in ((w1, y_lo, x_lo), (w2, y_lo, x_hi),
                                           (w3, y_hi, x_lo), (w4, y_hi, x_hi)):
                            grad_input[b, c, yy, xx] += g * wk if use_max else g * wk / count
    return grad_input


# ============================================================================ numpy
def roi_align_numpy(input, rois, ph_, pw_, spatial_scale, sampling_ratio, aligned, use_max):
    """Vectorised over RoIs, bins and channels; one loop step per sample of the bin."""
    n, c_, h, w = input.shape
    geo = roi_geometry_arrays(rois, input.dtype, spatial_scale, ph_, pw_, sampling_ratio, aligned)
    x = input.transpose(0, 2, 3, 1)  # (N, H, W, C): one gather reads all channels
    out = np.zeros((len(rois), ph_, pw_, c_), input.dtype)
    argmax = np.full(out.shape, -1, np.int32)
    for gh, gw, idx in grid_groups(geo):
        (yl, yh, ly, hy, _), (xl, xh, lx, hx, _) = sample_axes(geo, idx, ph_, pw_, gh, gw, h, w)
        b = geo[0][idx][:, None, None]
        acc = np.zeros((len(idx), ph_, pw_, c_), input.dtype)
        best_i = np.full(acc.shape, -1, np.int32)
        for iy in range(gh):
            y0, y1 = yl[:, :, iy, None], yh[:, :, iy, None]          # (k, PH, 1)
            fy0, fy1 = hy[:, :, iy, None], ly[:, :, iy, None]
            for ix in range(gw):
                x0, x1 = xl[:, None, :, ix], xh[:, None, :, ix]      # (k, 1, PW)
                fx0, fx1 = hx[:, None, :, ix], lx[:, None, :, ix]
                v = ((fy0 * fx0)[..., None] * x[b, y0, x0] + (fy0 * fx1)[..., None] * x[b, y0, x1]
                     + (fy1 * fx0)[..., None] * x[b, y1, x0] + (fy1 * fx1)[..., None] * x[b, y1, x1])
                if use_max:
                    win = (best_i < 0) | (v > acc)
                    acc = np.where(win, v, acc)
                    best_i = np.where(win, np.int32(iy * gw + ix), best_i)
                else:
                    acc += v
        out[idx] = acc if use_max else acc / geo[7][idx][:, None, None, None]
        argmax[idx] = best_i
    return (np.ascontiguousarray(out.transpose(0, 3, 1, 2)),
            np.ascontiguousarray(argmax.transpose(0, 3, 1, 2)) if use_max else None)


def roi_align_backward_numpy(grad_output, rois, input_shape, ph_, pw_, spatial_scale,
                              sampling_ratio, aligned, use_max, argmax):
    n, c_, h, w = input_shape
    dtype = grad_output.dtype
    geo = roi_geometry_arrays(rois, dtype, spatial_scale, ph_, pw_, sampling_ratio, aligned)
    grad = np.zeros((n, h, w, c_), dtype)  # channels-last so one scatter moves all channels
    g_all = grad_output.transpose(0, 2, 3, 1)
    am_all = argmax.transpose(0, 2, 3, 1) if use_max else None
    for gh, gw, idx in grid_groups(geo):
        (yl, yh, ly, hy, _), (xl, xh, lx, hx, _) = sample_axes(geo, idx, ph_, pw_, gh, gw, h, w)
        b = geo[0][idx][:, None, None]
        g = g_all[idx]
        count = geo[5][idx] * geo[6][idx]
        for iy in range(gh):
            for ix in range(gw):
                gs = np.where(am_all[idx] == iy * gw + ix, g, 0) if use_max else g
                for yi, fy, xi, fx in ((yl, hy, xl, hx), (yl, hy, xh, lx),
                                       (yh, ly, xl, hx), (yh, ly, xh, lx)):
                    wk = (fy[:, :, iy, None] * fx[:, None, :, ix])[..., None]
                    contrib = gs * wk if use_max else gs * wk / count.astype(dtype)[:, None, None, None]
                    np.add.at(grad, (b, yi[:, :, iy, None], xi[:, None, :, ix]), contrib)
    return np.ascontiguousarray(grad.transpose(0, 3, 1, 2))


# ============================================================================ numba
@njit(parallel=True, cache=True)
def _roi_align_forward_kernel(x, batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w, count,
                              ph_, pw_, use_max, out, argmax):
    """x (N, H, W, C) channels-last; writes every element of out and (max) argmax (K, C, PH, PW).

    One RoI per task; the innermost loop runs over contiguous channels (SIMD).
    """
    n, h, w, c_ = x.shape
    for k in prange(batch.shape[0]):
        gh, gw = grid_h[k], grid_w[k]
        if gh <= 0 or gw <= 0:  # no sample in any bin: 0 (and argmax -1)
            out[k] = 0
            if use_max:
                argmax[k] = -1
            continue
        b = batch[k]
        yl, yh, ly, hy = axis_tables_numba(start_h[k], bin_h[k], ph_, gh, h, x)
        xl, xh, lx, hx = axis_tables_numba(start_w[k], bin_w[k], pw_, gw, w, x)
        # this RoI's bins, channels-last, then written to out[k] (C, PH, PW) in memory order:
        # writing each bin straight to out would stride by PH * PW elements per channel
        loc = np.empty((ph_ * pw_, c_), x.dtype)
        locb = np.empty((ph_ * pw_, c_), np.int32)
        for ph in range(ph_):
            for pw in range(pw_):
                acc = loc[ph * pw_ + pw]
                best = locb[ph * pw_ + pw]
                acc[:] = 0
                best[:] = -1
                for iy in range(gh):
                    for ix in range(gw):
                        w1, w2 = hy[ph, iy] * hx[pw, ix], hy[ph, iy] * lx[pw, ix]
                        w3, w4 = ly[ph, iy] * hx[pw, ix], ly[ph, iy] * lx[pw, ix]
                        r1, r2 = x[b, yl[ph, iy], xl[pw, ix]], x[b, yl[ph, iy], xh[pw, ix]]
                        r3, r4 = x[b, yh[ph, iy], xl[pw, ix]], x[b, yh[ph, iy], xh[pw, ix]]
                        if use_max:
                            s = np.int32(iy * gw + ix)
                            for c in range(c_):
                                v = w1 * r1[c] + w2 * r2[c] + w3 * r3[c] + w4 * r4[c]
                                if best[c] < 0 or v > acc[c]:
                                    acc[c] = v
                                    best[c] = s
                        else:
                            for c in range(c_):
                                acc[c] += w1 * r1[c] + w2 * r2[c] + w3 * r3[c] + w4 * r4[c]
                if not use_max:
                    cnt = count[k]
                    for c in range(c_):
                        acc[c] /= cnt
        for c in range(c_):
            for j in range(ph_ * pw_):
                out[k, c, j // pw_, j % pw_] = loc[j, c]
                if use_max:
                    argmax[k, c, j // pw_, j % pw_] = locb[j, c]


@njit(parallel=True, cache=True)
def _roi_align_backward_kernel(g, batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w, count,
                               use_max, am, grad, block):
    """g, am (K, PH, PW, C) channels-last; grad (N, H, W, C) zeros, accumulated.

    Tasks own disjoint channel blocks, so no two threads ever add to the same element
    (no atomics, no per-thread copies); within a channel the additions run in
    torchvision's order (RoI, bin, sample), so float32 results match it bit for bit.
    """
    k_, ph_, pw_, c_ = g.shape
    n, h, w, _ = grad.shape
    for cb in prange((c_ + block - 1) // block):
        c0, c1 = cb * block, min(c_, cb * block + block)
        for k in range(k_):
            gh, gw = grid_h[k], grid_w[k]
            if gh <= 0 or gw <= 0:
                continue
            b = batch[k]
            cnt = count[k]
            yl, yh, ly, hy = axis_tables_numba(start_h[k], bin_h[k], ph_, gh, h, g)
            xl, xh, lx, hx = axis_tables_numba(start_w[k], bin_w[k], pw_, gw, w, g)
            for ph in range(ph_):
                for pw in range(pw_):
                    if use_max:
                        for c in range(c0, c1):
                            s = am[k, ph, pw, c]
                            if s < 0:
                                continue
                            iy, ix = s // gw, s % gw
                            if hy[ph, iy] + ly[ph, iy] == 0 or hx[pw, ix] + lx[pw, ix] == 0:
                                continue  # the winner was outside the map
                            gc = g[k, ph, pw, c]
                            grad[b, yl[ph, iy], xl[pw, ix], c] += gc * (hy[ph, iy] * hx[pw, ix])
                            grad[b, yl[ph, iy], xh[pw, ix], c] += gc * (hy[ph, iy] * lx[pw, ix])
                            grad[b, yh[ph, iy], xl[pw, ix], c] += gc * (ly[ph, iy] * hx[pw, ix])
                            grad[b, yh[ph, iy], xh[pw, ix], c] += gc * (ly[ph, iy] * lx[pw, ix])
                        continue
                    for iy in range(gh):
                        if hy[ph, iy] + ly[ph, iy] == 0:
                            continue  # outside the map: no neighbours
                        for ix in range(gw):
                            if hx[pw, ix] + lx[pw, ix] == 0:
                                continue
                            w1, w2 = hy[ph, iy] * hx[pw, ix], hy[ph, iy] * lx[pw, ix]
                            w3, w4 = ly[ph, iy] * hx[pw, ix], ly[ph, iy] * lx[pw, ix]
                            d1, d2 = grad[b, yl[ph, iy], xl[pw, ix]], grad[b, yl[ph, iy], xh[pw, ix]]
                            d3, d4 = grad[b, yh[ph, iy], xl[pw, ix]], grad[b, yh[ph, iy], xh[pw, ix]]
                            gk = g[k, ph, pw]
                            for c in range(c0, c1):
                                d1[c] += gk[c] * w1 / cnt
                                d2[c] += gk[c] * w2 / cnt
                                d3[c] += gk[c] * w3 / cnt
                                d4[c] += gk[c] * w4 / cnt


def roi_align_numba(input, rois, ph_, pw_, spatial_scale, sampling_ratio, aligned, use_max):
    geo = roi_geometry_arrays(rois, input.dtype, spatial_scale, ph_, pw_, sampling_ratio, aligned)
    out = np.empty((len(rois), input.shape[1], ph_, pw_), input.dtype)  # kernel writes all
    argmax = np.empty(out.shape if use_max else (0, 0, 0, 0), np.int32)
    if out.size:
        _roi_align_forward_kernel(nchw_to_nhwc(input), *geo, ph_, pw_, use_max, out, argmax)
    return out, (argmax if use_max else None)


def roi_align_backward_numba(grad_output, rois, input_shape, ph_, pw_, spatial_scale,
                              sampling_ratio, aligned, use_max, argmax):
    n, c_, h, w = input_shape
    dtype = grad_output.dtype
    if grad_output.size == 0 or n * c_ == 0:
        return np.zeros(input_shape, dtype)
    geo = roi_geometry_arrays(rois, dtype, spatial_scale, ph_, pw_, sampling_ratio, aligned)
    g = np.ascontiguousarray(grad_output.transpose(0, 2, 3, 1))
    am = (np.ascontiguousarray(argmax.transpose(0, 2, 3, 1)) if use_max
          else np.zeros((1, 1, 1, 1), np.int32))
    grad = np.zeros((n, h, w, c_), dtype)
    _roi_align_backward_kernel(g, *geo, use_max, am, grad, channel_block(c_))
    return nhwc_to_nchw(grad)


# ============================================================================ the twins
ROI_ALIGN = {"reference": roi_align_reference, "numpy": roi_align_numpy,
             "numba": roi_align_numba, CUDA: roi_align_cuda}
ROI_ALIGN_BACKWARD = {"reference": roi_align_backward_reference, "numpy": roi_align_backward_numpy,
                      "numba": roi_align_backward_numba, CUDA: roi_align_backward_cuda}
