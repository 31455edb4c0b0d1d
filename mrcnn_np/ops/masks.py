"""Masks between image space and RoI space: training targets and pasting predictions back.

Mask R-CNN section 3 ("Mask Representation"; "Training"; "Inference"): the mask branch
predicts an M x M mask *in the RoI's frame*. Two conversions connect it with the image:

* ``project_masks_on_boxes``: the training target of a positive RoI is its matched
  ground-truth mask cropped to the RoI and resampled to M x M ("the intersection between an
  RoI and its associated ground-truth mask"). As torchvision does it: RoIAlign of the
  full-image GT mask over the proposal box, spatial_scale 1, adaptive sampling, aligned=False;
  the result is a *soft* target in [0, 1] (no thresholding).
* ``paste_masks_in_image``: at inference the M x M probabilities are resized to the box and
  written into an image-sized canvas (the paper then binarises at 0.5; torchvision -- and
  this function -- return the probabilities). torchvision's recipe (docs/REFERENCE.md section 11):
  pad the mask by ``padding`` zeros on each side, enlarge the box about its centre by
  (M + 2 padding) / M, truncate the box to integers (toward zero), resize the padded mask
  bilinearly (half-pixel centres, ``align_corners=False``) to (y2 - y1 + 1) x (x2 - x1 + 1)
  and paste the part inside the image. The zero padding lets the mask fade out at the box
  border instead of ending with a hard edge.

Shapes::

    G ground-truth instances, H x W image, P positive RoIs, D detections, M mask side
    gt_masks (G, H, W) 0/1      boxes (P, 4) [x1, y1, x2, y2] px      matched_idxs (P,) int
    targets  (P, M, M) float32 in [0, 1]
    masks    (D, 1, M, M) or (D, M, M) probabilities  ->  (D, 1, H, W) or (D, H, W) float
    masks_to_boxes: masks (N, H, W) -> boxes (N, 4) float32, the tight box of each mask
"""

from __future__ import annotations

import numpy as np

from .._checks import check_array, check_boxes, check_same_length
from .roi_align import roi_align


def project_masks_on_boxes(gt_masks, boxes, matched_idxs, M, *, impl=None):
    """Mask targets (P, M, M) float32: gt_masks[matched_idxs[i]] seen through boxes[i].

    gt_masks: (G, H, W) binary (any numeric dtype). boxes: (P, 4) proposals in image pixels.
    matched_idxs: (P,) index of each proposal's GT instance. M: output side (28 in the paper).
    """
    gt_masks = check_array(gt_masks, "gt_masks", ndim=3, kinds="fiub")
    boxes = check_boxes(boxes)
    matched_idxs = check_array(matched_idxs, "matched_idxs", ndim=1, kinds="iu")
    check_same_length(boxes, matched_idxs, "boxes", "matched_idxs")
    if int(M) != M or M < 1:
        raise ValueError(f"M must be a positive int, got {M!r}")
    if len(boxes) and (matched_idxs.min() < 0 or matched_idxs.max() >= len(gt_masks)):
        raise ValueError(f"matched_idxs must lie in [0, {len(gt_masks)}) (G = number of gt_masks)")
    masks = gt_masks.astype(np.float32)[:, None]                        # (G, 1, H, W)
    if masks.shape[2] == 0 or masks.shape[3] == 0 or len(masks) == 0:
        return np.zeros((len(boxes), int(M), int(M)), np.float32)
    rois = np.concatenate([matched_idxs.astype(np.float32)[:, None],
                           boxes.astype(np.float32)], axis=1)
    return roi_align(masks, rois, (int(M), int(M)), 1.0, -1, False, impl=impl)[:, 0]


def expand_boxes(boxes, scale):
    """Boxes (D, 4) enlarged about their centres by ``scale`` (float32 arithmetic)."""
    boxes = boxes.astype(np.float32)
    t = np.float32
    w_half = (boxes[:, 2] - boxes[:, 0]) * t(0.5) * t(scale)
    h_half = (boxes[:, 3] - boxes[:, 1]) * t(0.5) * t(scale)
    x_c = (boxes[:, 2] + boxes[:, 0]) * t(0.5)
    y_c = (boxes[:, 3] + boxes[:, 1]) * t(0.5)
    return np.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=1)


def resize_bilinear(image, out_h, out_w):
    """(h, w) float32 image resized to (out_h, out_w) with half-pixel centres.

    Output pixel i reads the source at ``max((i + 0.5) * h / out_h - 0.5, 0)`` (torch's
    ``interpolate(..., mode="bilinear", align_corners=False)``); neighbours are clamped to
    the last row/column.
    """
    def axis(n_in, n_out):
        t = np.float32
        src = np.maximum(t(n_in) / t(n_out) * (np.arange(n_out, dtype=t) + t(0.5)) - t(0.5), t(0))
        lo = src.astype(np.int64)
        hi = lo + (lo < n_in - 1)
        frac = src - lo.astype(t)
        return lo, hi, t(1) - frac, frac

    y0, y1, hy, ly = axis(image.shape[0], out_h)
    x0, x1, hx, lx = axis(image.shape[1], out_w)
    top = image[y0][:, x0] * hx + image[y0][:, x1] * lx
    bottom = image[y1][:, x0] * hx + image[y1][:, x1] * lx
    return top * hy[:, None] + bottom * ly[:, None]


def paste_masks_in_image(masks, boxes, img_shape, padding=1):
    """Paste per-box mask probabilities into image-sized canvases (torchvision's semantics).

    masks: (D, 1, M, M) or (D, M, M) float in [0, 1]. boxes: (D, 4) [x1, y1, x2, y2] in the
    image's pixels. img_shape: (H, W). Returns float32 (D, 1, H, W) -- or (D, H, W) for 3-D
    masks -- zero outside each pasted box. Not thresholded (the paper binarises at 0.5).
    A box entirely outside the image pastes nothing (torchvision raises there).
    """
    masks = check_array(masks, "masks", kinds="fiub")
    if masks.ndim not in (3, 4) or (masks.ndim == 4 and masks.shape[1] != 1):
        raise ValueError(f"masks must have shape (D, 1, M, M) or (D, M, M), got {masks.shape}")
    boxes = check_boxes(boxes)
    check_same_length(masks, boxes, "masks", "boxes")
    im_h, im_w = (int(v) for v in img_shape)
    if im_h < 0 or im_w < 0:
        raise ValueError(f"img_shape must be (H, W) >= 0, got {img_shape!r}")
    squeeze = masks.ndim == 3
    m = masks.reshape(len(masks), masks.shape[-2], masks.shape[-1]).astype(np.float32)
    out = np.zeros((len(m), im_h, im_w), np.float32)
    if len(m) == 0:
        return out if squeeze else out[:, None]
    side = m.shape[-1]
    padded = np.pad(m, ((0, 0), (padding, padding), (padding, padding)))
    scale = float(side + 2 * padding) / side
    ib = np.trunc(expand_boxes(boxes, scale)).astype(np.int64)  # .to(int64): toward zero
    for i, (x1, y1, x2, y2) in enumerate(ib):
        w, h = max(int(x2 - x1 + 1), 1), max(int(y2 - y1 + 1), 1)  # inclusive pixel corners
        x_0, x_1 = max(x1, 0), min(x2 + 1, im_w)
        y_0, y_1 = max(y1, 0), min(y2 + 1, im_h)
        if x_1 <= x_0 or y_1 <= y_0:
            continue
        resized = resize_bilinear(padded[i], h, w)
        out[i, y_0:y_1, x_0:x_1] = resized[y_0 - y1:y_1 - y1, x_0 - x1:x_1 - x1]
    return out if squeeze else out[:, None]


def masks_to_boxes(masks):
    """The tight box (N, 4) float32 [x1, y1, x2, y2] around the nonzero pixels of each mask.

    masks: (N, H, W), any numeric or bool dtype; a pixel is "in" when nonzero. As
    torchvision's ``masks_to_boxes``: the corners are pixel *indices*, x2 the last column
    holding a nonzero pixel (no +1), so a one-pixel mask gives x1 == x2; N == 0 gives (0, 4).
    Documented difference: an all-zero mask gives the box [0, 0, 0, 0] (torchvision
    raises on the empty minimum there).
    """
    masks = check_array(masks, "masks", ndim=3, kinds="fiub")
    n = len(masks)
    boxes = np.zeros((n, 4), np.float32)
    if n == 0 or masks.shape[1] == 0 or masks.shape[2] == 0:
        return boxes
    on = masks != 0
    cols, rows = on.any(axis=1), on.any(axis=2)         # (N, W), (N, H)
    filled = rows.any(axis=1)
    first = lambda a: a.argmax(axis=1)                             # noqa: E731
    last = lambda a: a.shape[1] - 1 - a[:, ::-1].argmax(axis=1)    # noqa: E731
    boxes[:] = np.stack([first(cols), first(rows), last(cols), last(rows)], axis=1)
    boxes[~filled] = 0
    return boxes
