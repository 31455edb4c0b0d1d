"""BalancedPositiveNegativeSampler: counts, ignored labels, determinism, order, presets."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrcnn_np.detection.sampler import BalancedPositiveNegativeSampler, roi_heads_sampler, rpn_sampler


def test_counts_plenty_of_both(rng):
    labels = np.r_[np.ones(300), np.zeros(5000), -np.ones(100)].astype(np.float32)
    pos, neg = rpn_sampler()(labels, rng)
    assert (len(pos), len(neg)) == (128, 128)  # 1:1
    pos, neg = roi_heads_sampler()(labels, rng)
    assert (len(pos), len(neg)) == (128, 384)  # 1:3
    assert (labels[pos] >= 1).all() and (labels[neg] == 0).all()
    assert pos.dtype == np.int64 and (np.diff(pos) > 0).all() and (np.diff(neg) > 0).all()


def test_few_positives_filled_with_negatives(rng):
    labels = np.array([3, 0, 0, -1, 1, 0, 0, 0, 0, 0, -1, 0])  # class ids count as positive
    pos, neg = BalancedPositiveNegativeSampler(6, 0.5)(labels, rng)
    np.testing.assert_array_equal(pos, [0, 4])
    assert len(neg) == 4 and not set(neg) & {3, 10}


def test_deterministic_and_reference_equal():
    labels = np.random.default_rng(1).integers(-1, 3, 1000)
    s = BalancedPositiveNegativeSampler(64, 0.25)
    a = s(labels, np.random.default_rng(7))
    b = s(labels, np.random.default_rng(7), impl="reference")
    c = s(labels, np.random.default_rng(8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    pm, nm = s.masks(labels, np.random.default_rng(7))
    np.testing.assert_array_equal(np.flatnonzero(pm), a[0])
    np.testing.assert_array_equal(np.flatnonzero(nm), a[1])


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 10), st.integers(0, 64),
       st.sampled_from([0.0, 0.25, 0.5, 1.0]))
def test_count_formula(npos, nneg, nign, batch, frac):
    labels = np.random.default_rng(0).permutation(np.r_[np.ones(npos), np.zeros(nneg), -np.ones(nign)])
    pos, neg = BalancedPositiveNegativeSampler(batch, frac)(labels, np.random.default_rng(0))
    want_pos = min(int(batch * frac), npos)
    assert len(pos) == want_pos and len(neg) == min(batch - want_pos, nneg)
    assert len(set(pos)) == len(pos) and len(set(neg)) == len(neg)


def test_bad_input(rng):
    s = rpn_sampler()
    with pytest.raises(ValueError, match="rng"):
        s(np.zeros(5), 0)
    with pytest.raises(ValueError, match="shape"):
        s(np.zeros((5, 2)), rng)
    with pytest.raises(ValueError, match="positive_fraction"):
        BalancedPositiveNegativeSampler(256, 1.5)
    empty = s(np.zeros(0, np.int64), rng)
    assert empty[0].shape == (0,) and empty[0].dtype == np.int64
