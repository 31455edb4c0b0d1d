"""RoI ops as differentiable Tensor ops: gradients reach the feature map (gradcheck)."""

import numpy as np
import pytest

from mrcnn_np.autodiff import F, Tensor, gradcheck

try:
    from mrcnn_np.ops import roi_align, roi_pool, roi_warp  # noqa: F401
    HAVE_ROI = True
except ImportError:
    HAVE_ROI = False

pytestmark = pytest.mark.skipif(not HAVE_ROI, reason="mrcnn_np.ops RoI ops not available yet")

# boxes well inside the 8x8 map and away from integer sample positions (no kinks)
ROIS = np.array([[0, 1.3, 0.7, 6.1, 5.2], [1, 0.4, 2.2, 4.9, 7.3], [0, 2.1, 2.3, 3.3, 3.9]])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_avg_gradcheck(seed, aligned):
    x = np.random.default_rng(seed).standard_normal((2, 2, 8, 8))
    gradcheck(lambda x: F.roi_align(x, ROIS, (3, 2), 1.0, 2, aligned), [x])


@pytest.mark.parametrize("seed", [0, 1])
def test_roi_align_max_and_roi_pool_and_roi_warp_gradcheck(seed):
    x = np.random.default_rng(seed).standard_normal((2, 2, 8, 8))
    gradcheck(lambda x: F.roi_align(x, ROIS, 2, 1.0, 2, aggregation="max"), [x])
    gradcheck(lambda x: F.roi_pool(x, ROIS, 2), [x])
    gradcheck(lambda x: F.roi_warp(x, ROIS, 2, 1.0, 2), [x])
    gradcheck(lambda x: F.roi_warp(x, ROIS, 2, 1.0, 2, aggregation="avg"), [x])


def test_roi_align_wrapper_equals_op_and_rois_get_no_grad():
    from mrcnn_np.ops import roi_align
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    t = Tensor(x, requires_grad=True)
    out = F.roi_align(t, ROIS.astype(np.float32), 2, 0.5, -1)
    np.testing.assert_array_equal(out.data, roi_align(x, ROIS.astype(np.float32), 2, 0.5, -1))
    out.sum().backward()
    assert t.grad.shape == x.shape and t.grad.dtype == np.float32


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("size, fill", [((3, 2), 0.0), (1, -2.0), ((4, 4), 0.5)])
def test_crop_and_resize_gradcheck(seed, size, fill):
    """Against float64 central differences; ROIS plus a box partly outside (extrapolated cells)."""
    rois = np.concatenate([ROIS, [[1, -2.3, 5.1, 3.7, 9.6]]])
    x = np.random.default_rng(seed).standard_normal((2, 2, 8, 8))
    gradcheck(lambda x: F.crop_and_resize(x, rois, size, 1.0, extrapolation_value=fill), [x])
    gradcheck(lambda x: F.crop_and_resize(x, rois * [1, 2, 2, 2, 2], size, 0.5), [x])


def test_crop_and_resize_wrapper_equals_op_and_rois_get_no_grad():
    from mrcnn_np.ops import crop_and_resize, crop_and_resize_backward
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    rois = Tensor(ROIS.astype(np.float32), requires_grad=True)
    t = Tensor(x, requires_grad=True)
    out = F.crop_and_resize(t, rois, (3, 4), 0.5, extrapolation_value=1.0)
    np.testing.assert_array_equal(out.data, crop_and_resize(x, ROIS.astype(np.float32), (3, 4), 0.5,
                                                            extrapolation_value=1.0))
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    np.testing.assert_array_equal(t.grad, crop_and_resize_backward(g, ROIS.astype(np.float32), x.shape,
                                                                   (3, 4), 0.5))
    assert rois.grad is None
