"""Matcher: thresholds, ties, low-quality promotion, the zero-IoU pathology, no-GT images."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mrcnn_np.detection.matcher import Matcher, roi_heads_matcher, rpn_matcher

Q = np.array([[0.9, 0.5, 0.2, 0.65, 0.0],
              [0.1, 0.6, 0.25, 0.65, 0.0]], np.float32)
IMPLS = ["reference", "numpy"]


@pytest.mark.parametrize("impl", IMPLS)
def test_verified_examples(impl):
    # column 3 ties between the GTs (0.65) -> first GT; it is GT 1's best -> promoted to 0
    np.testing.assert_array_equal(Matcher(0.7, 0.3, True)(Q, impl=impl), [0, -2, -1, 0, -1])
    np.testing.assert_array_equal(Matcher(0.5, 0.5, False)(Q, impl=impl), [0, 1, -1, 0, -1])
    np.testing.assert_array_equal(Matcher(0.7, 0.3, False)(Q, impl=impl), [0, -2, -1, -2, -1])


@pytest.mark.parametrize("impl", IMPLS)
def test_zero_iou_pathology(impl):
    # GT 0 overlaps nothing: its "best" is 0, so every column at IoU 0 to it is promoted
    got = Matcher(0.7, 0.3, True)(np.array([[0, 0, 0], [0.5, 0.8, 0]], np.float32), impl=impl)
    np.testing.assert_array_equal(got, [1, 1, 0])


@pytest.mark.parametrize("impl", IMPLS)
def test_thresholds_inclusive(impl):
    q = np.array([[0.7, 0.3, 0.2999, 0.6999]])
    np.testing.assert_array_equal(Matcher(0.7, 0.3)(q, impl=impl), [0, -2, -1, -2])


def test_no_ground_truth_is_background():
    out = rpn_matcher()(np.zeros((0, 7), np.float32))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, np.full(7, -1))
    assert rpn_matcher()(np.zeros((3, 0))).shape == (0,)


def test_presets_and_bad_input():
    assert (rpn_matcher().high_threshold, rpn_matcher().low_threshold) == (0.7, 0.3)
    assert rpn_matcher().allow_low_quality_matches and not roi_heads_matcher().allow_low_quality_matches
    with pytest.raises(ValueError, match="low_threshold"):
        Matcher(0.3, 0.7)
    with pytest.raises(ValueError, match="shape"):
        rpn_matcher()(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        rpn_matcher()(np.array([[0.5, np.nan]]))


@given(arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 12)),
              elements=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.65, 0.7, 0.9])),
       st.booleans())
def test_reference_equals_numpy(q, low_quality):
    m = Matcher(0.7, 0.3, low_quality)
    out = m(q, impl="numpy")
    np.testing.assert_array_equal(m(q, impl="reference"), out)
    # every GT's best-matching predictions are positive when low-quality matches are on
    if low_quality:
        assert (out[q.argmax(axis=1)] >= 0).all()
    assert out.min() >= -2 and out.max() < q.shape[0]


@pytest.mark.reference
def test_live_torchvision(rng):
    import torch
    from torchvision.models.detection._utils import Matcher as TvMatcher
    q = rng.choice([0.0, 0.2, 0.3, 0.5, 0.7, 0.8], size=(6, 40)).astype(np.float32)
    for args in [(0.7, 0.3, True), (0.5, 0.5, False)]:
        np.testing.assert_array_equal(Matcher(*args)(q), TvMatcher(*args)(torch.from_numpy(q)).numpy())
