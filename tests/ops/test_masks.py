"""Mask targets (RoIAlign of the GT mask onto the proposal) and pasting masks into the image."""

from pathlib import Path

import numpy as np
import pytest

from mrcnn_np.ops import paste_masks_in_image, project_masks_on_boxes
from mrcnn_np.ops.masks import resize_bilinear

from ._roi_cases import ALL

FIXTURE = Path(__file__).parents[1] / "fixtures" / "roi.npz"


@pytest.mark.parametrize("impl", ALL)
def test_project_reference_example(impl):
    """docs/REFERENCE.md section 11: the legacy half-pixel shift shows at the last row/column."""
    gt = np.zeros((1, 10, 10), np.uint8)
    gt[0, 2:8, 2:8] = 1
    t = project_masks_on_boxes(gt, np.array([[2, 2, 8, 8]], np.float32), np.array([0]), 4, impl=impl)
    assert t.shape == (1, 4, 4) and t.dtype == np.float32
    np.testing.assert_allclose(t[0, :3, :3], 1.0)
    np.testing.assert_allclose(t[0, 3, :3], 0.6875)
    np.testing.assert_allclose(t[0, 3, 3], 0.47265625)


def test_project_half_pixel_box_is_identity(rng):
    """With aligned=False a pixel's value sits at its integer corner, so the box
    [-0.5, -0.5, W-0.5, H-0.5] at M = H = W reproduces the mask; [0, 0, W, H] does not."""
    gt = (rng.random((2, 8, 8)) > 0.5).astype(np.uint8)
    shifted = np.array([[-0.5, -0.5, 7.5, 7.5]] * 2, np.float32)
    np.testing.assert_allclose(project_masks_on_boxes(gt, shifted, np.array([0, 1]), 8), gt)
    plain = project_masks_on_boxes(gt, np.array([[0, 0, 8, 8]], np.float32), np.array([1]), 8)
    assert not np.allclose(plain[0], gt[1])


def test_project_fixture():
    d = np.load(FIXTURE)
    t = project_masks_on_boxes(d["proj_gt"], d["proj_boxes"], d["proj_matched"], 7)
    np.testing.assert_allclose(t, d["proj_out"], rtol=0, atol=1e-6)


def test_paste_reference_example():
    m = np.zeros((1, 1, 4, 4), np.float32)
    m[0, 0, 1:3, 1:3] = 1
    out = paste_masks_in_image(m, np.array([[2, 2, 10, 10]], np.float32), (12, 12))
    assert out.shape == (1, 1, 12, 12) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0, 5:8, 5:8], 1.0)
    np.testing.assert_allclose(out[0, 0, 4, 5:8], 0.5769, atol=1e-4)
    np.testing.assert_allclose(out[0, 0, 3, 5:8], 0.1154, atol=1e-4)
    np.testing.assert_allclose(out[0, 0, 3, 3], 0.0133, atol=1e-4)
    assert not out[0, 0, :3].any() and not out[0, 0, :, 10:].any()


def test_paste_fixture_and_layouts():
    d = np.load(FIXTURE)
    out = paste_masks_in_image(d["paste_masks"], d["paste_boxes"], (30, 40))
    np.testing.assert_allclose(out, d["paste_out"], rtol=0, atol=1e-6)
    flat = paste_masks_in_image(d["paste_masks"][:, 0], d["paste_boxes"], (30, 40))
    np.testing.assert_array_equal(flat, out[:, 0])


def test_paste_edge_cases():
    assert paste_masks_in_image(np.zeros((0, 1, 28, 28)), np.zeros((0, 4), np.float32),
                                (5, 6)).shape == (0, 1, 5, 6)
    out = paste_masks_in_image(np.ones((1, 1, 4, 4)), np.array([[50, 50, 60, 60]], np.float32), (10, 10))
    assert not out.any()  # a box outside the image pastes nothing
    with pytest.raises(ValueError, match="masks"):
        paste_masks_in_image(np.ones((1, 2, 4, 4)), np.zeros((1, 4), np.float32), (10, 10))
    with pytest.raises(ValueError, match="same length"):
        paste_masks_in_image(np.ones((2, 4, 4)), np.zeros((1, 4), np.float32), (10, 10))


def test_resize_bilinear_constant_and_identity(rng):
    img = rng.random((5, 7)).astype(np.float32)
    np.testing.assert_allclose(resize_bilinear(img, 5, 7), img, atol=1e-6)
    np.testing.assert_allclose(resize_bilinear(np.full((3, 3), 2.5, np.float32), 8, 5), 2.5)


def test_project_bad_inputs():
    gt = np.zeros((2, 5, 5), np.uint8)
    with pytest.raises(ValueError, match="matched_idxs"):
        project_masks_on_boxes(gt, np.zeros((1, 4), np.float32), np.array([2]), 4)
    with pytest.raises(ValueError, match="same length"):
        project_masks_on_boxes(gt, np.zeros((2, 4), np.float32), np.array([0]), 4)


@pytest.mark.reference
def test_live_against_torchvision(rng):
    import torch
    from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste
    from torchvision.models.detection.roi_heads import project_masks_on_boxes as tv_project
    gt = (rng.random((4, 37, 45)) > 0.6).astype(np.uint8)
    xy = rng.uniform(-5, 40, (12, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (12, 2))], 1).astype(np.float32)
    matched = rng.integers(0, 4, 12)
    ref = tv_project(torch.from_numpy(gt), torch.from_numpy(boxes), torch.from_numpy(matched), 28)
    np.testing.assert_allclose(project_masks_on_boxes(gt, boxes, matched, 28), ref.numpy(),
                               rtol=0, atol=1e-6)
    masks = rng.random((12, 1, 28, 28)).astype(np.float32)
    boxes = np.clip(boxes, 0, [45, 37, 45, 37]).astype(np.float32)
    ref = tv_paste(torch.from_numpy(masks), torch.from_numpy(boxes), (37, 45), padding=1)
    np.testing.assert_allclose(paste_masks_in_image(masks, boxes, (37, 45)), ref.numpy(),
                               rtol=0, atol=1e-5)
