"""im2col / col2im: turn a convolution into one matrix product.

Concept: a convolution computes, at every output position, a dot product between the
filter and the input patch under it. Copying every patch into a column of a matrix
("image to columns") makes all those dot products one matrix product::

    cols[n] : (C*kh*kw, Ho*Wo)      one column per output position
    W       : (O, C*kh*kw)          one row per filter
    out[n]  = W @ cols[n]           (O, Ho*Wo)  ==  (O, Ho, Wo), already NCHW

``col2im`` is the adjoint (transpose) of ``im2col``: it adds every column entry back to
the pixel it was copied from (overlapping patches are summed). It gives the input
gradient of a convolution and the forward pass of a transposed convolution.

Layout (project contract, same as torch's ``F.unfold``)::

    cols[n, (c*kh + i)*kw + j, oh*Wo + ow] = x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
    (0 outside the image)

Shapes: N images, C channels, H x W input, kh x kw kernel, Ho x Wo output.
Implementations (tables ``IM2COL`` / ``COL2IM``, see :mod:`mrcnn_np.ops.dispatch`):
``im2col_reference`` (loops, the specification), ``im2col_numpy`` (one slice per kernel
tap; also runs on CuPy), ``im2col_numba`` (parallel, the CPU default), ``im2col_cuda``
(kernels/im2col.cu, from :mod:`mrcnn_np.gpu.conv`); the same for col2im. The ``rows``
argument (oh0, oh1) restricts the output rows so a convolution can work in bands.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit, prange

from ..gpu.conv import col2im_cuda, im2col_cuda
from ..ops.dispatch import resolve_impl

__all__ = ["im2col", "col2im", "conv_output_shape", "conv_params", "pair", "IM2COL", "COL2IM"]


def pair(v, name: str) -> tuple[int, int]:
    """An int or an (h, w) pair -> (h, w) of Python ints."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    t = tuple(int(a) for a in v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or an (h, w) pair, got {v!r}")
    return t


def conv_output_shape(H, W, kernel_size, stride, padding, dilation):
    """(Ho, Wo) of a convolution: floor((H + 2p - d*(k-1) - 1) / s) + 1."""
    (kh, kw), (sh, sw) = kernel_size, stride
    (ph, pw), (dh, dw) = padding, dilation
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return Ho, Wo


def conv_params(x_shape, kernel_size, stride, padding, dilation):
    k, s = pair(kernel_size, "kernel_size"), pair(stride, "stride")
    p, d = pair(padding, "padding"), pair(dilation, "dilation")
    if min(k) < 1 or min(s) < 1 or min(d) < 1 or min(p) < 0:
        raise ValueError(f"need kernel_size, stride, dilation >= 1 and padding >= 0, got "
                         f"kernel_size={k}, stride={s}, padding={p}, dilation={d}")
    Ho, Wo = conv_output_shape(x_shape[2], x_shape[3], k, s, p, d)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"input of spatial size {tuple(x_shape[2:])} is too small for "
                         f"kernel_size={k}, padding={p}, dilation={d} (output {Ho}x{Wo})")
    return k, s, p, d, Ho, Wo


# (mrcnn_np.gpu.conv.conv_geometry restates these rules for the GPU layer, which imports
# nothing from autodiff; tests/gpu/test_conv_kernels.py checks the two agree.)


# ------------------------------------------------------------------ reference (loops)
def im2col_reference(x, k, s, p, d, Ho, Wo, oh0, oh1):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, s, p, d
    cols = np.zeros((N, C * kh * kw, (oh1 - oh0) * Wo), x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    for oh in range(oh0, oh1):
                        for ow in range(Wo):
                            ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                            if 0 <= ih < H and 0 <= iw < W:
                                cols[n, (c * kh + i) * kw + j, (oh - oh0) * Wo + ow] = x[n, c, ih, iw]
    return cols


def col2im_reference(cols, x_shape, k, s, p, d, Ho, Wo, oh0, oh1, out=None):
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, s, p, d
    x = np.zeros(x_shape, cols.dtype) if out is None else out
    for n in range(N):
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    for oh in range(oh0, oh1):
                        for ow in range(Wo):
                            ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                            if 0 <= ih < H and 0 <= iw < W:
                                x[n, c, ih, iw] += cols[n, (c * kh + i) * kw + j, (oh - oh0) * Wo + ow]
    return x


# ------------------------------------------------------------------ numpy (one slice per tap)
def _tap_slices(i, j, k, s, p, d, H, W, Ho, Wo, oh0, oh1):
    """For tap (i, j): the padded-input slices that feed output rows oh0..oh1."""
    (sh, sw), (dh, dw) = s, d          # padding is already applied to the input
    r0 = oh0 * sh + i * dh
    c0 = j * dw
    return slice(r0, r0 + sh * (oh1 - oh0 - 1) + 1, sh), slice(c0, c0 + sw * (Wo - 1) + 1, sw)


def im2col_numpy(x, k, s, p, d, Ho, Wo, oh0, oh1):
    xp = np if type(x).__module__ == "numpy" else __import__("cupy")
    N, C, H, W = x.shape
    (kh, kw), (ph, pw) = k, p
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = xp.empty((N, C, kh, kw, oh1 - oh0, Wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            rs, cs = _tap_slices(i, j, k, s, p, d, H, W, Ho, Wo, oh0, oh1)
            cols[:, :, i, j] = xpad[:, :, rs, cs]
    return cols.reshape(N, C * kh * kw, (oh1 - oh0) * Wo)


def col2im_numpy(cols, x_shape, k, s, p, d, Ho, Wo, oh0, oh1, out=None):
    xp = np if type(cols).__module__ == "numpy" else __import__("cupy")
    N, C, H, W = x_shape
    (kh, kw), (ph, pw) = k, p
    xpad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), cols.dtype)
    c6 = cols.reshape(N, C, kh, kw, oh1 - oh0, Wo)
    for i in range(kh):
        for j in range(kw):
            rs, cs = _tap_slices(i, j, k, s, p, d, H, W, Ho, Wo, oh0, oh1)
            xpad[:, :, rs, cs] += c6[:, :, i, j]
    x = xpad[:, :, ph:ph + H, pw:pw + W]
    if out is None:
        return xp.ascontiguousarray(x)
    out += x
    return out


# ------------------------------------------------------------------ numba (CPU default)
# Both kernels work on one (image, channel) plane at a time through a zero-padded copy of
# it, so the inner loops need no bounds tests: with unit stride they are plain contiguous
# copies/additions that LLVM vectorises (measured on the 3x3 layers of one teaching step:
# col2im 14.8 -> 12.5 ms; im2col 7.5 ms against the NumPy twin's 8.4 ms).
@njit(cache=True, inline="always")
def _padded_plane(x, n, c, ph, pw):
    """x[n, c] inside a zero border of ph rows and pw columns."""
    H, W = x.shape[2], x.shape[3]
    buf = np.zeros((H + 2 * ph, W + 2 * pw), x.dtype)
    for h in range(H):
        for w in range(W):
            buf[ph + h, pw + w] = x[n, c, h, w]
    return buf


@njit(cache=True, inline="always")
def _im2col_task(x, cols, t, kh, kw, sh, sw, ph, pw, dh, dw, oh0, oh1, Wo):
    """Fill the kh*kw rows of cols[n] that read channel plane t = n * C + c."""
    C = x.shape[1]
    n = t // C
    c = t % C
    buf = _padded_plane(x, n, c, ph, pw)
    for i in range(kh):
        for j in range(kw):
            r = (c * kh + i) * kw + j
            for a in range(oh1 - oh0):
                row = buf[(oh0 + a) * sh + i * dh]
                base = a * Wo
                if sw == 1:
                    for b in range(Wo):
                        cols[n, r, base + b] = row[j * dw + b]
                else:
                    for b in range(Wo):
                        cols[n, r, base + b] = row[j * dw + b * sw]


@njit(cache=True, inline="always")
def _col2im_task(cols, x, t, kh, kw, sh, sw, ph, pw, dh, dw, oh0, oh1, Wo):
    """Accumulate every tap of channel plane t = n * C + c (planes never overlap: no races).

    The padded buffer starts as x[n, c], so each pixel receives the same additions in
    the same order as when adding into x directly."""
    N, C, H, W = x.shape
    n = t // C
    c = t % C
    buf = _padded_plane(x, n, c, ph, pw)
    for i in range(kh):
        for j in range(kw):
            r = (c * kh + i) * kw + j
            for a in range(oh1 - oh0):
                row = buf[(oh0 + a) * sh + i * dh]
                base = a * Wo
                if sw == 1:
                    for b in range(Wo):
                        row[j * dw + b] += cols[n, r, base + b]
                else:
                    for b in range(Wo):
                        row[j * dw + b * sw] += cols[n, r, base + b]
    for h in range(H):
        for w in range(W):
            x[n, c, h, w] = buf[ph + h, pw + w]


# Serial and parallel drivers of the same task. Waking the thread pool costs far more than
# a small layer's work (milliseconds on a busy 2-core machine), so small problems run serially.
@njit(cache=True)
def _im2col_serial(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh0, oh1, Wo):
    for t in range(x.shape[0] * x.shape[1]):
        _im2col_task(x, cols, t, kh, kw, sh, sw, ph, pw, dh, dw, oh0, oh1, Wo)


@njit(parallel=True, cache=True)
def _im2col_parallel(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh0, oh1, Wo):
    for t in prange(x.shape[0] * x.shape[1]):
        _im2col_task(x, cols, t, kh, kw, sh, sw, ph, pw, dh, dw, oh0, oh1, Wo)


@njit(cache=True)
def _col2im_serial(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, oh0, oh1, Wo):
    for t in range(x.shape[0] * x.shape[1]):
        _col2im_task(cols, x, t, kh, kw, sh, sw, ph, pw, dh, dw, oh0, oh1, Wo)


@njit(parallel=True, cache=True)
def _col2im_parallel(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, oh0, oh1, Wo):
    for t in prange(x.shape[0] * x.shape[1]):
        _col2im_task(cols, x, t, kh, kw, sh, sw, ph, pw, dh, dw, oh0, oh1, Wo)


# Elements above which the parallel drivers are used (env MRCNN_NP_PARALLEL_MIN). Off by
# default: a convolution alternates these kernels with 2-thread BLAS products, and each
# thread pool then waits for the other's spinning threads to yield the 2 cores (measured:
# 110-1700 ms per 3x3 layer with parallel im2col vs 80 ms serial). Set it (e.g. 4194304)
# on machines with more cores than BLAS threads.
PARALLEL_MIN = int(os.environ.get("MRCNN_NP_PARALLEL_MIN", 1 << 62))


def im2col_numba(x, k, s, p, d, Ho, Wo, oh0, oh1):
    N, C = x.shape[:2]
    x = np.ascontiguousarray(x)
    cols = np.empty((N, C * k[0] * k[1], (oh1 - oh0) * Wo), x.dtype)
    kernel = _im2col_parallel if cols.size >= PARALLEL_MIN else _im2col_serial
    kernel(x, cols, k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], oh0, oh1, Wo)
    return cols


def col2im_numba(cols, x_shape, k, s, p, d, Ho, Wo, oh0, oh1, out=None):
    x = np.zeros(x_shape, cols.dtype) if out is None else out
    kernel = _col2im_parallel if cols.size >= PARALLEL_MIN else _col2im_serial
    kernel(np.ascontiguousarray(cols), x, k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], oh0, oh1, Wo)
    return x


# One table per op: impl name -> twin, all with the internal signature above. The CUDA
# twins (kernels/im2col.cu, col2im.cu) run on the GPU for CuPy input, through the host shim
# for NumPy input.
IM2COL = {"reference": im2col_reference, "numpy": im2col_numpy, "numba": im2col_numba,
          "cupy": im2col_cuda}
COL2IM = {"reference": col2im_reference, "numpy": col2im_numpy, "numba": col2im_numba,
          "cupy": col2im_cuda}


# ------------------------------------------------------------------ public API
def im2col(x, kernel_size, stride=1, padding=0, dilation=1, *, rows=None, impl=None):
    """Copy every receptive field of ``x`` into a column.

    x: (N, C, H, W) float array.
    rows: optional (oh0, oh1) range of output rows to produce (default all Ho rows).
    Returns cols (N, C*kh*kw, (oh1-oh0)*Wo), layout in the module docstring.
    """
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {getattr(x, 'shape', None)}")
    k, s, p, d, Ho, Wo = conv_params(x.shape, kernel_size, stride, padding, dilation)
    oh0, oh1 = rows if rows is not None else (0, Ho)
    impl = resolve_impl(impl, x, available=IM2COL)
    return IM2COL[impl](x, k, s, p, d, Ho, Wo, oh0, oh1)


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1, *, rows=None,
           out=None, impl=None):
    """Adjoint of :func:`im2col`: scatter-add columns back onto an (N, C, H, W) image.

    cols: (N, C*kh*kw, (oh1-oh0)*Wo); input_shape: (N, C, H, W).
    out: optional (N, C, H, W) array to accumulate into (it is returned).
    """
    input_shape = tuple(int(v) for v in input_shape)
    if len(input_shape) != 4:
        raise ValueError(f"input_shape must be (N, C, H, W), got {input_shape}")
    k, s, p, d, Ho, Wo = conv_params(input_shape, kernel_size, stride, padding, dilation)
    oh0, oh1 = rows if rows is not None else (0, Ho)
    want = (input_shape[0], input_shape[1] * k[0] * k[1], (oh1 - oh0) * Wo)
    if tuple(cols.shape) != want:
        raise ValueError(f"cols must have shape {want} for input_shape {input_shape}, got {tuple(cols.shape)}")
    impl = resolve_impl(impl, cols, available=COL2IM)
    return COL2IM[impl](cols, input_shape, k, s, p, d, Ho, Wo, oh0, oh1, out=out)
