"""Normalise / resize / pad / rescale: hand cases and torchvision's GeneralizedRCNNTransform."""

import numpy as np
import pytest

from mrcnn_np.detection.transform import (batch_images, normalize, postprocess, prepare_batch,
                                          resize_masks, resized_size)


@pytest.mark.parametrize("hw,want", [((480, 640), (800, 1066)), ((427, 640), (800, 1199)),
                                     ((640, 480), (1066, 800)), ((100, 1000), (133, 1333)),
                                     ((333, 500), (800, 1201)), ((1, 1), (800, 800))])
def test_resized_sizes_of_the_reference(hw, want):
    assert resized_size(*hw, 800, 1333) == want     # docs/REFERENCE.md §13, verified values


def test_box_scaling_reference_example():
    img = np.zeros((3, 480, 640), np.float32)
    _, sizes, t = prepare_batch([img], [{"boxes": np.array([[10, 20, 30, 40]], np.float32),
                                         "labels": np.array([1])}])
    assert sizes == [(800, 1066)]
    np.testing.assert_allclose(t[0]["boxes"], [[16.65625, 33.3333, 49.96875, 66.6667]], rtol=1e-5)


def test_padding_and_identity_resize():
    a = np.random.default_rng(0).uniform(size=(3, 100, 70)).astype(np.float32)
    b = np.random.default_rng(1).uniform(size=(3, 90, 100)).astype(np.float32)
    batch, sizes, _ = prepare_batch([a, b], min_size=100, max_size=1000)
    assert sizes == [(142, 100), (100, 111)]
    assert batch.shape == (2, 3, 160, 128)
    assert (batch[0, :, 142:] == 0).all() and (batch[1, :, :, 111:] == 0).all()
    same, sizes, _ = prepare_batch([a], min_size=70, max_size=1000)   # scale exactly 1
    np.testing.assert_array_equal(same[0, :, :100, :70], normalize(a))


def test_nearest_mask_resize_rule():
    m = (np.random.default_rng(2).uniform(size=(2, 9, 7)) > 0.5).astype(np.uint8)
    r = resize_masks(m, (20, 15))
    assert r.shape == (2, 20, 15) and set(np.unique(r)) <= {0, 1}
    iy = np.floor(np.arange(20) * 9 / 20).astype(int)     # src = floor(dst * in / out)
    ix = np.floor(np.arange(15) * 7 / 15).astype(int)
    np.testing.assert_array_equal(r, m[:, iy][:, :, ix])


def test_bad_images_are_named():
    with pytest.raises(ValueError, match="float"):
        normalize(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        normalize(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="targets"):
        prepare_batch([np.zeros((3, 4, 4), np.float32)], [])


def test_postprocess_rescales_boxes_and_pastes_masks():
    det = [{"boxes": np.array([[10, 10, 50, 30]], np.float32), "scores": np.array([0.9], np.float32),
            "labels": np.array([1]), "mask_probs": np.ones((1, 28, 28), np.float32)}]
    out = postprocess(det, [(100, 200)], [(50, 100)])
    np.testing.assert_allclose(out[0]["boxes"], [[5, 5, 25, 15]])
    assert out[0]["masks"].shape == (1, 50, 100)
    assert out[0]["masks"][0, 10, 15] == pytest.approx(1.0) and out[0]["masks"][0, 40, 80] == 0


@pytest.mark.reference
def test_equals_torchvision_transform():
    import torch
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    rng = np.random.default_rng(3)
    images = [rng.uniform(size=(3, 61, 83)).astype(np.float32), rng.uniform(size=(3, 90, 47)).astype(np.float32)]
    targets = []
    for im in images:
        h, w = im.shape[1:]
        targets.append({"boxes": np.array([[3, 4, w - 5, h - 2], [10, 11, 20, 30]], np.float32),
                        "labels": np.array([1, 2]),
                        "masks": (rng.uniform(size=(2, h, w)) > 0.5).astype(np.uint8)})
    tv = GeneralizedRCNNTransform(128, 200, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    tv.eval()
    il, tt = tv([torch.from_numpy(i) for i in images],
                [{k: torch.from_numpy(v) for k, v in t.items()} for t in targets])
    batch, sizes, ours = prepare_batch(images, targets, min_size=128, max_size=200)
    assert sizes == [tuple(s) for s in il.image_sizes]
    np.testing.assert_allclose(batch, il.tensors.numpy(), atol=2e-5)
    for a, b in zip(ours, tt):
        np.testing.assert_allclose(a["boxes"], b["boxes"].numpy(), rtol=1e-6)
        np.testing.assert_array_equal(a["masks"], b["masks"].numpy())
    # postprocess: boxes back to the original size, masks pasted
    dets = [{"boxes": t["boxes"].numpy(), "mask_probs": rng.uniform(size=(2, 28, 28)).astype(np.float32)}
            for t in tt]
    want = tv.postprocess([{"boxes": torch.from_numpy(d["boxes"]), "masks": torch.from_numpy(d["mask_probs"][:, None])}
                           for d in dets], il.image_sizes, [im.shape[1:] for im in images])
    got = postprocess(dets, sizes, [im.shape[1:] for im in images])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a["boxes"], b["boxes"].numpy(), rtol=1e-5)
        np.testing.assert_allclose(a["masks"], b["masks"].numpy()[:, 0], atol=1e-5)
