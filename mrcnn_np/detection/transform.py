"""Getting images into the model and detections back out: normalise, resize, pad, rescale.

Mask R-CNN §3.1 ("Implementation Details"): images are resized so that their shorter side
is 800 pixels (longer side at most 1333) and batched. torchvision's
``GeneralizedRCNNTransform`` does, per image (docs/REFERENCE.md §13):

1. normalise with the ImageNet mean/std (before resizing);
2. resize by ``scale = min(min_size / min(h, w), max_size / max(h, w))`` to
   ``(floor(h * scale), floor(w * scale))`` with bilinear interpolation
   (align_corners=False); boxes scale by the float32 ratios of the integer sizes, masks
   are resized with the legacy nearest rule;
3. pad every image bottom/right with zeros to a common size divisible by 32.

``postprocess`` undoes the resize for the detections: boxes go back to the original
image, and the M x M mask probabilities are pasted into it.

Shapes::

    image: (3, H, W) float32 in [0, 1] (RGB); boxes (G, 4); masks (G, H, W) uint8
    batch: (N, 3, H_pad, W_pad) float32; image_sizes: N pairs (h, w) after resizing
"""

from __future__ import annotations

import math

import numpy as np

from ..ops.masks import paste_masks_in_image, resize_bilinear

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resized_size(h: int, w: int, min_size: float, max_size: float) -> tuple[int, int]:
    """Size after resizing the shorter side to ``min_size`` (the longer capped at ``max_size``)."""
    scale = min(float(min_size) / min(h, w), float(max_size) / max(h, w))
    return int(math.floor(h * scale)), int(math.floor(w * scale))


def normalize(image, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """(3, H, W) float image -> (image - mean) / std per channel, float32."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {image.shape}")
    if image.dtype.kind != "f":
        raise ValueError(f"image must be float in [0, 1] (got dtype {image.dtype}); divide uint8 by 255")
    mean = np.asarray(mean, np.float32)[:, None, None]
    std = np.asarray(std, np.float32)[:, None, None]
    return (image.astype(np.float32, copy=False) - mean) / std


def resize_image(image, size):
    """(C, H, W) -> (C, h, w), bilinear with half-pixel centres; a no-op for the same size."""
    if tuple(image.shape[1:]) == tuple(size):
        return image
    return np.stack([resize_bilinear(c, *size) for c in image]).astype(image.dtype, copy=False)


def resize_masks(masks, size):
    """(G, H, W) uint8 -> (G, h, w) with torch's legacy nearest rule src = floor(dst * in / out)."""
    g, h, w = masks.shape
    if (h, w) == tuple(size):
        return masks
    iy = np.minimum(np.floor(np.arange(size[0], dtype=np.float32) * np.float32(h / size[0])), h - 1).astype(np.int64)
    ix = np.minimum(np.floor(np.arange(size[1], dtype=np.float32) * np.float32(w / size[1])), w - 1).astype(np.int64)
    return masks[:, iy][:, :, ix]


def resize_boxes(boxes, original_size, new_size):
    """Scale (G, 4) boxes by the float32 ratios new / original of each axis."""
    rh = np.float32(new_size[0]) / np.float32(original_size[0])
    rw = np.float32(new_size[1]) / np.float32(original_size[1])
    return (np.asarray(boxes, np.float32) * np.array([rw, rh, rw, rh], np.float32)).astype(np.float32)


def batch_images(images, size_divisible=32):
    """Zero-pad (3, h_i, w_i) images bottom/right into one (N, 3, H_pad, W_pad) array."""
    hs = max(im.shape[1] for im in images)
    ws = max(im.shape[2] for im in images)
    hp = int(math.ceil(hs / size_divisible) * size_divisible)
    wp = int(math.ceil(ws / size_divisible) * size_divisible)
    batch = np.zeros((len(images), 3, hp, wp), np.float32)
    for i, im in enumerate(images):
        batch[i, :, :im.shape[1], :im.shape[2]] = im
    return batch


def prepare_batch(images, targets=None, *, min_size=800, max_size=1333, mean=IMAGENET_MEAN,
                  std=IMAGENET_STD, size_divisible=32):
    """Normalise, resize and pad a list of images (and scale their targets alike).

    images: list of (3, H, W) float in [0, 1]; targets: None or a list of dicts with
    ``boxes`` (G, 4), ``labels`` (G,) and optionally ``masks`` (G, H, W).
    min_size: the shorter side after resizing (training may pick one at random and pass it).
    Returns ``(batch (N, 3, H_pad, W_pad), image_sizes [(h, w)], targets or None)``.
    """
    if len(images) == 0:
        raise ValueError("images is empty")
    if targets is not None and len(targets) != len(images):
        raise ValueError(f"got {len(targets)} targets for {len(images)} images")
    out_images, sizes, out_targets = [], [], []
    for i, image in enumerate(images):
        image = normalize(image, mean, std)
        h, w = image.shape[1:]
        size = resized_size(h, w, min_size, max_size)
        out_images.append(resize_image(image, size))
        sizes.append(size)
        if targets is not None:
            t = dict(targets[i])
            t["boxes"] = resize_boxes(t["boxes"], (h, w), size)
            if "masks" in t:
                t["masks"] = resize_masks(np.asarray(t["masks"]), size)
            out_targets.append(t)
    return batch_images(out_images, size_divisible), sizes, (out_targets if targets is not None else None)


def postprocess(detections, image_sizes, original_sizes):
    """Map detections from resized-image pixels back to the original images.

    detections: list of dicts with ``boxes`` (D, 4) and optionally ``mask_probs`` (D, M, M);
    returns new dicts where boxes are rescaled and ``masks`` (D, H, W) float32 holds the
    pasted probabilities (threshold at 0.5 for binary masks).
    """
    results = []
    for det, size, orig in zip(detections, image_sizes, original_sizes):
        det = dict(det)
        det["boxes"] = resize_boxes(det["boxes"], size, orig)
        if "mask_probs" in det:
            probs = det.pop("mask_probs")
            det["masks"] = paste_masks_in_image(probs, det["boxes"], tuple(orig))
        results.append(det)
    return results
