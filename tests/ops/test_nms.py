"""nms and batched_nms: hand cases, properties against the O(N^2) reference, golden values."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mrcnn_np.ops import batched_nms, box_iou, nms

from ._roi_cases import CUDA, IMPLS_FAST

FIX = np.load(Path(__file__).parents[1] / "fixtures" / "geometry.npz", allow_pickle=False)
IMPLS = ["reference", "numpy", "numba", CUDA]
FOUR = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [2, 0, 12, 10], [50, 50, 60, 60]], np.float32)


@pytest.mark.parametrize("impl", IMPLS)
def test_nms_verified_examples(impl):
    np.testing.assert_array_equal(nms(FOUR, np.full(4, 0.5, np.float32), 0.5, impl=impl), [0, 3])
    keep = nms(FOUR, np.array([0.1, 0.9, 0.3, 0.95], np.float32), 0.5, impl=impl)
    np.testing.assert_array_equal(keep, [3, 1])
    assert keep.dtype == np.int64
    keep = batched_nms(FOUR, np.array([0.1, 0.9, 0.3, 0.95]), np.array([0, 1, 0, 1]), 0.5, impl=impl)
    np.testing.assert_array_equal(keep, [3, 1, 2])


@pytest.mark.parametrize("impl", IMPLS)
def test_nms_threshold_is_strict(impl):
    # IoU of these two boxes is exactly 0.5: kept at 0.5, suppressed at 0.49
    b = np.array([[0, 0, 3, 1], [1, 0, 4, 1]], np.float32)
    assert box_iou(b[:1], b[1:])[0, 0] == 0.5
    np.testing.assert_array_equal(nms(b, np.array([0.9, 0.8]), 0.5, impl=impl), [0, 1])
    np.testing.assert_array_equal(nms(b, np.array([0.9, 0.8]), 0.49, impl=impl), [0])


@pytest.mark.parametrize("impl", IMPLS)
def test_nms_degenerate_and_empty(impl):
    # two identical zero-area boxes: 0/0 = NaN in torchvision, which never suppresses
    b = np.array([[5, 5, 5, 5], [5, 5, 5, 5]], np.float32)
    np.testing.assert_array_equal(nms(b, np.array([0.2, 0.1]), 0.5, impl=impl), [0, 1])
    empty = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5, impl=impl)
    assert empty.shape == (0,) and empty.dtype == np.int64
    empty = batched_nms(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0, np.int64), 0.5, impl=impl)
    assert empty.shape == (0,) and empty.dtype == np.int64


def test_nms_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        nms(FOUR, np.array([0.1, np.nan, 0.3, 0.2]), 0.5)
    with pytest.raises(ValueError, match="same length"):
        nms(FOUR, np.ones(3), 0.5)
    with pytest.raises(ValueError, match="shape"):
        nms(FOUR[:, :3], np.ones(4), 0.5)
    with pytest.raises(ValueError, match="dtype"):
        nms(FOUR.astype(np.int32), np.ones(4), 0.5)
    with pytest.raises(ValueError, match="impl"):
        nms(FOUR, np.ones(4), 0.5, impl="cuda")
    with pytest.raises(ValueError, match="idxs"):
        batched_nms(FOUR, np.ones(4), np.ones(4, np.float32), 0.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(FOUR, np.ones(4), float("nan"))


def test_nms_integer_scores_order():
    # unsigned scores: the visiting order must not rely on negating them
    b = np.array([[0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21]], np.float32)
    np.testing.assert_array_equal(nms(b, np.array([1, 3, 3], np.uint8), 0.5), [1, 2, 0])


@st.composite
def box_sets(draw, max_n=40):
    n = draw(st.integers(0, max_n))
    # few distinct positions and sizes -> many overlaps, some exact duplicates and ties
    xy = draw(arrays(np.float32, (n, 2), elements=st.sampled_from([0.0, 2.0, 3.5, 5.0, 20.0])))
    wh = draw(arrays(np.float32, (n, 2), elements=st.sampled_from([0.0, 1.0, 4.0, 6.0, 10.0])))
    scores = draw(arrays(np.float32, (n,), elements=st.sampled_from([0.1, 0.5, 0.7, 0.9])))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32), scores


@given(box_sets(), st.sampled_from([0.0, 0.3, 0.5, 0.7]))
def test_nms_properties_all_impls(data, thr):
    boxes, scores = data
    ref = nms(boxes, scores, thr, impl="reference")
    for impl in IMPLS_FAST:
        np.testing.assert_array_equal(nms(boxes, scores, thr, impl=impl), ref)
    # no kept pair overlaps by more than the threshold
    iou = box_iou(boxes[ref], boxes[ref])
    np.fill_diagonal(iou, 0)
    assert not (iou > thr).any()
    # visiting order: decreasing score, ties by ascending index
    assert all((scores[a], -a) >= (scores[b], -b) for a, b in zip(ref[:-1], ref[1:]))
    # every suppressed box overlaps a kept, higher-ranked box by more than thr
    rank = {int(i): r for r, i in enumerate(np.lexsort((np.arange(len(scores)), -scores)))}
    kept = set(ref.tolist())
    for j in set(range(len(boxes))) - kept:
        assert any(rank[k] < rank[j] and box_iou(boxes[[k]], boxes[[j]])[0, 0] > thr for k in kept)


@given(box_sets(max_n=30), st.sampled_from([0.3, 0.5]), st.integers(1, 3))
def test_batched_nms_offset_equals_loop(data, thr, ncls):
    boxes, scores = data
    idxs = np.arange(len(boxes)) % ncls
    a = batched_nms(boxes, scores, idxs, thr, method="offset")
    b = batched_nms(boxes, scores, idxs, thr, method="loop")
    np.testing.assert_array_equal(a, b)
    for c in range(ncls):  # per class, exactly an ordinary NMS
        members = np.flatnonzero(idxs == c)
        per_class = members[nms(boxes[members], scores[members], thr)]
        np.testing.assert_array_equal(np.sort(a[idxs[a] == c]), np.sort(per_class))


# the pure-Python reference is O(N^2) Python, so it is checked at N = 300 only
@pytest.mark.parametrize("impl, n", [("reference", 300), ("numpy", 300), ("numba", 300),
                                     ("numpy", 1500), ("numba", 1500),
                                     pytest.param(*CUDA.values, 1500, marks=CUDA.marks)])
@pytest.mark.parametrize("thr", [0.5, 0.7])
def test_nms_golden(impl, n, thr):
    boxes, scores, idxs = FIX[f"nms{n}_boxes"], FIX[f"nms{n}_scores"], FIX[f"nms{n}_idxs"]
    np.testing.assert_array_equal(nms(boxes, scores, thr, impl=impl), FIX[f"nms{n}_keep_{thr}"])
    np.testing.assert_array_equal(batched_nms(boxes, scores, idxs, thr, impl=impl), FIX[f"nms{n}_batched_keep_{thr}"])


@pytest.mark.parametrize("impl", IMPLS)
def test_nms_golden_ties(impl):
    keep = nms(FIX["nms_ties_boxes"], FIX["nms_ties_scores"], 0.5, impl=impl)
    np.testing.assert_array_equal(keep, FIX["nms_ties_keep"])


@pytest.mark.reference
@pytest.mark.parametrize("thr", [0.3, 0.7])
def test_nms_live_torchvision(rng, thr):
    import torch
    import torchvision
    c = rng.uniform(0, 400, (60, 2))[rng.integers(0, 60, 2000)] + rng.normal(0, 6, (2000, 2))
    wh = rng.uniform(10, 60, (2000, 2))
    boxes = np.concatenate([c, c + wh], 1).astype(np.float32)
    scores = rng.random(2000).astype(np.float32)
    idxs = rng.integers(0, 5, 2000)
    tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
    np.testing.assert_array_equal(nms(boxes, scores, thr), torchvision.ops.nms(tb, ts, thr).numpy())
    theirs = torchvision.ops.batched_nms(tb, ts, torch.from_numpy(idxs), thr).numpy()
    ours = batched_nms(boxes, scores, idxs, thr)  # 8000 numbers > 4000: the per-class loop
    np.testing.assert_array_equal(np.sort(ours), np.sort(theirs))


@given(box_sets(max_n=25))
def test_nms_negative_threshold_uses_compaction_kernel(data):
    # thr < 0: even disjoint boxes "overlap more than thr" (the sweep kernel's pruning
    # would be wrong), so the numba path falls back to the compaction kernel
    boxes, scores = data
    ref = nms(boxes, scores, -0.1, impl="reference")
    np.testing.assert_array_equal(nms(boxes, scores, -0.1, impl="numba"), ref)
    np.testing.assert_array_equal(nms(boxes, scores, -0.1, impl="numpy"), ref)


def test_nms_steps_trace_matches_nms():
    from mrcnn_np.ops.nms import nms_steps
    steps = nms_steps(FOUR, np.array([0.1, 0.9, 0.3, 0.95], np.float32), 0.5)
    assert [k for k, _ in steps] == [3, 1]
    np.testing.assert_array_equal(steps[1][1], [2, 0])  # box 1 removes 2 (0.3) then 0 (0.1)
    boxes, scores = FIX["nms300_boxes"], FIX["nms300_scores"]
    np.testing.assert_array_equal([k for k, _ in nms_steps(boxes, scores, 0.5)], FIX["nms300_keep_0.5"])


@given(st.integers(0, 2**32 - 1), st.integers(1, 400), st.sampled_from([0.0, 0.2, 0.5, 0.8]))
def test_nms_numba_equals_numpy_on_random_scenes(seed, n, thr):
    # continuous coordinates, boxes of very different sizes (exercises the sweep's x-window
    # and the rebuilds of its x-sorted copy)
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-50, 300, (n, 2))
    wh = np.exp(rng.uniform(0, np.log(300), (n, 2)))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.random(n).astype(np.float32)
    np.testing.assert_array_equal(nms(boxes, scores, thr, impl="numba"), nms(boxes, scores, thr, impl="numpy"))
