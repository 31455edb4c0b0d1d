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


# ------------------------------------------------ torchvision's argument forms (cases of its anchor tests)
def test_flat_aspect_ratios_apply_to_every_level():
    sizes = ((32,), (64,), (128,), (256,), (512,))
    flat = AnchorGenerator(sizes, (0.5, 1.0, 2.0))
    per_level = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * 5)
    assert flat.aspect_ratios == per_level.aspect_ratios == ((0.5, 1.0, 2.0),) * 5
    assert flat.num_anchors_per_location() == [3] * 5
    feats = [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    np.testing.assert_array_equal(flat((64, 64), feats), per_level((64, 64), feats))


def test_flat_sizes_are_one_size_per_level():
    gen = AnchorGenerator((16, 32), (1.0,))
    assert gen.sizes == ((16,), (32,)) and gen.aspect_ratios == ((1.0,), (1.0,))
    np.testing.assert_array_equal(gen.cell_anchors[1], [[-16, -16, 16, 16]])


@pytest.mark.parametrize("sizes, ratios", [(((10,),), ((1.0,),)), ((10,), (1,))])
def test_stride_one_grid_of_one_anchor(sizes, ratios):
    # a 15 x 15 map on a 15 x 15 image: stride 1, one 10 x 10 anchor per pixel, row by row
    gen = AnchorGenerator(sizes, ratios)
    anchors = gen((15, 15), [(15, 15)])
    assert gen.num_anchors_per_location() == [1] and anchors.shape == (225, 4)
    y, x = np.divmod(np.arange(225), 15)
    np.testing.assert_array_equal(anchors, np.stack([x - 5, y - 5, x + 5, y + 5], axis=1).astype(np.float32))


def test_levels_that_disagree_with_the_feature_maps():
    gen = AnchorGenerator(((2, 4, 8), (32, 8)), (0.5, 1.0))      # two levels: 6 and 4 anchors per location
    assert gen.num_anchors_per_location() == [6, 4]
    with pytest.raises(ValueError, match="1 feature sizes for 2 anchor levels"):
        gen((16, 16), [(8, 8)])


@pytest.mark.parametrize("sizes, ratios, message", [
    ((), (1.0,), r"^sizes must be a non-empty"),
    (None, (1.0,), r"^sizes must be a non-empty"),
    (((32,), ()), (1.0,), r"^sizes\[1\] must be a non-empty"),
    (((0,),), (1.0,), r"^sizes\[0\] must hold finite positive"),
    (((32, -8),), (1.0,), r"^sizes\[0\] must hold finite positive"),
    (((True,),), (1.0,), r"^sizes\[0\] must hold positive numbers"),
    (((32,),), [], r"^aspect_ratios must be a non-empty"),
    (((32,),), 1.0, r"^aspect_ratios must be a non-empty"),
    (((32,), (64,)), ((1.0,), (float("nan"),)), r"^aspect_ratios\[1\] must hold finite positive"),
    (((32,),), ("wide",), r"^aspect_ratios\[0\] must hold positive numbers"),
    (((32,),), ((0.5,), (1.0,)), "one entry per feature level"),
])
def test_bad_anchor_arguments_are_named(sizes, ratios, message):
    with pytest.raises(ValueError, match=message):
        AnchorGenerator(sizes, ratios)


def test_bad_offset_is_named():
    for bad in (float("nan"), "centre", None):
        with pytest.raises(ValueError, match="offset"):
            AnchorGenerator(offset=bad)
