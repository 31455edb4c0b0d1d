"""crop_and_resize (TensorFlow's op): hand-computed cases, the TF form, its relation to RoIAlign,
twins against the reference (hypothesis), the backward (adjoint, finite differences) and bad input.

TensorFlow is not installed here, so every expected value is built by hand or by an independent
formula from TF's documented definition (docs/REFERENCE.md §8.5): sample i of a crop of n rows sits at
``y1 + i (y2 - y1) / (n - 1)`` (the centre when n = 1), bilinear inside ``[0, H-1]``, the
extrapolation value outside.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn_np.ops import crop_and_resize, crop_and_resize_backward, crop_and_resize_tf, roi_align

from ._roi_cases import roi_problem

IMPLS = ("reference", "numpy", "numba")
X44 = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)   # value 4 y + x at (y, x)


def expected_crop(plane, box, n_rows, n_cols, scale=1.0, fill=0.0):
    """Independent formula: sample points from the documented grid, bilinear as a weighted sum
    of the four neighbours (not TF's lerp order), fill outside [0, H-1] x [0, W-1]."""
    x1, y1, x2, y2 = np.asarray(box, np.float64) * scale
    h, w = plane.shape

    def grid(a, b, n):
        return np.array([0.5 * (a + b)]) if n == 1 else a + np.arange(n) * (b - a) / (n - 1)
    out = np.empty((n_rows, n_cols))
    for i, y in enumerate(grid(y1, y2, n_rows)):
        for j, x in enumerate(grid(x1, x2, n_cols)):
            if not (0 <= y <= h - 1 and 0 <= x <= w - 1):
                out[i, j] = fill
                continue
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            ya, xa = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = y - y0, x - x0
            out[i, j] = ((1 - fy) * (1 - fx) * plane[y0, x0] + (1 - fy) * fx * plane[y0, xa]
                         + fy * (1 - fx) * plane[ya, x0] + fy * fx * plane[ya, xa])
    return out


# ------------------------------------------------------------------ hand-computed cases
@pytest.mark.parametrize("impl", IMPLS)
def test_box_covering_the_map_samples_its_corners(impl):
    rois = np.array([[0, 0, 0, 3, 3]], np.float32)
    assert crop_and_resize(X44, rois, 2, impl=impl)[0, 0].tolist() == [[0, 3], [12, 15]]
    np.testing.assert_array_equal(crop_and_resize(X44, rois, 4, impl=impl), X44)   # every pixel
    np.testing.assert_allclose(crop_and_resize(X44, rois, 3, impl=impl)[0, 0],
                               [[0, 1.5, 3], [6, 7.5, 9], [12, 13.5, 15]])


@pytest.mark.parametrize("impl", IMPLS)
def test_one_row_or_column_samples_the_centre(impl):
    rois = np.array([[0, 0, 0, 3, 3], [0, 1, 0, 2, 2]], np.float32)
    out = crop_and_resize(X44, rois, (1, 3), impl=impl)
    np.testing.assert_allclose(out[0, 0], [[6, 7.5, 9]])        # row y = 1.5
    np.testing.assert_allclose(out[1, 0], [[5, 5.5, 6]])        # y = 1, x = 1 .. 2
    assert crop_and_resize(X44, rois[:1], 1, impl=impl)[0, 0, 0, 0] == 7.5


@pytest.mark.parametrize("impl", IMPLS)
def test_samples_outside_read_the_extrapolation_value(impl):
    rois = np.array([[0, -3, 0, 3, 3]], np.float32)             # x = -3, 0, 3
    out = crop_and_resize(X44, rois, 3, extrapolation_value=-1.0, impl=impl)[0, 0]
    np.testing.assert_allclose(out, [[-1, 0, 3], [-1, 6, 9], [-1, 12, 15]])
    # exactly H - 1 is inside (the last row); a hair beyond is outside
    edge = crop_and_resize(X44, np.array([[0, 0, 3, 0, 3.001]], np.float32), (2, 1),
                           extrapolation_value=7.0, impl=impl)[0, 0, :, 0]
    assert edge.tolist() == [12.0, 7.0]
    assert crop_and_resize(X44, np.array([[0, 5, 5, 9, 9]], np.float32), 2, impl=impl).tolist() \
        == [[[[0, 0], [0, 0]]]]                                 # wholly outside: default 0


@pytest.mark.parametrize("impl", IMPLS)
def test_inverted_box_gives_the_flipped_crop(impl):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 6, 7))
    box = np.array([[0, 0.7, 1.2, 5.1, 4.4]])
    flipped_x = box[:, [0, 3, 2, 1, 4]]                          # x2 < x1
    flipped_both = box[:, [0, 3, 4, 1, 2]]
    a = crop_and_resize(x, box, (4, 5), impl=impl)
    np.testing.assert_allclose(crop_and_resize(x, flipped_x, (4, 5), impl=impl), a[..., ::-1], atol=1e-12)
    np.testing.assert_allclose(crop_and_resize(x, flipped_both, (4, 5), impl=impl), a[..., ::-1, ::-1],
                               atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25])
def test_against_the_independent_formula(rng, impl, scale):
    x = rng.standard_normal((2, 3, 7, 9))
    boxes = [[-4, -2, 20, 30], [3.3, 2.2, 17.9, 11.1], [10, 10, 10, 10], [30, 5, 2, 25], [1, 1, 1.5, 40]]
    rois = np.array([[k % 2, *b] for k, b in enumerate(boxes)], np.float64)
    for size in [(1, 1), (3, 5), (7, 7), (1, 4)]:
        out = crop_and_resize(x, rois, size, scale, extrapolation_value=0.25, impl=impl)
        for k, r in enumerate(rois):
            for c in range(3):
                want = expected_crop(x[int(r[0]), c], r[1:], *size, scale, fill=0.25)
                np.testing.assert_allclose(out[k, c], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_nearest_reads_the_rounded_pixel(impl):
    row = np.array([[[[10.0, 20.0, 30.0, 40.0]]]])
    out = crop_and_resize(row, np.array([[0, 0, 0, 3, 0]], float), (1, 3), method="nearest", impl=impl)
    assert out[0, 0, 0].tolist() == [10, 30, 40]                # x = 0, 1.5 (half: away from 0), 3
    out = crop_and_resize(row, np.array([[0, 0.4, 0, 2.6, 0]]), (1, 2), method="nearest", impl=impl)
    assert out[0, 0, 0].tolist() == [10, 40]


# ------------------------------------------------------------------ the TF form, RoIAlign
@pytest.mark.parametrize("impl", IMPLS)
def test_tf_form_is_the_pixel_form_on_normalised_boxes(rng, impl):
    nchw = rng.standard_normal((2, 3, 6, 8))
    rois = np.array([[1, 0.5, 1.0, 12.0, 9.0], [0, -2.0, 3.0, 6.0, 14.0], [1, 9.0, 8.0, 2.0, 1.0]])
    scale = 0.5
    h, w = nchw.shape[2:]
    boxes = np.stack([rois[:, 2] * scale / (h - 1), rois[:, 1] * scale / (w - 1),
                      rois[:, 4] * scale / (h - 1), rois[:, 3] * scale / (w - 1)], 1)
    want = crop_and_resize(nchw, rois, (4, 3), scale, extrapolation_value=-2, impl=impl)
    nhwc = crop_and_resize_tf(nchw.transpose(0, 2, 3, 1), boxes, rois[:, 0].astype(int), (4, 3),
                              extrapolation_value=-2, impl=impl)
    assert nhwc.shape == (3, 4, 3, 3)
    np.testing.assert_allclose(nhwc.transpose(0, 3, 1, 2), want, atol=1e-12)
    nchw_out = crop_and_resize_tf(nchw, boxes, rois[:, 0].astype(int), (4, 3), data_format="NCHW",
                                  extrapolation_value=-2, impl=impl)
    np.testing.assert_allclose(nchw_out, want, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_tf_unit_box_is_an_align_corners_resize(rng, impl):
    """TF's documentation: boxes [[0, 0, 1, 1]] give resize_bilinear(align_corners=True)."""
    img = rng.standard_normal((1, 5, 4, 2))
    out = crop_and_resize_tf(img, [[0.0, 0.0, 1.0, 1.0]], [0], (9, 7), impl=impl)[0]
    ys, xs = np.arange(9) * 4 / 8, np.arange(7) * 3 / 6      # i (H - 1) / (h - 1)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            y0, x0 = min(int(y), 3), min(int(x), 2)
            fy, fx = y - y0, x - x0
            want = ((1 - fy) * (1 - fx) * img[0, y0, x0] + (1 - fy) * fx * img[0, y0, x0 + 1]
                    + fy * (1 - fx) * img[0, y0 + 1, x0] + fy * fx * img[0, y0 + 1, x0 + 1])
            np.testing.assert_allclose(out[i, j], want, atol=1e-12)


@pytest.mark.parametrize("n", [2, 3, 7])
def test_equals_roi_align_of_the_box_grown_by_half_a_step(rng, n):
    """The difference from RoIAlign is only where the samples sit: crop_and_resize to n x n is
    RoIAlign (aligned=False, one sample per bin) of the box grown by step / 2 on every side --
    and differs from RoIAlign of the same box."""
    x = rng.standard_normal((1, 2, 12, 12))
    box = np.array([2.2, 1.6, 8.0, 9.4])                          # grown box stays in [0, 11]
    dx, dy = (box[2] - box[0]) / (2 * (n - 1)), (box[3] - box[1]) / (2 * (n - 1))
    grown = np.array([[0, box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy]])
    crop = crop_and_resize(x, np.array([[0, *box]]), n)
    np.testing.assert_allclose(crop, roi_align(x, grown, n, 1.0, 1, False), atol=1e-12)
    assert np.abs(crop - roi_align(x, np.array([[0, *box]]), n, 1.0, 1, False)).max() > 1e-3


# ------------------------------------------------------------------ twins, backward
@settings(max_examples=60, deadline=None)
@given(problem=roi_problem(), method=st.sampled_from(["bilinear", "nearest"]),
       fill=st.sampled_from([0.0, -1.5]))
def test_twins_equal_reference(problem, method, fill):
    x, rois, size, scale, rng = problem
    out_r = crop_and_resize(x, rois, size, scale, extrapolation_value=fill, method=method, impl="reference")
    g = rng.standard_normal(out_r.shape).astype(x.dtype)
    gin_r = crop_and_resize_backward(g, rois, x.shape, size, scale, method=method, impl="reference")
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    for impl in ("numpy", "numba"):
        out = crop_and_resize(x, rois, size, scale, extrapolation_value=fill, method=method, impl=impl)
        assert out.dtype == x.dtype
        np.testing.assert_array_equal(out, out_r)                 # the same arithmetic, bit for bit
        gin = crop_and_resize_backward(g, rois, x.shape, size, scale, method=method, impl=impl)
        np.testing.assert_allclose(gin, gin_r, rtol=0, atol=tol)  # numpy scatters in another order


@settings(max_examples=40, deadline=None)
@given(problem=roi_problem(), method=st.sampled_from(["bilinear", "nearest"]))
def test_backward_is_adjoint_of_forward(problem, method):
    x, rois, size, scale, rng = problem
    x, rois = x.astype(np.float64), rois.astype(np.float64)
    out = crop_and_resize(x, rois, size, scale, extrapolation_value=3.0, method=method)
    g = rng.standard_normal(out.shape)
    gin = crop_and_resize_backward(g, rois, x.shape, size, scale, method=method)
    fill = crop_and_resize(np.zeros_like(x), rois, size, scale, extrapolation_value=3.0, method=method)
    np.testing.assert_allclose(((out - fill) * g).sum(), (x * gin).sum(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("impl", IMPLS)
def test_finite_difference_gradient(rng, impl):
    x = rng.standard_normal((2, 2, 6, 7))
    rois = np.array([[0, 0.3, 0.6, 5.1, 4.3], [1, -2.2, 1.1, 3.3, 7.7], [1, 5.3, 4.2, 1.2, 0.4]])
    g = rng.standard_normal((3, 2, 3, 4))
    analytic = crop_and_resize_backward(g, rois, x.shape, (3, 4), impl=impl)
    numeric = np.zeros_like(x)
    eps = 1e-6
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        numeric[idx] = ((crop_and_resize(xp, rois, (3, 4), impl=impl)
                         - crop_and_resize(xm, rois, (3, 4), impl=impl)) * g).sum() / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)
    assert np.abs(analytic).sum() > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_coordinates_agree_in_every_twin(dtype):
    """Overflowing grids (inf steps, 0 * inf = NaN samples) read the extrapolation value."""
    x = np.arange(50, dtype=dtype).reshape(1, 2, 5, 5)
    rois = np.array([[0, -3e38, -3e38, 3e38, 3e38], [0, 3e38, 3e38, 3e38, 3e38],
                     [0, 0, 0, 3e38, 3e38], [0, 1, 1, 3, 3]], dtype)
    outs = [crop_and_resize(x, rois, 3, 2.0, extrapolation_value=-1, impl=i) for i in IMPLS]
    grads = [crop_and_resize_backward(np.ones_like(outs[0]), rois, x.shape, 3, 2.0, impl=i) for i in IMPLS]
    for o, gr in zip(outs[1:], grads[1:]):
        np.testing.assert_array_equal(o, outs[0])
        np.testing.assert_array_equal(gr, grads[0])
    assert (outs[0][1] == -1).all() and np.isfinite(grads[0]).all()      # wholly outside
    if dtype == np.float32:  # 6e38 overflows: inf corners and steps, NaN samples -> all outside
        assert (outs[0][:3] == -1).all()
    else:                    # finite in float64: the corner / centre samples land on pixel (0, 0)
        assert outs[0][0, 0, 1, 1] == 0 and outs[0][2, 1, 0, 0] == 25


@pytest.mark.parametrize("impl", IMPLS)
def test_no_rois_float16_and_list_form(impl):
    out = crop_and_resize(X44, np.zeros((0, 5), np.float32), 3, impl=impl)
    assert out.shape == (0, 1, 3, 3)
    g = crop_and_resize_backward(out, np.zeros((0, 5), np.float32), X44.shape, 3, impl=impl)
    assert g.shape == X44.shape and not g.any()
    boxes = [np.array([[0, 0, 3, 3]], np.float32), np.array([[1, 1, 2, 2], [0, 0, 1, 3]], np.float32)]
    x = np.concatenate([X44, X44 + 100])
    rois = np.array([[0, 0, 0, 3, 3], [1, 1, 1, 2, 2], [1, 0, 0, 1, 3]], np.float32)
    np.testing.assert_array_equal(crop_and_resize(x, boxes, 2, impl=impl), crop_and_resize(x, rois, 2, impl=impl))
    half = crop_and_resize(X44.astype(np.float16), rois[:1], 2, impl=impl)
    assert half.dtype == np.float16 and half[0, 0].tolist() == [[0, 3], [12, 15]]


# ------------------------------------------------------------------ bad input
ROI = np.array([[0, 0, 0, 3, 3]], np.float32)


@pytest.mark.parametrize("call, name", [
    (lambda: crop_and_resize(X44, ROI, 0), "output_size"),
    (lambda: crop_and_resize(X44, ROI, (2, 1.5)), "output_size"),
    (lambda: crop_and_resize(X44, ROI, 2, -1.0), "spatial_scale"),
    (lambda: crop_and_resize(X44, ROI, 2, method="bicubic"), "method"),
    (lambda: crop_and_resize(X44, ROI, 2, extrapolation_value="zero"), "extrapolation_value"),
    (lambda: crop_and_resize(X44, ROI[:, 1:], 2), "rois"),
    (lambda: crop_and_resize(X44, np.array([[1, 0, 0, 3, 3]], np.float32), 2), "rois"),
    (lambda: crop_and_resize(X44, np.array([[0, np.nan, 0, 3, 3]], np.float32), 2), "rois"),
    (lambda: crop_and_resize(X44[0], ROI, 2), "input"),
    (lambda: crop_and_resize(X44.astype(int), ROI, 2), "input"),
    (lambda: crop_and_resize(X44, ROI, 2, impl="cupy"), "impl"),
    (lambda: crop_and_resize_backward(np.ones((1, 1, 3, 3), np.float32), ROI, X44.shape, 2), "grad_output"),
    (lambda: crop_and_resize_backward(np.ones((1, 1, 2, 2), np.float32), ROI, (1, 1, 4), 2), "input_shape"),
    (lambda: crop_and_resize_backward(np.ones((1, 1, 2, 2), np.float32), ROI, X44.shape, 2, impl="cupy"), "impl"),
    (lambda: crop_and_resize_tf(X44, [[0, 0, 1, 1]], [0], 0), "crop_size"),
    (lambda: crop_and_resize_tf(X44, [[0, 0, 1, 1]], [1], 2), "box_ind"),
    (lambda: crop_and_resize_tf(X44, [[0, 0, 1, 1]], [0, 0], 2), "box_ind"),
    (lambda: crop_and_resize_tf(X44, [[0, 0, 1, 1]], [0.0], 2), "box_ind"),
    (lambda: crop_and_resize_tf(X44, [[0, 0, 1, np.inf]], [0], 2), "boxes"),
    (lambda: crop_and_resize_tf(X44, [[0, 0, 1]], [0], 2), "boxes"),
    (lambda: crop_and_resize_tf(X44, [[0, 0, 1, 1]], [0], 2, data_format="HWC"), "data_format"),
    (lambda: crop_and_resize_tf(X44[0], [[0, 0, 1, 1]], [0], 2), "image"),
])
def test_bad_input_raises_one_clear_error(call, name):
    with pytest.raises(ValueError, match=name):
        call()
