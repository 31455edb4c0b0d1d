"""Data-parallel training (engine/parallel.py): shards, gradient averaging against an in-process
computation, determinism, exact resume, refusing another worker count, and helper errors."""

import numpy as np
import pytest

from mrcnn_np.detection.mask_rcnn import LOSS_NAMES, MaskRCNN
from mrcnn_np.engine.data import BatchLoader
from mrcnn_np.engine.parallel import ShardWorkers, balanced_order, combine, losses_backward, shard_rng, shard_sizes
from mrcnn_np.engine.train import COLUMNS, TrainConfig, read_losses, train

from .conftest import TINY

SAME = [c for c in COLUMNS if c != "sec_per_iter"]


def _cfg(tmp_path, name, **kw):
    base = dict(iterations=4, batch_size=4, lr=0.01, warmup_iters=1, milestones=(0.5,), checkpoint_every=2,
                log_every=0, out_dir=str(tmp_path / name), clip=10.0)
    return TrainConfig(**dict(base, **kw))


@pytest.mark.parametrize("batch, workers, sizes", [(4, 1, [4]), (4, 2, [2, 2]), (5, 2, [3, 2]), (3, 3, [1, 1, 1])])
def test_shard_sizes(batch, workers, sizes):
    assert shard_sizes(batch, workers) == sizes


@pytest.mark.parametrize("counts, sizes, order", [
    ([8, 2, 7, 3], [2, 2], [0, 1, 2, 3]),      # loads 10 / 10 (8 + 2, 7 + 3)
    ([1, 1, 9, 1], [2, 2], [0, 1, 2, 3]),      # 9 + 1 against 1 + 1: the main process takes 1 + 1
    ([5, 5, 5], [2, 1], [0, 2, 1]),
    ([0, 4, 0, 4, 2], [2, 2, 1], [1, 0, 3, 2, 4]),
    ([3, 2], [2], [0, 1]),
])
def test_balanced_order(counts, sizes, order):
    got = balanced_order(counts, sizes)
    assert got == order and sorted(got) == list(range(len(counts)))


@pytest.mark.parametrize("batch, workers", [(2, 3), (4, 0)])
def test_shard_sizes_rejects_impossible_splits(batch, workers):
    with pytest.raises(ValueError, match="workers must be between 1 and the batch size"):
        shard_sizes(batch, workers)


def test_helper_gradients_equal_an_in_process_computation(train_set):
    """A helper's gradient of its shard, from parameters published at this step, is the gradient the
    same model computes in this process with the same sampling generator; ``combine`` averages by
    shard size."""
    model = MaskRCNN(TINY, seed=0)
    model.train()
    params = list(model.parameters())
    rng = np.random.default_rng(5)
    for p in params:  # parameters the helper's own replica (seed 0 too) cannot know
        p.data += np.float32(0.01) * rng.standard_normal(p.data.shape).astype(np.float32)
    images, targets, _ = BatchLoader(train_set, 3, np.random.default_rng(0), 0.5).next_batch()
    names = [k for k in LOSS_NAMES]
    with ShardWorkers(TINY, params, seed=0, workers=2, names=names) as pool:
        pool.submit(7, [(images[1:], targets[1:])])
        main_vals, main_counts, main_total = losses_backward(model(images[:1], targets[:1]), names)
        main_grads = [p.grad.copy() for p in params]
        helpers = pool.collect()
        (h_vals, h_counts, h_total, h_flat), = helpers
        h_flat = h_flat.copy()
        values, counts, total = combine(params, main_vals, main_counts, main_total, helpers, [1, 2])
    combined = [p.grad.copy() for p in params]
    # the reference: shard 1 in this process, sampling with the helper's generator
    for p in params:
        p.grad = None
    model.sampling_rng = shard_rng(0, 7, 1)
    ref_vals, ref_counts, ref_total = losses_backward(model(images[1:], targets[1:]), names)
    ref_flat = np.concatenate([p.grad.reshape(-1) for p in params])
    assert h_vals == pytest.approx(ref_vals, rel=1e-6) and h_counts == ref_counts
    np.testing.assert_allclose(h_flat, ref_flat, rtol=1e-5, atol=1e-7)
    at = 0
    for p, g0, g in zip(params, main_grads, combined):
        n = p.data.size
        np.testing.assert_allclose(g, (g0 + 2 * ref_flat[at:at + n].reshape(p.data.shape)) / 3,
                                   rtol=1e-5, atol=1e-7)
        at += n
    assert total == pytest.approx((main_total + 2 * ref_total) / 3, rel=1e-6)
    assert counts == (main_counts[0] + ref_counts[0], main_counts[1] + ref_counts[1])
    assert values["loss_mask"] == pytest.approx((main_vals["loss_mask"] + 2 * ref_vals["loss_mask"]) / 3)


@pytest.fixture(scope="module")
def straight2(train_set, tmp_path_factory):
    """An uninterrupted 4-iteration run with two workers."""
    res = train(TINY, _cfg(tmp_path_factory.mktemp("p"), "a"), train_set, progress=False, log=lambda s: None,
                workers=2)
    return res, read_losses(res.out_dir)


def test_two_workers_train_deterministically(straight2, train_set, tmp_path):
    res, log = straight2
    assert res.completed and np.isfinite(log["total"]).all()
    again = read_losses(train(TINY, _cfg(tmp_path, "b"), train_set, progress=False, log=lambda s: None,
                              workers=2).out_dir)
    for c in SAME:
        np.testing.assert_array_equal(again[c], log[c], err_msg=c)
    one = read_losses(train(TINY, _cfg(tmp_path, "c"), train_set, progress=False, log=lambda s: None).out_dir)
    assert not np.array_equal(one["total"], log["total"])  # other RoI samples: another run


def test_two_workers_resume_exactly_and_only_with_two(straight2, train_set, tmp_path):
    _, log = straight2
    cfg = _cfg(tmp_path, "killed")
    first = train(TINY, cfg, train_set, stop_at=3, progress=False, log=lambda s: None, workers=2)
    assert not first.completed
    with pytest.raises(ValueError, match="trained with workers=2"):
        train(TINY, cfg, train_set, resume=True, progress=False, log=lambda s: None)
    second = train(TINY, cfg, train_set, resume=True, progress=False, log=lambda s: None, workers=2)
    resumed = read_losses(second.out_dir)
    for c in SAME:
        np.testing.assert_allclose(resumed[c], log[c], rtol=1e-6, atol=1e-7, err_msg=c)


def test_a_helper_error_is_reported_with_its_message(train_set):
    model = MaskRCNN(TINY, seed=0)
    params = list(model.parameters())
    images, targets, _ = BatchLoader(train_set, 2, np.random.default_rng(0), 0.0).next_batch()
    with ShardWorkers(TINY, params, seed=0, workers=2, names=LOSS_NAMES) as pool:
        pool.submit(0, [([images[1][:2]], targets[1:])])   # a 2-channel image
        with pytest.raises(RuntimeError, match="helper 1: ValueError"):
            pool.collect()
        pool.submit(1, [(images[1:], targets[1:])])         # the helper goes on after an error
        assert len(pool.collect()) == 1


def test_more_workers_than_images_is_refused_before_anything_is_written(train_set, tmp_path):
    with pytest.raises(ValueError, match=r"workers must be between 1 and the batch size \(2\), got 3"):
        train(TINY, _cfg(tmp_path, "w3", batch_size=2), train_set, progress=False, log=lambda s: None, workers=3)
    assert not (tmp_path / "w3").exists()
