"""Anchors: the fixed reference boxes the RPN classifies and regresses from.

At every position of a feature map the RPN looks at A reference boxes ("anchors") of
different sizes and aspect ratios, and predicts for each one an objectness score and a
box correction (Faster R-CNN section 3.1.1). With an FPN (FPN paper section 4.1) each
pyramid level gets one size, 32 on P2 (stride 4) up to 512 on P6 (stride 64), and three
ratios, so A = 3: a small object is matched on a fine map and a large one on a coarse map.

This module reproduces torchvision's ``AnchorGenerator`` number for number:

  * cell (base) anchors centred on 0, computed in float32 and rounded half-to-even;
    aspect ratio = height / width; order ratio-major, size-minor;
  * strides = padded image size // feature size (integer division: an 800 x 1088 batch
    has a P6 of 13 x 17 and so a stride of (61, 64), not 64);
  * anchor centres at (x * stride_w, y * stride_h), the top-left corner of the feature
    cell (``offset=0.0``); detectron2's constructor default puts them at the cell centre
    (``offset=0.5``), its config default is also 0.0;
  * flat order: levels in order, then y, then x, then the A anchors of the location.

Shapes::

    L levels, (h_l, w_l) feature size of level l, A anchors per location
    anchors: (sum_l h_l * w_l * A, 4) float32 [x1, y1, x2, y2]
"""

from __future__ import annotations

import numpy as np

from ..ops.dispatch import resolve_impl

FPN_SIZES = ((32,), (64,), (128,), (256,), (512,))
FPN_ASPECT_RATIOS = ((0.5, 1.0, 2.0),) * 5


def cell_anchors(sizes, aspect_ratios):
    """(len(ratios) * len(sizes), 4) float32 anchors centred on (0, 0), ratio-major.

    For ratio r = h / w and size s the anchor has width s / sqrt(r) and height
    s * sqrt(r) (area s^2), rounded half-to-even like ``torch.round``.
    """
    scales = np.asarray(sizes, dtype=np.float32)
    ratios = np.asarray(aspect_ratios, dtype=np.float32)
    if scales.ndim != 1 or ratios.ndim != 1 or not (scales > 0).all() or not (ratios > 0).all():
        raise ValueError(f"sizes and aspect_ratios must be 1-D positive, got {sizes!r}, {aspect_ratios!r}")
    h_ratios = np.sqrt(ratios)
    w_ratios = np.float32(1) / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)  # ratio-major, size-minor
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    base = np.stack([-ws, -hs, ws, hs], axis=1) / np.float32(2)
    return np.round(base).astype(np.float32)  # np.round is half-to-even, as torch.round


def grid_anchors_reference(base, feature_size, stride, offset=0.0):
    """Loops: for y, for x, for each cell anchor, shift it to the location's centre."""
    (h, w), (sh, sw) = feature_size, stride
    out = []
    for y in range(h):
        for x in range(w):
            cx, cy = (x + offset) * sw, (y + offset) * sh
            for a in range(len(base)):
                x1, y1, x2, y2 = base[a]
                out.append([x1 + cx, y1 + cy, x2 + cx, y2 + cy])
    return np.array(out, dtype=np.float32).reshape(-1, 4)


def grid_anchors_numpy(base, feature_size, stride, offset=0.0):
    """Broadcast (h*w, 1, 4) shifts against (1, A, 4) cell anchors."""
    (h, w), (sh, sw) = feature_size, stride
    # integer shifts when offset == 0, exactly like torchvision's int32 arange * stride
    xs = (np.arange(w) + offset) * sw
    ys = (np.arange(h) + offset) * sh
    sy, sx = np.meshgrid(ys, xs, indexing="ij")
    shifts = np.stack([sx, sy, sx, sy], axis=-1).reshape(-1, 1, 4).astype(np.float32)
    return (shifts + base[None, :, :]).reshape(-1, 4)


_GRID = {"reference": grid_anchors_reference, "numpy": grid_anchors_numpy}


def _is_sequence(x) -> bool:
    return isinstance(x, (tuple, list, np.ndarray))


def _positive_numbers(values, name):
    """A tuple of finite positive Python numbers, or a ValueError naming ``name``."""
    if not _is_sequence(values) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty sequence of positive numbers, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must hold positive numbers, got {v!r} in {values!r}")
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must hold finite positive numbers, got {v!r} in {values!r}")
        out.append(v.item() if isinstance(v, np.generic) else v)
    return tuple(out)


def anchor_levels(sizes, aspect_ratios):
    """Per-level ``(sizes, aspect_ratios)``, both tuples of L tuples, as torchvision reads them.

    torchvision's rule: ``sizes`` whose first entry is a number means one size per level
    (``(32, 64)`` is ``((32,), (64,))``); ``aspect_ratios`` whose first entry is a number is
    one tuple used on every level (``(0.5, 1.0, 2.0)`` with five levels of sizes is
    ``((0.5, 1.0, 2.0),) * 5``). Afterwards both must have one entry per level. Anything
    else (empty, non-numbers, zero, negative, NaN, a level count that disagrees) raises a
    ValueError naming the argument.
    """
    if not _is_sequence(sizes) or len(sizes) == 0:
        raise ValueError(f"sizes must be a non-empty tuple (one tuple of sizes per level), got {sizes!r}")
    if not _is_sequence(aspect_ratios) or len(aspect_ratios) == 0:
        raise ValueError(f"aspect_ratios must be a non-empty tuple (one tuple for all levels, or one per "
                         f"level), got {aspect_ratios!r}")
    if not _is_sequence(sizes[0]):
        sizes = tuple((s,) for s in sizes)
    if not _is_sequence(aspect_ratios[0]):
        aspect_ratios = (tuple(aspect_ratios),) * len(sizes)
    sizes = tuple(_positive_numbers(s, f"sizes[{i}]") for i, s in enumerate(sizes))
    aspect_ratios = tuple(_positive_numbers(r, f"aspect_ratios[{i}]") for i, r in enumerate(aspect_ratios))
    if len(sizes) != len(aspect_ratios):
        raise ValueError(f"sizes ({len(sizes)} levels) and aspect_ratios ({len(aspect_ratios)} levels) "
                         "must have one entry per feature level")
    return sizes, aspect_ratios


class AnchorGenerator:
    """torchvision-compatible multi-level anchor generator.

    sizes: one tuple of sizes per feature level (or a flat tuple: one size per level);
    aspect_ratios: ratios (height / width), one tuple per level or one flat tuple for every
    level (``anchor_levels``). offset: anchor centre inside the feature cell in units
    of the stride (0.0 = torchvision; 0.5 = the cell centre, detectron2's constructor
    default). impl: "numpy" (default) or "reference" (loops).
    """

    def __init__(self, sizes=FPN_SIZES, aspect_ratios=FPN_ASPECT_RATIOS, offset=0.0, impl="numpy"):
        self.sizes, self.aspect_ratios = anchor_levels(sizes, aspect_ratios)
        if isinstance(offset, bool) or not isinstance(offset, (int, float, np.integer, np.floating)) \
                or not np.isfinite(offset):
            raise ValueError(f"offset must be a finite number (0.0: torchvision, 0.5: cell centre), got {offset!r}")
        self.offset = float(offset)
        self.impl = resolve_impl(impl, available=tuple(_GRID))
        self.cell_anchors = [cell_anchors(s, r) for s, r in zip(self.sizes, self.aspect_ratios)]

    def num_anchors_per_location(self):
        """[A_l for each level]: len(sizes_l) * len(ratios_l)."""
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios)]

    def strides(self, image_size, feature_sizes):
        """[(stride_h, stride_w)] per level = padded size // feature size (integer division)."""
        H, W = image_size
        return [(int(H) // int(h), int(W) // int(w)) for h, w in feature_sizes]

    def per_level(self, image_size, feature_sizes):
        """List of (h_l * w_l * A_l, 4) float32 anchors, one array per level."""
        feature_sizes = [tuple(int(v) for v in fs) for fs in feature_sizes]
        if len(feature_sizes) != len(self.cell_anchors):
            raise ValueError(f"got {len(feature_sizes)} feature sizes for {len(self.cell_anchors)} anchor levels")
        if len(image_size) != 2 or any(v <= 0 for v in image_size):
            raise ValueError(f"image_size must be a positive (H_pad, W_pad), got {image_size!r}")
        for fs in feature_sizes:
            if len(fs) != 2 or fs[0] <= 0 or fs[1] <= 0 or fs[0] > image_size[0] or fs[1] > image_size[1]:
                raise ValueError(f"feature size {fs} must be positive and not larger than image_size {image_size}")
        grid = _GRID[self.impl]
        return [grid(base, fs, st, self.offset) for base, fs, st in
                zip(self.cell_anchors, feature_sizes, self.strides(image_size, feature_sizes))]

    def __call__(self, image_size, feature_sizes):
        """All anchors of all levels concatenated: (sum_l h_l * w_l * A_l, 4) float32."""
        return np.concatenate(self.per_level(image_size, feature_sizes), axis=0)


# ------------------------------------------------------- original Faster R-CNN (one map)

def faster_rcnn_cell_anchors(base_size=16, ratios=(0.5, 1.0, 2.0), scales=(8, 16, 32)):
    """The 9 anchors of py-faster-rcnn's ``generate_anchors`` (one map, stride 16).

    Legacy "+1" convention: the base window is [0, 0, 15, 15] (width 16, centre 7.5);
    for each ratio r = h / w, ws = round(sqrt(16*16 / r)), hs = round(ws * r), then each
    scale multiplies ws, hs; box = centre -/+ 0.5 * (size - 1). Returns (9, 4) float32,
    ratio-major. Add 1 to x2, y2 to use them with this package's no-"+1" boxes.
    """
    size = float(base_size)
    ctr = 0.5 * (size - 1)
    out = []
    for r in ratios:
        ws = np.round(np.sqrt(size * size / r))
        hs = np.round(ws * r)
        for s in scales:
            w, h = ws * s, hs * s
            out.append([ctr - 0.5 * (w - 1), ctr - 0.5 * (h - 1), ctr + 0.5 * (w - 1), ctr + 0.5 * (h - 1)])
    return np.array(out, dtype=np.float32)


def faster_rcnn_anchors(feature_size, stride=16, **cell_kwargs):
    """All anchors of the single-map generator: (h * w * 9, 4), shifted by (stride*x, stride*y)."""
    base = faster_rcnn_cell_anchors(base_size=stride, **cell_kwargs)
    return grid_anchors_numpy(base, feature_size, (stride, stride), 0.0)
