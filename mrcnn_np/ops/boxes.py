"""Box geometry: area, intersection-over-union, clipping, small-box filter, box coding.

Every detector in this package describes objects by axis-aligned boxes. Four small
operations recur everywhere: measuring a box (area), comparing two boxes (IoU, used by
the Matcher to label anchors and proposals and by NMS to remove duplicates), keeping
boxes inside the image (clip) and dropping slivers (remove_small_boxes). The BoxCoder
turns a box into the regression target the network learns, relative to an anchor or
proposal, and back (Faster R-CNN paper, eq. 2; Fast R-CNN section 2.3 for the weights).

Conventions (see docs/DESIGN.md): boxes are float ``[x1, y1, x2, y2]`` in pixels, with no
"+1": width = x2 - x1. Signatures follow ``torchvision.ops`` so the two can be swapped.

Shapes::

    N, M   numbers of boxes in the two sets compared
    R      boxes being coded / decoded, k boxes per row (k classes in the box head)

Documented differences from torchvision:
  * ``box_iou`` of two boxes that do not overlap is 0, *including* two empty (zero-area)
    boxes, where torchvision returns 0/0 = NaN (detectron2's choice; a NaN would poison
    the Matcher's max). Everywhere else the values are identical.
  * float16 boxes are up-cast to float32 as torchvision does; integer boxes are accepted
    by ``box_area`` (int8/int16/uint8 up-cast to int32, the result is an integer area, as
    torchvision) and ``box_iou`` (computed in float64, returned as float32, the dtype
    torchvision's integer division gives); NaN or inf coordinates raise ``ValueError``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._checks import check_array, check_boxes
from .dispatch import resolve_impl

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")

DEFAULT_BBOX_XFORM_CLIP = math.log(1000.0 / 16)  # 4.135...: exp() of a larger delta overflows the image


def _as_float_boxes(boxes, name="boxes"):
    """Checked (N, 4) float32/float64 array; float16 is up-cast to float32 (as torchvision)."""
    boxes = check_boxes(boxes, name)
    if boxes.dtype == np.float16:
        boxes = boxes.astype(np.float32)
    return boxes


def _as_boxes(boxes, name="boxes"):
    """Checked (N, 4) boxes, float or integer, up-cast as torchvision's ``_upcast``:
    float16 -> float32, integers narrower than 32 bits -> int32."""
    boxes = check_array(boxes, name, ndim=2, last_dim=4, kinds="fiu", finite=True)
    if boxes.dtype.kind == "f":
        return _as_float_boxes(boxes, name)
    if boxes.dtype.itemsize < 4 or boxes.dtype == np.uint32:
        boxes = boxes.astype(np.int64 if boxes.dtype == np.uint32 else np.int32)
    return boxes


def box_area(boxes):
    """Area ``(x2 - x1) * (y2 - y1)`` of each box.

    boxes: (N, 4) [x1, y1, x2, y2], float or integer. Returns (N,) in the boxes' (up-cast)
    dtype. No clamping: an inverted box gives a negative area, exactly as torchvision.
    """
    boxes = _as_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_convert(boxes, in_fmt, out_fmt):
    """Boxes (N, 4) from one format to another: "xyxy" (corners), "xywh" (top-left corner,
    width, height) or "cxcywh" (centre, width, height) -- torchvision's ``box_convert``.

    The dtype of float boxes is kept (float16 up-cast to float32); integer boxes are
    converted in float64 (a centre can fall on a half pixel). ``in_fmt == out_fmt`` returns
    a copy. Degenerate boxes (zero or negative size) are converted like any other.
    """
    for arg, fmt in (("in_fmt", in_fmt), ("out_fmt", out_fmt)):
        if fmt not in BOX_FORMATS:
            raise ValueError(f"{arg} must be one of {BOX_FORMATS}, got {fmt!r}")
    boxes = check_array(boxes, "boxes", ndim=2, last_dim=4, kinds="fiu", finite=True)
    boxes = _as_float_boxes(boxes) if boxes.dtype.kind == "f" else boxes.astype(np.float64)
    a, b, c, d = (boxes[:, i] for i in range(4))
    half = boxes.dtype.type(0.5)
    if in_fmt == "xywh":          # -> corners
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - half * c, b - half * d, a + half * c, b + half * d
    if out_fmt == "xywh":         # corners ->
        a, b, c, d = a, b, c - a, d - b
    elif out_fmt == "cxcywh":
        a, b, c, d = (a + c) * half, (b + d) * half, c - a, d - b
    return np.stack([a, b, c, d], axis=1)


# ----------------------------------------------------------------------------- box_iou

def box_iou_reference(boxes1, boxes2):
    """Loops over every pair; the specification the fast versions are tested against."""
    n, m = len(boxes1), len(boxes2)
    out = np.zeros((n, m), dtype=np.result_type(boxes1, boxes2))
    for i in range(n):
        ax1, ay1, ax2, ay2 = boxes1[i]
        area_a = (ax2 - ax1) * (ay2 - ay1)
        for j in range(m):
            bx1, by1, bx2, by2 = boxes2[j]
            area_b = (bx2 - bx1) * (by2 - by1)
            # the overlap is the box between the larger top-left and the smaller bottom-right
            w = max(min(ax2, bx2) - max(ax1, bx1), 0)
            h = max(min(ay2, by2) - max(ay1, by1), 0)
            inter = w * h
            # inter > 0 implies both boxes have positive area, so union > 0
            out[i, j] = inter / (area_a + area_b - inter) if inter > 0 else 0
    return out


def box_iou_numpy(boxes1, boxes2):
    """Broadcast (N, 1, 2) against (1, M, 2); same operation order as torchvision."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=inter > 0)
    return out


@njit(cache=True, parallel=True)
def box_iou_numba(boxes1, boxes2):
    """One row of the (N, M) matrix per parallel iteration; math in the input dtype."""
    n, m = boxes1.shape[0], boxes2.shape[0]
    out = np.zeros((n, m), dtype=boxes1.dtype)
    zero = boxes1.dtype.type(0)
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    for i in prange(n):
        ax1, ay1, ax2, ay2 = boxes1[i, 0], boxes1[i, 1], boxes1[i, 2], boxes1[i, 3]
        area_a = (ax2 - ax1) * (ay2 - ay1)
        for j in range(m):
            w = max(min(ax2, boxes2[j, 2]) - max(ax1, boxes2[j, 0]), zero)
            h = max(min(ay2, boxes2[j, 3]) - max(ay1, boxes2[j, 1]), zero)
            inter = w * h
            if inter > zero:
                out[i, j] = inter / (area_a + area2[j] - inter)
    return out


BOX_IOU = {"reference": box_iou_reference, "numpy": box_iou_numpy, "numba": box_iou_numba}


def box_iou(boxes1, boxes2, impl=None):
    """Intersection over union of every pair of boxes.

    boxes1: (N, 4), boxes2: (M, 4) [x1, y1, x2, y2]. Returns (N, M) in the common dtype,
    ``iou[i, j] = area(b1_i & b2_j) / area(b1_i | b2_j)``, in [0, 1] for valid boxes.
    Pairs that do not overlap (including two zero-area boxes) give 0, never NaN.
    Integer boxes (either set) are compared in float64 and the result is float32.
    impl: "reference" | "numpy" | "numba" (default).
    """
    boxes1 = _as_boxes(boxes1, "boxes1")
    boxes2 = _as_boxes(boxes2, "boxes2")
    impl = resolve_impl(impl, boxes1, boxes2, available=BOX_IOU)
    integer = boxes1.dtype.kind in "iu" or boxes2.dtype.kind in "iu"
    dtype = np.float64 if integer else np.result_type(boxes1, boxes2)
    boxes1 = np.ascontiguousarray(boxes1, dtype=dtype)
    boxes2 = np.ascontiguousarray(boxes2, dtype=dtype)
    iou = BOX_IOU[impl](boxes1, boxes2)
    return iou.astype(np.float32) if integer else iou


# ----------------------------------------------------------------------- clip / filter

def clip_boxes_to_image(boxes, size):
    """Clamp x to [0, W] and y to [0, H] (the bound is W, not W - 1: no "+1").

    boxes: (N, 4) [x1, y1, x2, y2]; size: (H, W) of the resized, *unpadded* image.
    Returns a new (N, 4) array of the same dtype.
    """
    boxes = _as_float_boxes(boxes)
    if len(size) != 2:
        raise ValueError(f"size must be (H, W), got {size!r}")
    height, width = size
    if not (height >= 0 and width >= 0):
        raise ValueError(f"size must be non-negative (H, W), got {size!r}")
    out = boxes.copy()
    out[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
    out[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
    return out


def remove_small_boxes(boxes, min_size):
    """Indices (ascending, int64) of boxes whose width AND height are >= min_size.

    boxes: (N, 4). The comparison is inclusive (torchvision): with min_size=1, a 1x1
    box is kept and a 0.999-wide box is dropped.
    """
    boxes = _as_float_boxes(boxes)
    if not np.isfinite(min_size):
        raise ValueError(f"min_size must be finite, got {min_size!r}")
    ws = boxes[:, 2] - boxes[:, 0]
    hs = boxes[:, 3] - boxes[:, 1]
    return np.flatnonzero((ws >= min_size) & (hs >= min_size)).astype(np.int64)


# ---------------------------------------------------------------------------- BoxCoder

class BoxCoder:
    """Encode boxes as deltas relative to reference boxes (anchors/proposals), and back.

    For a proposal p and a target box g (centre cx, cy, size w, h)::

        dx = wx (g_cx - p_cx) / p_w      dw = ww log(g_w / p_w)
        dy = wy (g_cy - p_cy) / p_h      dh = wh log(g_h / p_h)

    Centre offsets are measured in units of the proposal's size and sizes in log space,
    so the targets do not depend on the object's scale (Faster R-CNN eq. 2). The weights
    rescale the targets to roughly unit variance: (1, 1, 1, 1) for the RPN, (10, 10, 5, 5)
    for the box head (1 / Fast R-CNN's target std 0.1, 0.2).

    weights: (wx, wy, ww, wh). bbox_xform_clip: upper clamp on dw, dh when decoding
    (after dividing by the weight), so that exp() stays finite.
    """

    def __init__(self, weights, bbox_xform_clip=DEFAULT_BBOX_XFORM_CLIP):
        weights = tuple(float(w) for w in weights)
        if len(weights) != 4 or not all(np.isfinite(w) and w > 0 for w in weights):
            raise ValueError(f"weights must be 4 positive numbers (wx, wy, ww, wh), got {weights!r}")
        self.weights = weights
        self.bbox_xform_clip = float(bbox_xform_clip)

    # -- encode --------------------------------------------------------------------
    def encode(self, reference_boxes, proposals):
        """Regression targets that move each proposal onto its reference (target) box.

        reference_boxes, proposals: either (R, 4) arrays -> returns (R, 4) deltas
        (dx, dy, dw, dh), or lists of per-image (R_i, 4) arrays (torchvision's form)
        -> returns a tuple of per-image (R_i, 4) arrays.
        """
        if isinstance(reference_boxes, (list, tuple)):
            if len(reference_boxes) != len(proposals):
                raise ValueError("reference_boxes and proposals must be lists of the same length")
            lengths = [len(b) for b in reference_boxes]
            cat = self.encode_single(_concat(reference_boxes, "reference_boxes"),
                                     _concat(proposals, "proposals"))
            return tuple(np.split(cat, np.cumsum(lengths)[:-1]))
        return self.encode_single(reference_boxes, proposals)

    def encode_single(self, reference_boxes, proposals):
        """(R, 4) targets for (R, 4) reference boxes and (R, 4) proposals.

        Arithmetic is in the reference boxes' dtype (as torchvision). A proposal with
        zero width or height gives inf/NaN (no epsilon): callers never encode against
        such boxes because anchors and proposals have positive size.
        """
        ref = _as_float_boxes(reference_boxes, "reference_boxes")
        prop = _as_float_boxes(proposals, "proposals").astype(ref.dtype, copy=False)
        if ref.shape != prop.shape:
            raise ValueError(f"reference_boxes {ref.shape} and proposals {prop.shape} must have the same shape")
        wx, wy, ww, wh = (ref.dtype.type(w) for w in self.weights)
        pw = prop[:, 2] - prop[:, 0]
        ph = prop[:, 3] - prop[:, 1]
        pcx = prop[:, 0] + 0.5 * pw
        pcy = prop[:, 1] + 0.5 * ph
        gw = ref[:, 2] - ref[:, 0]
        gh = ref[:, 3] - ref[:, 1]
        gcx = ref[:, 0] + 0.5 * gw
        gcy = ref[:, 1] + 0.5 * gh
        with np.errstate(divide="ignore", invalid="ignore"):
            dx = wx * (gcx - pcx) / pw
            dy = wy * (gcy - pcy) / ph
            dw = ww * np.log(gw / pw)
            dh = wh * np.log(gh / ph)
        return np.stack([dx, dy, dw, dh], axis=1)

    # -- decode --------------------------------------------------------------------
    def decode(self, rel_codes, boxes):
        """Apply deltas to boxes.

        rel_codes: (R, 4k) deltas, k boxes per row (k classes in the box head, 1 in the RPN).
        boxes: (R, 4) array, or a list of per-image (R_i, 4) arrays with sum R_i = R.
        Returns (R, k, 4) boxes, as torchvision's ``BoxCoder.decode``.
        """
        if isinstance(boxes, (list, tuple)):
            boxes = _concat(boxes, "boxes")
        rel_codes = check_array(rel_codes, "rel_codes", ndim=2, kinds="f")
        pred = self.decode_single(rel_codes, boxes)
        return pred.reshape(len(pred), rel_codes.shape[1] // 4, 4)

    def decode_single(self, rel_codes, boxes):
        """(R, 4k) deltas applied to (R, 4) boxes -> (R, 4k) boxes in rel_codes' dtype."""
        rel_codes = check_array(rel_codes, "rel_codes", ndim=2, kinds="f")
        if rel_codes.dtype == np.float16:
            rel_codes = rel_codes.astype(np.float32)
        if rel_codes.shape[1] % 4:
            raise ValueError(f"rel_codes must have shape (R, 4k), got {rel_codes.shape}")
        boxes = _as_float_boxes(boxes).astype(rel_codes.dtype, copy=False)
        if len(boxes) != len(rel_codes):
            raise ValueError(f"rel_codes has {len(rel_codes)} rows but boxes has {len(boxes)}")
        t = rel_codes.dtype.type
        wx, wy, ww, wh = self.weights
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        ctr_x = boxes[:, 0] + 0.5 * widths
        ctr_y = boxes[:, 1] + 0.5 * heights
        dx = rel_codes[:, 0::4] / t(wx)
        dy = rel_codes[:, 1::4] / t(wy)
        # clamp only from above, after the weight: a huge predicted size is the danger
        dw = np.minimum(rel_codes[:, 2::4] / t(ww), t(self.bbox_xform_clip))
        dh = np.minimum(rel_codes[:, 3::4] / t(wh), t(self.bbox_xform_clip))
        pcx = dx * widths[:, None] + ctr_x[:, None]
        pcy = dy * heights[:, None] + ctr_y[:, None]
        half_w = t(0.5) * (np.exp(dw) * widths[:, None])
        half_h = t(0.5) * (np.exp(dh) * heights[:, None])
        out = np.stack([pcx - half_w, pcy - half_h, pcx + half_w, pcy + half_h], axis=2)
        return out.reshape(len(rel_codes), rel_codes.shape[1])


def _concat(arrays, name):
    if len(arrays) == 0:
        raise ValueError(f"{name} is an empty list")
    return np.concatenate([_as_float_boxes(a, name) for a in arrays], axis=0)
