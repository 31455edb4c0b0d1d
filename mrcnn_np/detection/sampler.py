"""Balanced sampling of positive and negative training examples.

An image has ~200k anchors and a few objects: nearly every anchor is background. Each
loss therefore sees a fixed-size random sample per image with at most a given fraction
of positives (Faster R-CNN section 3.1.3: 256 anchors, up to 1:1; Fast R-CNN / Mask
R-CNN: 512 RoIs per image (FPN), 25 % positive, i.e. 1:3). If there are too few
positives the sample is filled with negatives.

    num_pos = min(int(batch_size_per_image * positive_fraction), #positives)
    num_neg = min(batch_size_per_image - num_pos, #negatives)

Labels follow torchvision: >= 1 positive, 0 negative, -1 ignored (never sampled).
Randomness comes only from the ``np.random.Generator`` passed in (reproducible).
Output order: both index arrays are sorted ascending, which is what torchvision's
callers get from ``torch.where(mask)`` (detectron2 instead returns them in random order).

Shapes::

    N candidates (anchors or proposals) of ONE image
    labels: (N,) int (or float) -> pos_idx: (P,) int64, neg_idx: (Q,) int64
"""

from __future__ import annotations

import numpy as np

from .._checks import check_array
from ..ops.dispatch import resolve_impl

RPN_BATCH_SIZE_PER_IMAGE, RPN_POSITIVE_FRACTION = 256, 0.5
ROI_HEADS_BATCH_SIZE_PER_IMAGE, ROI_HEADS_POSITIVE_FRACTION = 512, 0.25


def _sample_reference(labels, num_wanted_pos, batch_size, rng):
    positive, negative = [], []
    for i, lab in enumerate(labels):
        if lab >= 1:
            positive.append(i)
        elif lab == 0:
            negative.append(i)
    num_pos = min(num_wanted_pos, len(positive))
    num_neg = min(batch_size - num_pos, len(negative))
    # a random permutation, take the first n: uniform choice without replacement
    perm_pos = rng.permutation(len(positive))[:num_pos]
    perm_neg = rng.permutation(len(negative))[:num_neg]
    pos = sorted(positive[k] for k in perm_pos)
    neg = sorted(negative[k] for k in perm_neg)
    return np.array(pos, dtype=np.int64), np.array(neg, dtype=np.int64)


def _sample_numpy(labels, num_wanted_pos, batch_size, rng):
    positive = np.flatnonzero(labels >= 1)
    negative = np.flatnonzero(labels == 0)
    num_pos = min(num_wanted_pos, positive.size)
    num_neg = min(batch_size - num_pos, negative.size)
    pos = np.sort(positive[rng.permutation(positive.size)[:num_pos]])
    neg = np.sort(negative[rng.permutation(negative.size)[:num_neg]])
    return pos.astype(np.int64), neg.astype(np.int64)


_SAMPLE = {"reference": _sample_reference, "numpy": _sample_numpy}


class BalancedPositiveNegativeSampler:
    """BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction).

    ``sampler(labels, rng)`` -> (pos_idx, neg_idx), each an ascending int64 index array
    into labels. ``sampler.masks(labels, rng)`` gives the same choice as two (N,) bool
    masks (torchvision's form).
    """

    def __init__(self, batch_size_per_image, positive_fraction):
        if int(batch_size_per_image) != batch_size_per_image or batch_size_per_image < 0:
            raise ValueError(f"batch_size_per_image must be a non-negative int, got {batch_size_per_image!r}")
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction!r}")
        self.batch_size_per_image = int(batch_size_per_image)
        self.positive_fraction = float(positive_fraction)

    def __call__(self, labels, rng, impl="numpy"):
        labels = check_array(labels, "labels", ndim=1, kinds="fiu")
        if labels.dtype.kind == "f" and np.isnan(labels).any():
            raise ValueError("labels contains NaN")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        impl = resolve_impl(impl, labels, available=tuple(_SAMPLE))
        num_wanted_pos = int(self.batch_size_per_image * self.positive_fraction)
        return _SAMPLE[impl](labels, num_wanted_pos, self.batch_size_per_image, rng)

    def masks(self, labels, rng, impl="numpy"):
        """(pos_mask, neg_mask): (N,) bool each, True for the sampled candidates."""
        pos, neg = self(labels, rng, impl=impl)
        n = len(labels)
        pos_mask = np.zeros(n, dtype=bool)
        neg_mask = np.zeros(n, dtype=bool)
        pos_mask[pos] = True
        neg_mask[neg] = True
        return pos_mask, neg_mask


def rpn_sampler():
    """RPN preset: 256 anchors per image, at most half positive (1:1)."""
    return BalancedPositiveNegativeSampler(RPN_BATCH_SIZE_PER_IMAGE, RPN_POSITIVE_FRACTION)


def roi_heads_sampler():
    """RoI-heads preset: 512 RoIs per image, at most a quarter positive (1:3)."""
    return BalancedPositiveNegativeSampler(ROI_HEADS_BATCH_SIZE_PER_IMAGE, ROI_HEADS_POSITIVE_FRACTION)
