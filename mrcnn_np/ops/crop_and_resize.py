"""crop_and_resize: TensorFlow's crop-and-bilinear-resize, the "RoIAlign" of many re-implementations.

Many Mask R-CNN re-implementations (matterport's Keras one among them) pool their RoIs with
TensorFlow's ``tf.image.crop_and_resize`` and call it RoIAlign. It does read the feature
map bilinearly with no rounding, but it samples elsewhere (docs/REFERENCE.md §8.5):

  * **one sample per output cell**, no bins and no averaging (RoIAlign: ``grid_h x grid_w``
    samples inside each of PH x PW bins, averaged or maxed);
  * the samples sit on a grid that runs **from box edge to box edge**: for a crop of CH rows,
    row i samples ``y = y1 + i * (y2 - y1) / (CH - 1)`` -- the first row on the top edge,
    the last on the bottom edge (RoIAlign with one sample per bin: bin centres, half a bin
    inside the edges). With CH = CW = 7 (or 14) the outermost samples read the box's
    boundary, where object meets background. A crop of one row samples the box's centre.
  * no half-pixel offset: feature value (i, j) sits at the point (y=i, x=j), as in
    RoIAlign's ``aligned=False``;
  * a sample outside ``[0, H-1] x [0, W-1]`` reads ``extrapolation_value`` (RoIAlign: border
    rows are clamped up to one cell outside, 0 beyond); inside, the four neighbours are
    ``floor`` and ``ceil`` of each coordinate (a sample exactly on a row reads that row);
  * ``y2 < y1`` (or ``x2 < x1``) is allowed and samples the same grid backwards: the crop
    comes out flipped. (RoIAlign makes such a box 1 x 1 with ``aligned=False``.)

Our RoIs are image pixels, ``(K, 5) [batch_index, x1, y1, x2, y2]`` as for :func:`roi_align`.
They are converted to TF's normalised ``[y1, x1, y2, x2]`` on the feature map by scaling to
feature cells and dividing by the map's ``(H - 1, W - 1)``: ``y1_n = y1 * spatial_scale / (H - 1)``.
TF maps ``y_n`` back to ``y_n * (H - 1)``, so the samples land at
``y1 * spatial_scale + i * (y2 - y1) * spatial_scale / (CH - 1)`` on the feature map -- which is
what we compute, directly, without the round trip (it also works for H = 1). Matterport
normalised by the *image's* ``(H_img - 1)`` instead, a sub-cell shrink that we do not copy
(docs/REFERENCE.md §8.5). :func:`crop_and_resize_tf` takes TF's own arguments.

Gradients flow to the input only (the RoIs and extrapolation_value get none): each output
gradient goes to the four neighbours of its sample with the bilinear weights; an
extrapolated cell passes nothing back. There is **no CUDA twin**: ``impl="cupy"`` is refused
(the op exists to be compared with RoIAlign in the Table 2c/2d ablation, on the CPU).

Shapes::

    N images, C channels, H x W feature map, K RoIs, CH x CW crop
    input (N, C, H, W) float16/32/64        rois (K, 5) [batch_index, x1, y1, x2, y2] image px,
                                             or a list of N per-image (K_i, 4) boxes
    (float16 is computed in float32 and returned as float16)
    out   (K, C, CH, CW) input's dtype
    crop_and_resize_tf: image (N, H, W, C) (or NCHW), boxes (K, 4) normalised [y1, x1, y2, x2],
                        box_ind (K,) int -> (K, CH, CW, C) (or (K, C, CH, CW))
"""

from __future__ import annotations

import numpy as np

from .._checks import check_array
from .bilinear import (accept_torchvision_forms, as_dtype, as_pair, c_round, check_input_shape,
                       check_scale, prepare_grad, prepare_input, prepare_rois)
from .crop_and_resize_numba import crop_and_resize_backward_numba, crop_and_resize_numba
from .dispatch import resolve_impl

METHODS = ("bilinear", "nearest")


# ============================================================================ public API
def crop_and_resize(input, rois, output_size, spatial_scale=1.0, *, extrapolation_value=0.0,
                    method="bilinear", impl=None):
    """Crop every RoI and resize it to output_size, sampling edge to edge: (K, C, CH, CW).

    input: (N, C, H, W) features. rois: (K, 5) [batch_index, x1, y1, x2, y2] image pixels, or a
    list of per-image (K_i, 4) boxes. output_size: int or (CH, CW). spatial_scale: feature
    cells per image pixel. extrapolation_value: what a sample outside the map reads.
    method: "bilinear" | "nearest". impl: "reference" | "numpy" | "numba" (no "cupy").
    """
    input, rois, out_dtype = accept_torchvision_forms(input, rois)
    impl = resolve_impl(impl, input, rois, available=CROP_AND_RESIZE)
    input = prepare_input(input)
    ch, cw = as_pair(output_size)
    scale = check_scale(spatial_scale)
    nearest, fill = _check_method(method), _check_fill(extrapolation_value)
    rois = prepare_rois(rois, input.dtype, input.shape[0])
    geo = roi_sampling_grid(rois, scale, ch, cw)
    return as_dtype(CROP_AND_RESIZE[impl](input, *geo, ch, cw, fill, nearest), out_dtype)


def crop_and_resize_backward(grad_output, rois, input_shape, output_size, spatial_scale=1.0, *,
                             method="bilinear", impl=None):
    """dL/dinput (N, C, H, W) from dL/dout (K, C, CH, CW); the same sampling grid as the forward."""
    grad_output, rois, out_dtype = accept_torchvision_forms(grad_output, rois)
    impl = resolve_impl(impl, grad_output, rois, available=CROP_AND_RESIZE_BACKWARD)
    n, c, h, w = check_input_shape(input_shape)
    ch, cw = as_pair(output_size)
    scale = check_scale(spatial_scale)
    nearest = _check_method(method)
    grad_output = np.asarray(grad_output)
    dtype = grad_output.dtype if grad_output.dtype in (np.float32, np.float64) else np.float32
    rois = prepare_rois(rois, dtype, n)
    grad_output = prepare_grad(grad_output, dtype, (len(rois), c, ch, cw))
    geo = roi_sampling_grid(rois, scale, ch, cw)
    return as_dtype(CROP_AND_RESIZE_BACKWARD[impl](grad_output, *geo, (n, c, h, w), nearest),
                    out_dtype)


def crop_and_resize_tf(image, boxes, box_ind, crop_size, *, method="bilinear",
                       extrapolation_value=0.0, data_format="NHWC", impl=None):
    """TensorFlow's own form: normalised boxes (K, 4) [y1, x1, y2, x2], box_ind (K,), NHWC.

    A normalised y maps to ``y * (H - 1)`` on the image. Returns (K, CH, CW, C) for
    data_format "NHWC" (TF's layout), (K, C, CH, CW) for "NCHW".
    """
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    image, _, out_dtype = accept_torchvision_forms(image, None, "image")
    impl = resolve_impl(impl, image, available=CROP_AND_RESIZE)
    image = check_array(image, "image", ndim=4, kinds="f")
    x = prepare_input(image.transpose(0, 3, 1, 2) if data_format == "NHWC" else image)
    n, _, h, w = x.shape
    ch, cw = as_pair(crop_size, "crop_size")
    nearest, fill = _check_method(method), _check_fill(extrapolation_value)
    boxes = check_array(boxes, "boxes", ndim=2, last_dim=4, kinds="fiu", finite=True).astype(x.dtype)
    box_ind = np.asarray(box_ind)
    if box_ind.shape != (len(boxes),) or (box_ind.size and box_ind.dtype.kind not in "iu"):
        raise ValueError(f"box_ind must be an integer array of shape ({len(boxes)},), "
                         f"got {box_ind.dtype} {box_ind.shape}")
    if box_ind.size and ((box_ind < 0) | (box_ind >= n)).any():
        raise ValueError(f"box_ind must hold image indices in [0, {n})")
    t = x.dtype.type
    with np.errstate(over="ignore", invalid="ignore"):
        sy, dy = _axis_grid(boxes[:, 0], boxes[:, 2], t(h - 1), ch)
        sx, dx = _axis_grid(boxes[:, 1], boxes[:, 3], t(w - 1), cw)
    out = CROP_AND_RESIZE[impl](x, box_ind.astype(np.int64), sy, dy, sx, dx, ch, cw, fill, nearest)
    return as_dtype(out.transpose(0, 2, 3, 1) if data_format == "NHWC" else out, out_dtype)


# ============================================================================ geometry
def _check_method(method) -> bool:
    """True for "nearest", False for "bilinear"."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method == "nearest"


def _check_fill(extrapolation_value) -> float:
    try:
        return float(extrapolation_value)
    except (TypeError, ValueError):
        raise ValueError(f"extrapolation_value must be a number, got {extrapolation_value!r}") from None


def _axis_grid(lo, hi, factor, n):
    """(start, step) (K,) along one axis: sample i at ``start + i * step``, TF's arithmetic order.

    ``start = lo * factor``, ``step = (hi - lo) * factor / (n - 1)``; one sample (n = 1): the
    centre ``0.5 * (lo + hi) * factor`` and step 0. factor: (H - 1) for TF's normalised
    boxes, spatial_scale for image pixels.
    """
    t = lo.dtype.type
    if n > 1:
        return lo * factor, (hi - lo) * factor / t(n - 1)
    return t(0.5) * (lo + hi) * factor, np.zeros_like(lo)


def roi_sampling_grid(rois, spatial_scale, ch, cw):
    """(batch, start_y, step_y, start_x, step_x), each (K,): the crop grid in feature cells.

    rois: checked (K, 5) image-pixel RoIs of the input's dtype. Sample (i, j) of RoI k sits
    at ``(start_y[k] + i * step_y[k], start_x[k] + j * step_x[k])``. Overflowing coordinates
    give inf / NaN samples, which read extrapolation_value.
    """
    s = rois.dtype.type(spatial_scale)
    with np.errstate(over="ignore", invalid="ignore"):
        sy, dy = _axis_grid(rois[:, 2], rois[:, 4], s, ch)
        sx, dx = _axis_grid(rois[:, 1], rois[:, 3], s, cw)
    return (rois[:, 0].astype(np.int64), np.ascontiguousarray(sy), np.ascontiguousarray(dy),
            np.ascontiguousarray(sx), np.ascontiguousarray(dx))


def axis_point(c, size, nearest):
    """(low, high, lerp, valid) of one sample coordinate c: TF's rule (the specification).

    Valid only for 0 <= c <= size - 1 (NaN is not). bilinear: the neighbours are floor(c)
    and ceil(c) (the same row when c is whole), lerp = c - floor(c); nearest: the C-rounded
    row (halves away from zero) and lerp 0.
    """
    t = type(c)
    if not (c >= 0 and c <= size - 1):
        return 0, 0, t(0), False
    if nearest:
        i = int(c_round(c))
        return i, i, t(0), True
    lo = int(np.floor(c))
    return lo, int(np.ceil(c)), t(c - t(lo)), True


# ============================================================================ reference
def crop_and_resize_reference(input, batch, start_y, step_y, start_x, step_x, ch, cw,
                              extrapolation, nearest):
    """The specification: one output element at a time."""
    n, c_, h, w = input.shape
    t = input.dtype.type
    out = np.zeros((len(batch), c_, ch, cw), input.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(len(batch)):
            for i in range(ch):
                y0, y1, ly, y_ok = axis_point(start_y[k] + t(i) * step_y[k], h, nearest)
                for j in range(cw):
                    x0, x1, lx, x_ok = axis_point(start_x[k] + t(j) * step_x[k], w, nearest)
                    for c in range(c_):
                        if not (y_ok and x_ok):
                            out[k, c, i, j] = t(extrapolation)
                            continue
                        v = input[batch[k], c]
                        top = v[y0, x0] + (v[y0, x1] - v[y0, x0]) * lx
                        bottom = v[y1, x0] + (v[y1, x1] - v[y1, x0]) * lx
                        out[k, c, i, j] = top + (bottom - top) * ly
    return out


def crop_and_resize_backward_reference(grad_output, batch, start_y, step_y, start_x, step_x,
                                       input_shape, nearest):
    n, c_, h, w = input_shape
    t = grad_output.dtype.type
    grad = np.zeros(input_shape, grad_output.dtype)
    k_, _, ch, cw = grad_output.shape
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(k_):
            b = batch[k]
            for i in range(ch):
                y0, y1, ly, y_ok = axis_point(start_y[k] + t(i) * step_y[k], h, nearest)
                for j in range(cw):
                    x0, x1, lx, x_ok = axis_point(start_x[k] + t(j) * step_x[k], w, nearest)
                    if not (y_ok and x_ok):
                        continue  # extrapolated: a constant, no gradient
                    for c in range(c_):
                        d_top = (t(1) - ly) * grad_output[k, c, i, j]
                        d_bottom = ly * grad_output[k, c, i, j]
                        grad[b, c, y0, x0] += (t(1) - lx) * d_top
                        grad[b, c, y0, x1] += lx * d_top
                        grad[b, c, y1, x0] += (t(1) - lx) * d_bottom
                        grad[b, c, y1, x1] += lx * d_bottom
    return grad


# ============================================================================ numpy
def _axis_tables(start, step, n, size, nearest):
    """low, high, lerp, valid (K, n) of every sample coordinate along one axis: the array
    form of :func:`axis_point`."""
    t = start.dtype.type
    with np.errstate(over="ignore", invalid="ignore"):
        c = start[:, None] + np.arange(n, dtype=start.dtype)[None, :] * step[:, None]
        valid = (c >= 0) & (c <= size - 1)
    c = np.where(valid, c, t(0))
    if nearest:
        lo = c_round(c).astype(np.int64)
        return lo, lo, np.zeros_like(c), valid
    lo = np.floor(c).astype(np.int64)
    return lo, np.ceil(c).astype(np.int64), c - lo.astype(c.dtype), valid


def crop_and_resize_numpy(input, batch, start_y, step_y, start_x, step_x, ch, cw,
                          extrapolation, nearest):
    """Vectorised over RoIs, crop cells and channels (channels-last gathers)."""
    n, c_, h, w = input.shape
    y0, y1, ly, yv = _axis_tables(start_y, step_y, ch, h, nearest)
    x0, x1, lx, xv = _axis_tables(start_x, step_x, cw, w, nearest)
    x = input.transpose(0, 2, 3, 1)
    b = batch[:, None, None]
    r0, r1, c0, c1 = y0[:, :, None], y1[:, :, None], x0[:, None, :], x1[:, None, :]
    lx_, ly_ = lx[:, None, :, None], ly[:, :, None, None]
    top = x[b, r0, c0] + (x[b, r0, c1] - x[b, r0, c0]) * lx_          # (K, CH, CW, C)
    bottom = x[b, r1, c0] + (x[b, r1, c1] - x[b, r1, c0]) * lx_
    out = top + (bottom - top) * ly_
    inside = (yv[:, :, None] & xv[:, None, :])[..., None]
    out = np.where(inside, out, input.dtype.type(extrapolation))
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def crop_and_resize_backward_numpy(grad_output, batch, start_y, step_y, start_x, step_x,
                                   input_shape, nearest):
    n, c_, h, w = input_shape
    k_, _, ch, cw = grad_output.shape
    t = grad_output.dtype.type
    y0, y1, ly, yv = _axis_tables(start_y, step_y, ch, h, nearest)
    x0, x1, lx, xv = _axis_tables(start_x, step_x, cw, w, nearest)
    inside = (yv[:, :, None] & xv[:, None, :])[..., None]
    g = np.where(inside, grad_output.transpose(0, 2, 3, 1), t(0))     # (K, CH, CW, C)
    d_top, d_bottom = (t(1) - ly)[:, :, None, None] * g, ly[:, :, None, None] * g
    wl, wr = (t(1) - lx)[:, None, :, None], lx[:, None, :, None]
    grad = np.zeros((n, h, w, c_), grad_output.dtype)  # channels-last: one scatter per neighbour
    b = batch[:, None, None]
    for rows, cols, part in ((y0, x0, wl * d_top), (y0, x1, wr * d_top),
                             (y1, x0, wl * d_bottom), (y1, x1, wr * d_bottom)):
        np.add.at(grad, (b, rows[:, :, None], cols[:, None, :]), part)
    return np.ascontiguousarray(grad.transpose(0, 3, 1, 2))


# ============================================================================ the twins
# No CUDA twin: impl="cupy" is not in these tables, so resolve_impl refuses it.
CROP_AND_RESIZE = {"reference": crop_and_resize_reference, "numpy": crop_and_resize_numpy,
                   "numba": crop_and_resize_numba}
CROP_AND_RESIZE_BACKWARD = {"reference": crop_and_resize_backward_reference,
                            "numpy": crop_and_resize_backward_numpy,
                            "numba": crop_and_resize_backward_numba}
