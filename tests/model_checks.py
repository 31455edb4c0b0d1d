"""Checks shared by the model tests: a training forward pass gives a finite loss whose gradient
reaches (almost) every parameter."""

import numpy as np

from mrcnn_np.detection.mask_rcnn import total_loss


def assert_loss_trains_every_parameter(model, out, share: float = 0.9):
    """out: the model's training output (dict of losses). Backpropagates the total loss and asserts
    that every parameter gets a finite gradient and more than ``share`` of them a non-zero one."""
    loss = total_loss(out)
    assert np.isfinite(loss.data)
    loss.backward()
    grads = [p.grad for _, p in model.named_parameters()]
    assert all(g is not None and np.isfinite(g).all() for g in grads)
    assert sum(float(np.abs(g).sum()) > 0 for g in grads) > share * len(grads)


def scene_batch(seeds, size=64):
    """Images (3, size, size) float32 and their targets (boxes, labels, masks) from
    ``random_scene`` of each seed: a small training batch for model tests."""
    from mrcnn_np.datasets.shapes import random_scene
    from mrcnn_np.engine.data import to_model_image

    imgs, tgts = [], []
    for s in seeds:
        sc = random_scene(s, size)
        imgs.append(to_model_image(sc["image"]))
        tgts.append({"boxes": sc["boxes"], "labels": sc["labels"], "masks": sc["masks"]})
    return imgs, tgts
