"""Pieces shared by RoIPool, RoIWarp and RoIAlign: input checks, C rounding, bilinear sampling.

The three RoI ops (Mask R-CNN section 3, Table 2c) differ in two places only: whether the
RoI corners are rounded to the feature grid (:func:`c_round`) and whether a bin reads
whole cells (RoIPool) or bilinear samples (RoIWarp, RoIAlign). This module holds those
two primitives once, in the three flavours the ops need:

* ``bilinear_interpolate`` / ``bilinear_interpolate_gradient``: one point, plain Python,
  the specification (torchvision's C++ kernel, docs/REFERENCE.md section 8.1). The names match
  the CUDA twins in ``kernels/roi_align.cu``.
* ``bilinear_axis``: the same rule for a whole array of coordinates along one axis
  (bilinear weights are a product of a y-factor and an x-factor), for the NumPy paths.
* ``bilinear_axis_numba`` / ``axis_tables_numba``: the same for one coordinate, and for all
  (bin, sample) coordinates of one RoI along one axis, inside numba kernels.

Shapes::

    N images, C channels, H x W feature map, K RoIs, PH x PW output bins
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .._checks import check_boxes, check_features, check_rois
from ..gpu.launch import array_module

AGGREGATIONS = ("avg", "max")
HALF = np.dtype(np.float16)  # computed in float32, returned as float16 (torchvision's autocast)


# ----------------------------------------------------------------------------- checks
def as_pair(output_size, name: str = "output_size") -> tuple[int, int]:
    """(PH, PW) from an int or a pair of positive ints."""
    try:
        ph, pw = (output_size, output_size) if np.isscalar(output_size) else tuple(output_size)
        ok = int(ph) == ph and int(pw) == pw and ph >= 1 and pw >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a positive int or a pair (PH, PW), got {output_size!r}")
    return int(ph), int(pw)


def check_aggregation(aggregation: str) -> str:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    return aggregation


def check_scale(spatial_scale) -> float:
    s = float(spatial_scale)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"spatial_scale must be a positive finite number, got {spatial_scale!r}")
    return s


def check_input_shape(input_shape) -> tuple[int, int, int, int]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 4 or min(shape) < 0 or shape[2] < 1 or shape[3] < 1:
        raise ValueError(f"input_shape must be (N, C, H, W) with H, W >= 1, got {input_shape!r}")
    return shape


def prepare_rois(rois, dtype, n_images: int) -> np.ndarray:
    """(K, 5) C-contiguous rois of ``dtype`` (the input's, as torchvision requires).

    The batch index column must hold integers in [0, N): the kernels index memory with it.
    """
    rois = check_rois(rois)
    rois = np.ascontiguousarray(rois, dtype=dtype)
    if len(rois):
        b = rois[:, 0]
        if ((b < 0) | (b >= n_images) | (b != np.floor(b))).any():
            raise ValueError(f"rois[:, 0] must hold integer batch indices in [0, {n_images})")
    return rois


def boxes_list_to_rois(boxes):
    """(K, 5) rois [image index, x1, y1, x2, y2] from a list of per-image (K_i, 4) boxes.

    torchvision's second form of ``rois``: ``boxes[i]`` holds the boxes of image i, so the
    rows of the result (and of the op's output) follow the list order. An empty list or
    empty per-image arrays give (0, 5). The dtype is the boxes' common float dtype.
    """
    boxes = [check_boxes(b, f"rois[{i}]") for i, b in enumerate(boxes)]
    if not boxes:
        return np.zeros((0, 5), np.float32)
    xp = array_module(*boxes)
    dtype = np.result_type(*[b.dtype for b in boxes])
    index = [xp.full((len(b), 1), i, dtype) for i, b in enumerate(boxes)]
    return xp.concatenate([xp.concatenate([i, b.astype(dtype)], axis=1)
                           for i, b in zip(index, boxes)], axis=0)


def accept_torchvision_forms(input, rois, input_name="input"):
    """(input, rois, out_dtype): the RoI ops' two extra input forms, as torchvision has them.

    * ``rois`` as a list/tuple of per-image (K_i, 4) boxes -> (K, 5) rois;
    * float16 ``input`` -> computed in float32; out_dtype is float16, the dtype the caller
      returns (None when the input's own dtype is kept).
    """
    if isinstance(rois, (list, tuple)):
        rois = boxes_list_to_rois(rois)
    out_dtype = None
    if getattr(input, "dtype", None) == HALF:
        input, out_dtype = input.astype(np.float32), HALF
    return input, rois, out_dtype


def as_dtype(x, dtype):
    """x cast to dtype (None: unchanged) -- returns float16 results of float32 computations."""
    return x if dtype is None else x.astype(dtype)


def prepare_input(input) -> np.ndarray:
    """(N, C, H, W) float32/float64 input as a C-contiguous array; H, W >= 1."""
    input = check_features(input)
    if input.dtype not in (np.float32, np.float64):
        raise ValueError(f"input must be float32 or float64, got {input.dtype}")
    if input.shape[2] < 1 or input.shape[3] < 1:
        raise ValueError(f"input must have H, W >= 1, got shape {input.shape}")
    return np.ascontiguousarray(input)


def prepare_grad(grad_output, dtype_like_rois, shape) -> np.ndarray:
    grad_output = check_features(grad_output, "grad_output")
    if grad_output.dtype not in (np.float32, np.float64):
        raise ValueError(f"grad_output must be float32 or float64, got {grad_output.dtype}")
    if grad_output.shape != tuple(shape):
        raise ValueError(f"grad_output must have shape {tuple(shape)}, got {grad_output.shape}")
    return np.ascontiguousarray(grad_output)


def prepare_argmax(argmax, shape, low: int, high: int, what: str) -> np.ndarray:
    if argmax is None:
        raise ValueError(f"argmax is required ({what}); get it from the forward pass "
                         "with return_argmax=True")
    argmax = np.asarray(argmax)
    if argmax.shape != tuple(shape) or argmax.dtype.kind not in "iu":
        raise ValueError(f"argmax must be an integer array of shape {tuple(shape)}, "
                         f"got {argmax.dtype} {argmax.shape}")
    if argmax.size and ((argmax < -1) | (argmax >= high)).any():
        raise ValueError(f"argmax values must be -1 or in [{low}, {high})")
    return np.ascontiguousarray(argmax, dtype=np.int32)


# ----------------------------------------------------------------------------- rounding
def c_round(v):
    """C's ``round``: halves go away from zero (2.5 -> 3, -2.5 -> -3, 0.5 -> 1).

    ``np.round`` rounds halves to even (2.5 -> 2) and ``floor(v + 0.5)`` can round up a value
    just below a half in float32 (0.49999997 + 0.5 rounds to 1.0), so we split off the
    integer part, which is exact. Works on scalars and arrays; keeps the dtype.
    """
    a = np.abs(v)
    f = np.floor(a)
    return np.copysign(f + (a - f >= 0.5), v)


# ----------------------------------------------------------------------------- reference
def bilinear_interpolate(plane, y, x):
    """Value of the (H, W) ``plane`` at the real point (y, x), torchvision's rule.

    Pixel (i, j) sits at the point (y=i, x=j). A point with y < -1, y > H, x < -1 or x > W
    reads 0; points in [-1, 0] are clamped to 0 (the first row/column, no fade) and points
    in [H-1, H] to the last row (the same for x). In between: the usual bilinear blend.
    """
    height, width = plane.shape
    w1, w2, w3, w4, x_low, x_high, y_low, y_high = bilinear_interpolate_gradient(height, width, y, x)
    if y_low < 0:  # outside: no neighbours
        return plane.dtype.type(0)
    return (w1 * plane[y_low, x_low] + w2 * plane[y_low, x_high]
            + w3 * plane[y_high, x_low] + w4 * plane[y_high, x_high])


def bilinear_interpolate_gradient(height, width, y, x):
    """The four neighbours of (y, x) and their weights: d value / d plane[neighbour].

    Returns (w1, w2, w3, w4, x_low, x_high, y_low, y_high) with w1 for (y_low, x_low),
    w2 (y_low, x_high), w3 (y_high, x_low), w4 (y_high, x_high); weights 0 and indices -1
    when the point is outside [-1, H] x [-1, W]. y and x are scalars of the input dtype,
    and the arithmetic stays in that dtype (so float32 results match torchvision bit for bit).
    """
    t = type(y)
    if not (y >= -1.0 and y <= height and x >= -1.0 and x <= width):
        return t(0), t(0), t(0), t(0), -1, -1, -1, -1
    y = max(y, t(0))
    x = max(x, t(0))
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:  # last row: both neighbours are row H-1
        y_low = y_high = height - 1
        y = t(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = t(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - t(y_low), x - t(x_low)
    hy, hx = t(1) - ly, t(1) - lx
    return hy * hx, hy * lx, ly * hx, ly * lx, x_low, x_high, y_low, y_high


# ----------------------------------------------------------------------------- numpy
def bilinear_axis(coords, size):
    """Bilinear factors along one axis for an array of coordinates (any shape).

    Returns (low, high, l, h, valid): int64 neighbour indices, the weights of the high
    (``l``) and low (``h``) neighbour in the coordinates' dtype, and whether the coordinate
    lies in [-1, size]. The 2-D weight of neighbour (y_low, x_high) is h_y * l_x, etc.
    Invalid coordinates get indices 0 and weights 0.
    """
    t = coords.dtype.type
    valid = (coords >= -1.0) & (coords <= size)
    c = np.where(valid, np.maximum(coords, t(0)), t(0))
    low = c.astype(np.int64)
    last = low >= size - 1
    low = np.where(last, size - 1, low)
    high = np.where(last, low, low + 1)
    c = np.where(last, low.astype(coords.dtype), c)
    l = c - low.astype(coords.dtype)
    h = t(1) - l
    l = np.where(valid, l, t(0))
    h = np.where(valid, h, t(0))
    return low, high, l, h, valid


# ----------------------------------------------------------------------------- numba
@njit(cache=True, inline="always")
def bilinear_axis_numba(c, size, like):
    """One coordinate's (low, high, l, h, valid) -- the scalar twin of :func:`bilinear_axis`.

    like: any array of the input's dtype; the weights are computed in that dtype.
    """
    t = like.dtype.type
    if not (c >= -1.0 and c <= size):
        return 0, 0, t(0), t(0), False
    if c <= 0:
        c = t(0)
    low = int(c)
    if low >= size - 1:
        low = size - 1
        high = low
        c = t(low)
    else:
        high = low + 1
    l = t(c - t(low))
    return low, high, l, t(1) - l, True


@njit(cache=True)
def axis_tables_numba(start, bin_size, pooled, grid, size, like):
    """Bilinear factors of every (bin, sample) coordinate along one axis of one RoI."""
    t = like.dtype.type
    lo = np.zeros((pooled, grid), np.int64)
    hi = np.zeros((pooled, grid), np.int64)
    fl = np.zeros((pooled, grid), like.dtype)
    fh = np.zeros((pooled, grid), like.dtype)
    for p in range(pooled):
        for i in range(grid):
            c = start + t(p) * bin_size + t(i + 0.5) * bin_size / t(grid)
            lo[p, i], hi[p, i], fl[p, i], fh[p, i], _ = bilinear_axis_numba(c, size, like)
    return lo, hi, fl, fh


def channel_block(c: int) -> int:
    """Channels per parallel task: one block per thread, a multiple of 16 (a cache line)."""
    per = -(-c // max(numba.get_num_threads(), 1))
    return max(16, -(-per // 16) * 16)


def nchw_to_nhwc(x):
    """Channels-last copy (N, H, W, C) of x (N, C, H, W) (NumPy's strided copy is fast here)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


@njit(parallel=True, cache=True)
def nhwc_to_nchw(x):
    """(N, C, H, W) copy of a channels-last array (N, H, W, C), in 32 x 32 tiles, rows in parallel."""
    n, h, w, c = x.shape
    out = np.empty((n, c, h, w), dtype=x.dtype)
    tb = 32
    for r in prange(n * h):
        i, y = r // h, r % h
        for c0 in range(0, c, tb):
            for x0 in range(0, w, tb):
                for ch in range(c0, min(c, c0 + tb)):
                    for xx in range(x0, min(w, x0 + tb)):
                        out[i, ch, y, xx] = x[i, y, xx, ch]
    return out
