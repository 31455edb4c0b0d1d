"""AnchorGenerator (torchvision-compatible), offset option, original Faster R-CNN anchors."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrcnn_np.detection.anchors import (AnchorGenerator, cell_anchors, faster_rcnn_anchors,
                                        faster_rcnn_cell_anchors)

FIX = np.load(Path(__file__).parents[1] / "fixtures" / "geometry.npz", allow_pickle=False)

# docs/REFERENCE.md section 3.1: verified base anchors, ratios (0.5, 1, 2) per size
TABLE = {
    32: [[-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]],
    64: [[-45, -23, 45, 23], [-32, -32, 32, 32], [-23, -45, 23, 45]],
    128: [[-91, -45, 91, 45], [-64, -64, 64, 64], [-45, -91, 45, 91]],
    256: [[-181, -91, 181, 91], [-128, -128, 128, 128], [-91, -181, 91, 181]],
    512: [[-362, -181, 362, 181], [-256, -256, 256, 256], [-181, -362, 181, 362]],
}


def test_cell_anchor_table():
    gen = AnchorGenerator()
    for base, size in zip(gen.cell_anchors, (32, 64, 128, 256, 512)):
        assert base.dtype == np.float32
        np.testing.assert_array_equal(base, TABLE[size])


def test_cell_anchors_ratio_major_with_two_sizes():
    got = cell_anchors((32, 64), (0.5, 1.0))
    np.testing.assert_array_equal(got, [[-23, -11, 23, 11], [-45, -23, 45, 23],
                                        [-16, -16, 16, 16], [-32, -32, 32, 32]])


@pytest.mark.parametrize("impl", ["reference", "numpy"])
def test_anchors_of_a_1x2_map(impl):
    # one level, size 32, ratio 1, feature map 1 x 2 on a 16 x 32 image: stride (16, 16)
    gen = AnchorGenerator(sizes=((32,),), aspect_ratios=((1.0,),), impl=impl)
    np.testing.assert_array_equal(gen((16, 32), [(1, 2)]), [[-16, -16, 16, 16], [0, -16, 32, 16]])
    # with detectron2's half-stride offset the centres move to (8, 8) and (24, 8)
    gen = AnchorGenerator(sizes=((32,),), aspect_ratios=((1.0,),), offset=0.5, impl=impl)
    np.testing.assert_array_equal(gen((16, 32), [(1, 2)]), [[-8, -8, 24, 24], [8, -8, 40, 24]])


def test_p6_stride_quirk_and_count():
    gen = AnchorGenerator()
    feats = [(200, 272), (100, 136), (50, 68), (25, 34), (13, 17)]
    assert gen.strides((800, 1088), feats)[-1] == (61, 64)
    assert gen.num_anchors_per_location() == [3] * 5
    anchors = gen((800, 1088), feats)
    assert anchors.shape == (217413, 4) and anchors.dtype == np.float32
    p6 = gen.per_level((800, 1088), feats)[-1]
    # last P6 location (y=12, x=16): centre (16 * 64, 12 * 61)
    np.testing.assert_array_equal(p6[-2], [1024 - 256, 732 - 256, 1024 + 256, 732 + 256])


@pytest.mark.parametrize("case", [0, 1, 2])
def test_anchors_golden(case):
    image_size = tuple(FIX[f"anchors{case}_image_size"])
    feats = [tuple(f) for f in FIX[f"anchors{case}_feature_sizes"]]
    levels = AnchorGenerator().per_level(image_size, feats)
    np.testing.assert_array_equal([len(a) for a in levels], FIX[f"anchors{case}_counts"])
    np.testing.assert_array_equal([a.astype(np.float64).sum(0) for a in levels], FIX[f"anchors{case}_sums"])
    anchors = np.concatenate(levels)
    np.testing.assert_array_equal(anchors[FIX[f"anchors{case}_rows"]], FIX[f"anchors{case}_subsample"])
    if f"anchors{case}_all" in FIX:
        np.testing.assert_array_equal(anchors, FIX[f"anchors{case}_all"])
        ref = AnchorGenerator(impl="reference")(image_size, feats)
        np.testing.assert_array_equal(ref, anchors)


@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from([4, 8, 16]), st.sampled_from([0.0, 0.5]))
def test_anchor_counts_and_centres(h, w, stride, offset):
    gen = AnchorGenerator(sizes=((16, 32),), aspect_ratios=((0.5, 1.0, 2.0),), offset=offset)
    anchors = gen((h * stride, w * stride), [(h, w)])
    assert anchors.shape == (h * w * 6, 4)
    centres = ((anchors[:, :2] + anchors[:, 2:]) / 2).reshape(h, w, 6, 2)
    ys, xs = np.mgrid[0:h, 0:w]
    np.testing.assert_array_equal(centres[..., 0], ((xs + offset) * stride)[..., None].repeat(6, -1))
    np.testing.assert_array_equal(centres[..., 1], ((ys + offset) * stride)[..., None].repeat(6, -1))
    sides = anchors[:, 2:] - anchors[:, :2]
    # ratio = height / width: < 1 for the first two anchors (ratio 0.5), > 1 for the last two
    assert (sides[0::6, 1] < sides[0::6, 0]).all() and (sides[5::6, 1] > sides[5::6, 0]).all()


def test_faster_rcnn_nine_anchors():
    expected = [[-84, -40, 99, 55], [-176, -88, 191, 103], [-360, -184, 375, 199],
                [-56, -56, 71, 71], [-120, -120, 135, 135], [-248, -248, 263, 263],
                [-36, -80, 51, 95], [-80, -168, 95, 183], [-168, -344, 183, 359]]
    np.testing.assert_array_equal(faster_rcnn_cell_anchors(), expected)
    grid = faster_rcnn_anchors((2, 3))
    assert grid.shape == (2 * 3 * 9, 4)
    np.testing.assert_array_equal(grid[9 * 4:9 * 5], np.array(expected) + [16, 16, 16, 16])  # (y=1, x=1)


def test_anchor_bad_input():
    with pytest.raises(ValueError, match="one entry per feature level"):
        AnchorGenerator(sizes=((32,),), aspect_ratios=((1.0,),) * 2)
    gen = AnchorGenerator()
    with pytest.raises(ValueError, match="feature sizes"):
        gen((64, 64), [(16, 16)])
    with pytest.raises(ValueError, match="feature size"):
        gen((64, 64), [(16, 16), (8, 8), (4, 4), (2, 2), (0, 1)])
    with pytest.raises(ValueError, match="positive"):
        cell_anchors((32,), (-1.0,))
    with pytest.raises(ValueError, match="impl"):
        AnchorGenerator(impl="numba")


@pytest.mark.reference
def test_anchors_live_torchvision():
    import torch
    from torchvision.models.detection.anchor_utils import AnchorGenerator as TvGen
    from torchvision.models.detection.image_list import ImageList
    sizes, ratios = ((16, 40), (100,)), ((0.25, 1.0, 3.0), (0.7, 1.3))
    feats = [(9, 13), (3, 5)]
    tv = TvGen(sizes, ratios)(ImageList(torch.zeros(1, 3, 70, 100), [(70, 100)]),
                              [torch.zeros(1, 1, *f) for f in feats])[0].numpy()
    np.testing.assert_array_equal(AnchorGenerator(sizes, ratios)((70, 100), feats), tv)
