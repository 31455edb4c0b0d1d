"""Non-maximum suppression (greedy), single-class and per-class ("batched").

A detector fires many overlapping boxes on one object. Greedy NMS keeps the highest
scoring box, deletes every remaining box that overlaps it by more than a threshold
(IoU > iou_threshold, strictly), and repeats with the best survivor. The RPN uses it at
0.7 to thin out proposals (Faster R-CNN section 3.3), the box head per class at 0.5
(Mask R-CNN inference). Semantics follow ``torchvision.ops.nms`` exactly:

  * boxes are visited by decreasing score; equal scores by ascending index (stable sort);
  * the returned int64 indices are in visiting order (decreasing score);
  * IoU is computed in the boxes' dtype as ``inter / (area_i + area_j - inter)`` and
    compared in float64 with the threshold, so a pair with IoU exactly 0.5 survives at
    0.5. Two zero-area boxes give 0/0 = NaN, which never suppresses (as torchvision).

Implementations (table ``NMS``, see :mod:`mrcnn_np.ops.dispatch`): ``nms_reference`` (the
textbook double loop), ``nms_numpy`` (one vector step per kept box), ``nms_numba`` (a
sweep over an x-sorted copy that only visits boxes whose x-interval can meet the kept box,
rebuilt as boxes are finished; a compaction loop for negative thresholds), ``nms_cuda``
(kernels/nms.cu, :mod:`mrcnn_np.gpu.nms`). ``nms_steps`` returns the greedy trace for teaching.

Shapes::

    N      boxes
    boxes: (N, 4) [x1, y1, x2, y2]    scores: (N,)    idxs: (N,) int class / level ids
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._checks import check_array, check_boxes, check_same_length
from ..gpu.nms import nms as nms_cuda
from .dispatch import CUDA, resolve_impl

# torchvision (0.28/0.29, CPU) switches batched_nms from the coordinate trick to a loop
# over classes above this many box *numbers* (4 per box); we use the same switch so the
# results match it bit for bit (the trick's offsets round coordinates in float32).
BATCHED_NMS_OFFSET_MAX_NUMEL = 4000


def _check_nms_inputs(boxes, scores, iou_threshold):
    boxes = check_boxes(boxes)
    if boxes.dtype == np.float16:
        boxes = boxes.astype(np.float32)
    scores = check_array(scores, "scores", ndim=1, kinds="fiu")
    check_same_length(boxes, scores, "boxes", "scores")
    if scores.dtype.kind == "f" and np.isnan(scores).any():
        raise ValueError("scores contains NaN (the visiting order would be undefined)")
    return np.ascontiguousarray(boxes), scores, check_iou_threshold(iou_threshold)


def check_iou_threshold(iou_threshold) -> float:
    """The threshold as a float; None, text or NaN raise a ValueError naming the argument."""
    try:
        value = float(iou_threshold)
    except (TypeError, ValueError):
        raise ValueError(f"iou_threshold must be a number, got {iou_threshold!r}") from None
    if np.isnan(value):
        raise ValueError("iou_threshold is NaN")
    return value


def _score_order(scores):
    """Indices by decreasing score, ties by ascending index (torchvision's stable sort)."""
    # stable ascending sort of the reversed array, read backwards: works for every dtype
    # (negating unsigned scores would wrap around)
    n = len(scores)
    return (n - 1 - np.argsort(scores[::-1], kind="stable")[::-1]).astype(np.int64)


# ------------------------------------------------------------------- implementations

def nms_reference(boxes, order, iou_threshold):
    """Textbook greedy NMS: O(N^2) pair checks, one box at a time."""
    n = len(order)
    suppressed = [False] * n
    keep = []
    for a in range(n):
        i = order[a]
        if suppressed[a]:
            continue
        keep.append(i)
        ix1, iy1, ix2, iy2 = boxes[i]
        iarea = (ix2 - ix1) * (iy2 - iy1)
        for b in range(a + 1, n):
            if suppressed[b]:
                continue
            j = order[b]
            jx1, jy1, jx2, jy2 = boxes[j]
            jarea = (jx2 - jx1) * (jy2 - jy1)
            w = max(min(ix2, jx2) - max(ix1, jx1), 0)
            h = max(min(iy2, jy2) - max(iy1, jy1), 0)
            inter = w * h
            union = iarea + jarea - inter
            # union == 0 means 0/0 = NaN in torchvision: NaN > t is False, keep the box
            if union != 0 and float(inter / union) > iou_threshold:
                suppressed[b] = True
    return np.array(keep, dtype=np.int64)


def nms_numpy(boxes, order, iou_threshold):
    """Keep the best, drop its overlaps from the candidate list in one vector step, repeat."""
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    thr = np.float64(iou_threshold)  # a float64 *scalar* keeps the comparison in float64
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(iou > thr)]  # NaN > thr is False: NaN pairs never suppress
    return np.array(keep, dtype=np.int64)


@njit(cache=True)
def _first_above(a, size, v):
    """Binary search in the sorted a[:size]: the first index with a[q] > v (size if none)."""
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] > v:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True)
def _first_at_least(a, size, v):
    """Binary search in the sorted a[:size]: the first index with a[q] >= v (size if none)."""
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] >= v:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, error_model="numpy")
def _nms_numba_sweep(x1, y1, x2, y2, by_x, iou_threshold):
    """Greedy NMS over boxes sorted by score (rank r = position), for iou_threshold >= 0.

    With a non-negative threshold only boxes that overlap can suppress each other, so
    for each kept box we visit only the boxes whose x-interval can meet its own: in a
    copy sorted by x1, those lie between ``lo`` (the first box whose running maximum
    of x2 passes our x1) and ``hi`` (the first box starting at or after our x2), two
    binary searches. Whenever half of that copy is finished (kept or suppressed) it is
    rebuilt without them, so it shrinks as the greedy loop advances. The IoU arithmetic
    is torchvision's, so the result is identical; only pairs with zero overlap (IoU 0
    or NaN, never > threshold) are skipped. Returns the kept ranks in visiting order.
    """
    n = x1.shape[0]
    area = (x2 - x1) * (y2 - y1)
    by_x = by_x.copy()  # position q in x order -> rank (sorted by the caller: faster to compile)
    sx1, sy1, sx2, sy2, sarea = x1[by_x], y1[by_x], x2[by_x], y2[by_x], area[by_x]
    max_x2 = sx2.copy()
    for q in range(1, n):
        max_x2[q] = max(max_x2[q - 1], sx2[q])
    size = n  # live length of the x-sorted copy
    finished = 0  # entries of the copy that are kept or suppressed
    dead = np.zeros(n, dtype=np.bool_)
    keep = np.empty(n, dtype=np.int64)
    nkeep = 0
    for r in range(n):
        if dead[r]:
            continue
        keep[nkeep] = r
        nkeep += 1
        finished += 1
        ix1, iy1, ix2, iy2, iarea = x1[r], y1[r], x2[r], y2[r], area[r]
        lo = _first_above(max_x2, size, ix1)  # first q with max_x2[q] > ix1
        hi = _first_at_least(sx1, size, ix2)  # first q with sx1[q] >= ix2
        for q in range(lo, hi):
            yy1, yy2 = max(iy1, sy1[q]), min(iy2, sy2[q])
            if not yy2 > yy1:
                continue
            xx1, xx2 = max(ix1, sx1[q]), min(ix2, sx2[q])
            if not xx2 > xx1:
                continue
            j = by_x[q]
            if j <= r or dead[j]:  # only later, still-alive boxes can be suppressed
                continue
            inter = (xx2 - xx1) * (yy2 - yy1)
            if inter / (iarea + sarea[q] - inter) > iou_threshold:  # compared in float64
                dead[j] = True
                finished += 1
        if 2 * finished > size:  # rebuild the copy with the boxes still to visit
            out = 0
            for q in range(size):
                j = by_x[q]
                if j > r and not dead[j]:
                    by_x[out] = j
                    sx1[out], sy1[out], sx2[out], sy2[out], sarea[out] = sx1[q], sy1[q], sx2[q], sy2[q], sarea[q]
                    max_x2[out] = sx2[q] if out == 0 else max(max_x2[out - 1], sx2[q])
                    out += 1
            size = out
            finished = 0
    return keep[:nkeep]


@njit(cache=True, error_model="numpy")
def _nms_numba_compact(x1, y1, x2, y2, iou_threshold):
    """Greedy NMS over boxes sorted by score, any threshold (also negative ones).

    After each kept box the survivors are packed to the front of the (copied) arrays,
    so later passes never revisit suppressed boxes and read memory in order. Returns
    the kept ranks in visiting order.
    """
    x1, y1, x2, y2 = x1.copy(), y1.copy(), x2.copy(), y2.copy()
    zero = x1.dtype.type(0)
    n = x1.shape[0]
    area = (x2 - x1) * (y2 - y1)
    ids = np.arange(n)
    keep = np.empty(n, dtype=np.int64)
    nkeep = 0
    count = n
    while count > 0:
        ix1, iy1, ix2, iy2, iarea = x1[0], y1[0], x2[0], y2[0], area[0]
        keep[nkeep] = ids[0]
        nkeep += 1
        out = 0
        for j in range(1, count):
            w = max(min(ix2, x2[j]) - max(ix1, x1[j]), zero)
            h = max(min(iy2, y2[j]) - max(iy1, y1[j]), zero)
            inter = w * h
            iou = inter / (iarea + area[j] - inter)  # float division in the boxes' dtype
            if not (iou > iou_threshold):  # compared in float64; NaN keeps the box
                x1[out], y1[out], x2[out], y2[out] = x1[j], y1[j], x2[j], y2[j]
                area[out] = area[j]
                ids[out] = ids[j]
                out += 1
        count = out
    return keep[:nkeep]


def nms_numba(boxes, order, iou_threshold):
    sorted_boxes = boxes[order]  # one gather; the kernels then read memory in order
    cols = [np.ascontiguousarray(sorted_boxes[:, k]) for k in range(4)]
    thr = np.float64(iou_threshold)
    if iou_threshold < 0:
        return order[_nms_numba_compact(cols[0], cols[1], cols[2], cols[3], thr)]
    by_x = np.argsort(cols[0], kind="stable").astype(np.int64)
    return order[_nms_numba_sweep(cols[0], cols[1], cols[2], cols[3], by_x, thr)]


NMS = {"reference": nms_reference, "numpy": nms_numpy, "numba": nms_numba, CUDA: nms_cuda}


def nms(boxes, scores, iou_threshold, impl=None):
    """Greedy non-maximum suppression (torchvision's ``ops.nms``).

    boxes: (N, 4) float [x1, y1, x2, y2]; scores: (N,) (NaN raises ValueError);
    iou_threshold: suppress a box when its IoU with a kept box is > this value.
    Returns int64 indices of the kept boxes, by decreasing score (ties: lower index first).
    impl: "reference" | "numpy" | "numba" (default) | "cupy" (default for CuPy arrays: the
    bit-mask kernel of kernels/nms.cu).
    """
    impl = resolve_impl(impl, boxes, scores, available=NMS)
    if impl == CUDA:  # the CUDA twin checks its arguments itself (CuPy arrays stay on the GPU)
        return nms_cuda(boxes, scores, iou_threshold)
    boxes, scores, iou_threshold = _check_nms_inputs(boxes, scores, iou_threshold)
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    return NMS[impl](boxes, _score_order(scores), iou_threshold)


def nms_steps(boxes, scores, iou_threshold):
    """The greedy trace, for teaching: a list of (kept index, suppressed indices) per step.

    Follows the same rule as :func:`nms` (the kept indices, in order, equal its output);
    each step lists the boxes the newly kept box removed, in score order.
    """
    boxes, scores, iou_threshold = _check_nms_inputs(boxes, scores, iou_threshold)
    order = list(_score_order(scores))
    steps = []
    while order:
        i, rest = order[0], order[1:]
        removed = [j for j in rest if float(_pair_iou(boxes[i], boxes[j])) > iou_threshold]
        steps.append((int(i), np.array(removed, dtype=np.int64)))
        removed_set = set(removed)
        order = [j for j in rest if j not in removed_set]
    return steps


def _pair_iou(a, b):
    """IoU of two boxes with torchvision's arithmetic (NaN for two empty boxes)."""
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union != 0 else float("nan")


# ---------------------------------------------------------------------- batched_nms

def batched_nms(boxes, scores, idxs, iou_threshold, impl=None, *, method="auto"):
    """NMS run independently for each value of ``idxs`` (class or FPN level).

    boxes: (N, 4); scores: (N,); idxs: (N,) integer category of each box.
    Returns int64 indices of kept boxes by decreasing score, ties by ascending index.

    Two ways to get the same *set* of boxes (method="auto" picks like torchvision on CPU):

    * "offset" (the coordinate trick, used when boxes.size <= 4000): shift every box of
      category c by ``c * (max coordinate + 1)``, so boxes of different categories can
      never overlap, then run ONE ordinary NMS. Needs non-negative coordinates; the
      shifted float32 coordinates are rounded, which is why it is kept to small inputs.
    * "loop": one NMS per category, then merge and sort by score. Cheaper when there are
      many boxes and categories (each NMS only compares boxes of one category).
    """
    boxes, scores, iou_threshold = _check_nms_inputs(boxes, scores, iou_threshold)
    idxs = check_array(idxs, "idxs", ndim=1, kinds="iu")
    check_same_length(boxes, idxs, "boxes", "idxs")
    if method not in ("auto", "offset", "loop"):
        raise ValueError(f"method must be 'auto', 'offset' or 'loop', got {method!r}")
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    if method == "auto":
        method = "offset" if boxes.size <= BATCHED_NMS_OFFSET_MAX_NUMEL else "loop"
    if method == "offset":
        max_coordinate = boxes.max()
        offsets = idxs.astype(boxes.dtype) * (max_coordinate + boxes.dtype.type(1))
        return nms(boxes + offsets[:, None], scores, iou_threshold, impl=impl)
    kept = []
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        kept.append(members[nms(boxes[members], scores[members], iou_threshold, impl=impl)])
    kept = np.concatenate(kept)
    kept.sort()  # ascending index, so the stable score sort breaks ties by index
    return kept[_score_order(scores[kept])].astype(np.int64)
