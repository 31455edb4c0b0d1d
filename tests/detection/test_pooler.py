"""FPN level mapping and the multi-level pooler (forward and the per-level backward)."""

import numpy as np
import pytest

from mrcnn_np.detection.pooler import (infer_scales, level_range, map_levels,
                                       multiscale_roi_pool, pooler_backward)
from mrcnn_np.ops import crop_and_resize, crop_and_resize_backward, roi_align, roi_pool, roi_warp


def _box(s):
    return np.array([[0, 0, s, s]], np.float32)


@pytest.mark.parametrize("side, level", [(224, 4), (112, 3), (111.9, 2), (448, 5), (223.99, 3),
                                         (10, 2), (2000, 5), (0, 2)])
def test_map_levels_reference_values(side, level):
    assert map_levels(_box(side), 2, 5)[0] == level - 2


def test_infer_scales_and_range():
    shapes = [(1, 8, 200, 272), (1, 8, 100, 136), (1, 8, 50, 68), (1, 8, 25, 34)]
    scales = infer_scales(shapes, [(800, 1088), (760, 1000)])
    assert scales == [0.25, 0.125, 0.0625, 0.03125]
    assert level_range(scales) == (2, 5)
    assert infer_scales([(199, 1)], [(800, 1)]) == [0.25]  # rounded to a power of two


def _pyramid(rng, c=3, dtype=np.float64):
    feats = [rng.standard_normal((2, c, 64 // 2**i, 80 // 2**i)).astype(dtype) for i in range(4)]
    return feats, [1 / 4, 1 / 8, 1 / 16, 1 / 32]


def _rois(rng, k=30):
    size = np.exp(rng.uniform(np.log(8), np.log(300), (k, 2)))
    xy = rng.uniform(0, 256, (k, 2))
    return np.concatenate([rng.integers(0, 2, (k, 1)), xy, xy + size], 1)


@pytest.mark.parametrize("roi_op, op", [("roialign", roi_align), ("roiwarp", roi_warp),
                                        ("roipool", roi_pool), ("crop_and_resize", crop_and_resize)])
def test_each_roi_pooled_from_its_level(rng, roi_op, op):
    feats, scales = _pyramid(rng)
    rois = _rois(rng)
    pooled, levels, argmax = multiscale_roi_pool(feats, rois, 7, scales, roi_op=roi_op)
    np.testing.assert_array_equal(levels, map_levels(rois[:, 1:], 2, 5))
    assert len(np.unique(levels)) > 1
    for i, lvl in enumerate(levels):
        if roi_op in ("roipool", "crop_and_resize"):   # no sampling_ratio: crop_and_resize is 7 x 7 samples
            ref = op(feats[lvl], rois[i:i + 1], 7, scales[lvl])
        else:
            ref = op(feats[lvl], rois[i:i + 1], 7, scales[lvl], 2)
        np.testing.assert_array_equal(pooled[i:i + 1], ref)
    assert (argmax is None) == (roi_op in ("roialign", "crop_and_resize"))


def test_single_level_skips_mapping(rng):
    feat = rng.standard_normal((2, 3, 20, 20))
    rois = _rois(rng, 5)
    pooled, levels, _ = multiscale_roi_pool([feat], rois, 4, [1 / 16])
    assert not levels.any()
    np.testing.assert_array_equal(pooled, roi_align(feat, rois, 4, 1 / 16, 2))


def test_backward_is_adjoint(rng):
    feats, scales = _pyramid(rng)
    rois = _rois(rng)
    pooled, levels, _ = multiscale_roi_pool(feats, rois, (7, 5), scales, aligned=True)
    g = rng.standard_normal(pooled.shape)
    grads = pooler_backward(g, rois, levels, [f.shape for f in feats], scales, (7, 5), aligned=True)
    assert [gr.shape for gr in grads] == [f.shape for f in feats]
    lhs = np.vdot(pooled, g)
    rhs = sum(np.vdot(f, gr) for f, gr in zip(feats, grads))
    assert lhs == pytest.approx(rhs, rel=1e-10)


@pytest.mark.parametrize("roi_op", ["roiwarp", "roipool"])
def test_backward_max_routes_through_argmax(rng, roi_op):
    feats, scales = _pyramid(rng)
    rois = _rois(rng, 10)
    pooled, levels, argmax = multiscale_roi_pool(feats, rois, 3, scales, roi_op=roi_op)
    g = rng.standard_normal(pooled.shape)
    grads = pooler_backward(g, rois, levels, [f.shape for f in feats], scales, 3, roi_op=roi_op,
                            argmax=argmax)
    # max pooling is linear in the input while the argmax stays put: the same identity holds
    assert np.vdot(pooled, g) == pytest.approx(sum(np.vdot(f, gr) for f, gr in zip(feats, grads)),
                                               rel=1e-10)


def test_crop_and_resize_backward_goes_to_each_level(rng):
    feats, scales = _pyramid(rng)
    rois = _rois(rng, 20)
    pooled, levels, argmax = multiscale_roi_pool(feats, rois, 7, scales, roi_op="crop_and_resize")
    assert argmax is None and len(np.unique(levels)) > 1
    g = rng.standard_normal(pooled.shape)
    grads = pooler_backward(g, rois, levels, [f.shape for f in feats], scales, 7, roi_op="crop_and_resize")
    for lvl, (f, gr) in enumerate(zip(feats, grads)):
        idx = np.nonzero(levels == lvl)[0]
        np.testing.assert_array_equal(gr, crop_and_resize_backward(g[idx], rois[idx], f.shape, 7, scales[lvl]))
    assert np.vdot(pooled, g) == pytest.approx(sum(np.vdot(f, gr) for f, gr in zip(feats, grads)), rel=1e-10)


def test_bad_arguments():
    feats = [np.zeros((1, 1, 8, 8))]
    with pytest.raises(ValueError, match="roi_op"):
        multiscale_roi_pool(feats, np.zeros((0, 5)), 2, [1.0], roi_op="roimax")
    with pytest.raises(ValueError, match="aggregation"):
        multiscale_roi_pool(feats, np.zeros((0, 5)), 2, [1.0], roi_op="roipool", aggregation="avg")
    with pytest.raises(ValueError, match="aggregation must be None"):
        multiscale_roi_pool(feats, np.zeros((0, 5)), 2, [1.0], roi_op="crop_and_resize", aggregation="avg")
    with pytest.raises(ValueError, match="same non-zero length"):
        multiscale_roi_pool(feats, np.zeros((0, 5)), 2, [1.0, 0.5])


@pytest.mark.reference
def test_live_against_multiscale_roi_align(rng):
    import torch
    from torchvision.ops import MultiScaleRoIAlign
    feats, _ = _pyramid(rng, c=4, dtype=np.float32)
    rois = _rois(rng, 40).astype(np.float32)
    image_shapes = [(256, 320), (240, 300)]
    pooler = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    fd = {str(i): torch.from_numpy(f) for i, f in enumerate(feats)}
    boxes = [torch.from_numpy(rois[rois[:, 0] == b, 1:]) for b in range(2)]
    ref = pooler(fd, boxes, image_shapes).numpy()
    order = np.concatenate([np.nonzero(rois[:, 0] == b)[0] for b in range(2)])
    scales = infer_scales([f.shape for f in feats], image_shapes)
    ours, _, _ = multiscale_roi_pool(feats, rois[order], 7, scales)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("roi_op", ["roialign", "roiwarp", "roipool", "crop_and_resize"])
def test_pool_rois_is_the_one_tape_wrapper(rng, roi_op):
    """pool_rois (the heads import it from here) records multiscale_roi_pool on the tape;
    its backward gives each level exactly pooler_backward's gradient."""
    from mrcnn_np.autodiff.tensor import Tensor
    from mrcnn_np.detection import roi_heads
    from mrcnn_np.detection.pooler import pool_rois
    assert roi_heads.pool_rois is pool_rois
    feats, scales = _pyramid(rng)
    rois = _rois(rng, 12)
    leaves = [Tensor(f, requires_grad=True) for f in feats]
    out = pool_rois(leaves, rois, 3, scales, roi_op=roi_op)
    pooled, levels, argmax = multiscale_roi_pool(feats, rois, 3, scales, roi_op=roi_op)
    np.testing.assert_array_equal(out.data, pooled)
    g = rng.standard_normal(pooled.shape)
    out.backward(g)
    want = pooler_backward(g, rois, levels, [f.shape for f in feats], scales, 3, roi_op=roi_op,
                           argmax=argmax)
    for leaf, w in zip(leaves, want):
        np.testing.assert_array_equal(leaf.grad, w)
