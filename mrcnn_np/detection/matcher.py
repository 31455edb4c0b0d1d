"""Matcher: assign each anchor/proposal to a ground-truth box, background, or "ignore".

Training needs a target for every prediction. Given a quality matrix (the IoU of every
GT box with every anchor or proposal), the Matcher gives each prediction the GT it
overlaps most if that overlap is high enough, marks it background if the overlap is
low, and ignores it in between (Faster R-CNN section 3.1.2: RPN positive if IoU >= 0.7,
negative if < 0.3; Mask R-CNN section 3: a RoI is positive if IoU >= 0.5).

"Low-quality matches": a GT whose best anchor is below the high threshold would get no
positive at all, so every anchor that reaches that GT's best IoU (all exact ties) is
promoted to its own best GT (Faster R-CNN's condition (i)). Semantics follow torchvision's
``Matcher``, including its pathology: a GT that overlaps nothing has best IoU 0, so every
prediction with IoU 0 to it gets promoted.

Shapes::

    M ground-truth boxes, N predictions (anchors or proposals)
    quality: (M, N) IoU        matches: (N,) int64
    matches[n] >= 0  index of the matched GT;  -1 below low (background);  -2 between (ignore)

Difference from torchvision: an image with no GT (M = 0) returns all -1 (background),
where torchvision raises; that is what both its RPN and RoI heads do for such images.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_array
from ..ops.dispatch import resolve_impl

BELOW_LOW_THRESHOLD = -1
BETWEEN_THRESHOLDS = -2


def _match_reference(quality, high, low, allow_low_quality):
    """Loops over predictions (columns), then over GT rows, as a reader would do by hand."""
    m, n = quality.shape
    matches = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.int64)
    for j in range(n):
        g_best, v_best = 0, quality[0, j]
        for g in range(1, m):
            if quality[g, j] > v_best:  # strict: ties go to the first GT
                g_best, v_best = g, quality[g, j]
        best[j] = g_best
        if v_best < low:
            matches[j] = BELOW_LOW_THRESHOLD
        elif v_best < high:
            matches[j] = BETWEEN_THRESHOLDS
        else:
            matches[j] = g_best
    if allow_low_quality:
        for g in range(m):
            row_best = max(quality[g, j] for j in range(n))
            for j in range(n):
                if quality[g, j] == row_best:
                    matches[j] = best[j]  # its own best GT, not necessarily g
    return matches


def _match_numpy(quality, high, low, allow_low_quality):
    best = quality.argmax(axis=0)  # argmax returns the first maximum: ties -> first GT
    vals = quality[best, np.arange(quality.shape[1])]
    matches = best.astype(np.int64)
    matches[vals < low] = BELOW_LOW_THRESHOLD
    matches[(vals >= low) & (vals < high)] = BETWEEN_THRESHOLDS
    if allow_low_quality:
        row_best = quality.max(axis=1, keepdims=True)
        promoted = (quality == row_best).any(axis=0)
        matches[promoted] = best[promoted]
    return matches


_MATCH = {"reference": _match_reference, "numpy": _match_numpy}


class Matcher:
    """Matcher(high_threshold, low_threshold, allow_low_quality_matches=False).

    Calling it on a quality matrix (M, N) returns (N,) int64 match codes (see module doc).
    ``high_threshold`` is inclusive for a match; ``low <= IoU < high`` is ignored (-2).
    """

    def __init__(self, high_threshold, low_threshold, allow_low_quality_matches=False):
        if not low_threshold <= high_threshold:
            raise ValueError(f"low_threshold ({low_threshold}) must be <= high_threshold ({high_threshold})")
        self.high_threshold = float(high_threshold)
        self.low_threshold = float(low_threshold)
        self.allow_low_quality_matches = bool(allow_low_quality_matches)

    def __call__(self, match_quality_matrix, impl="numpy"):
        quality = check_array(match_quality_matrix, "match_quality_matrix", ndim=2, kinds="fiu")
        if quality.dtype.kind == "f" and np.isnan(quality).any():
            raise ValueError("match_quality_matrix contains NaN")
        impl = resolve_impl(impl, quality, available=tuple(_MATCH))
        m, n = quality.shape
        if m == 0:  # no ground truth: everything is background (torchvision raises here)
            return np.full(n, BELOW_LOW_THRESHOLD, dtype=np.int64)
        if n == 0:
            return np.empty(0, dtype=np.int64)
        return _MATCH[impl](quality, self.high_threshold, self.low_threshold,
                            self.allow_low_quality_matches)


def rpn_matcher():
    """RPN preset: positive IoU >= 0.7, negative < 0.3, low-quality matches on."""
    return Matcher(0.7, 0.3, allow_low_quality_matches=True)


def roi_heads_matcher():
    """RoI-heads preset: positive IoU >= 0.5, everything else background (no ignore band)."""
    return Matcher(0.5, 0.5, allow_low_quality_matches=False)
