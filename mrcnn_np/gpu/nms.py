"""Greedy NMS with the pairwise IoU tests on the GPU: kernels/nms.cu + a host sweep.

Same result as :func:`mrcnn_np.ops.nms` (torchvision semantics: visit by decreasing score,
ties by ascending index, suppress when IoU > iou_threshold strictly, return int64 indices
in visiting order). The kernel fills a bit mask ``mask[i, jb]`` (bit t set: box i
suppresses box 64*jb + t, among the boxes sorted by score); the sweep that turns the mask
into the kept list is sequential and runs on the host, like torchvision's CUDA NMS.

Shapes: boxes (N, 4) [x1, y1, x2, y2]; scores (N,); returns keep (M,) int64.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_array, check_boxes, check_same_length
from .launch import array_module, launch


def _to_host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def nms(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes kept by greedy NMS, by decreasing score."""
    boxes = check_boxes(boxes)
    scores = check_array(scores, "scores", ndim=1, kinds="fiu")
    check_same_length(boxes, scores, "boxes", "scores")
    xp = array_module(boxes, scores)
    try:
        iou_threshold = float(iou_threshold)
    except (TypeError, ValueError):
        raise ValueError(f"iou_threshold must be a number, got {iou_threshold!r}") from None
    if np.isnan(iou_threshold):
        raise ValueError("iou_threshold is NaN")
    scores_h = _to_host(scores)
    if scores_h.dtype.kind == "f" and np.isnan(scores_h).any():
        raise ValueError("scores contains NaN (the visiting order would be undefined)")
    n = len(scores_h)
    if n == 0:
        return xp.zeros(0, dtype=np.int64)
    # decreasing score, ties by ascending index: stable sort of the reversed array, read back
    order = (n - 1 - np.argsort(scores_h[::-1], kind="stable")[::-1]).astype(np.int64)
    dtype = boxes.dtype if boxes.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    sorted_boxes = xp.ascontiguousarray(boxes[xp.asarray(order)], dtype=dtype)
    col_blocks = -(-n // 64)
    mask = xp.zeros((n, col_blocks), dtype=np.uint64)
    launch("nms_mask_kernel", mask.size, dict(
        total=mask.size, boxes=sorted_boxes, n_boxes=n, col_blocks=col_blocks,
        iou_threshold=iou_threshold, mask=mask), dtype)
    mask = _to_host(mask)
    removed = np.zeros(col_blocks, dtype=np.uint64)
    keep = []
    for i in range(n):                     # the sequential sweep, O(N * N/64) word operations
        if not (int(removed[i // 64]) >> (i % 64)) & 1:
            keep.append(i)
            removed |= mask[i]
    return xp.asarray(order[np.array(keep, dtype=np.int64)])
