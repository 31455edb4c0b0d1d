"""Tape mechanics and the elementwise/shape/layer ops: gradchecks and hand-checked values."""

import numpy as np
import pytest

from mrcnn_np.autodiff import F, Tensor, gradcheck, no_grad
from mrcnn_np.autodiff.layers import max_pool2d_forward, nearest_indices, upsample_nearest_forward

SEEDS = [0, 1, 2]


def test_node_used_twice_accumulates():
    # y = x * x + x: dy/dx = 2x + 1, x appears three times in the graph
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    y = (x * x + x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, [3.0, -3.0, 7.0])
    # a second backward pass accumulates into .grad, like torch
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, -1.0, 9.0])


def test_graph_is_freed_after_backward_unless_retained():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()                                         # allowed once more: retained
    np.testing.assert_allclose(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


@pytest.mark.parametrize("seed", SEEDS)
def test_composed_graph_with_shared_node(seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((3, 3, 3, 3))
    v = rng.standard_normal((4, 12))

    def f(x, w, v):
        h = F.relu(F.conv2d(x, w, padding=1))
        h2 = h + F.conv2d(h, w, padding=1)               # h used twice, w used twice
        z = F.max_pool2d(h2, 2).reshape(2, 12)
        return F.linear(z, v) * F.sigmoid(z.sum(axis=1, keepdims=True))
    gradcheck(f, [x, w, v])


def test_no_grad_and_detach_record_nothing():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf
    z = (x * 2.0).detach()
    assert not z.requires_grad
    with pytest.raises(ValueError, match="does not require grad"):
        y.sum().backward()
    with pytest.raises(ValueError, match="non-scalar"):
        (x * 2.0).backward()


def test_gradients_are_not_aliased_between_leaves():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    a.grad += 5                                          # must not change b.grad
    np.testing.assert_array_equal(b.grad, np.ones(3))


@pytest.mark.parametrize("seed", SEEDS)
def test_elementwise_and_reduction_gradchecks(seed):
    rng = np.random.default_rng(seed)
    a, b, c = rng.standard_normal((3, 4)), rng.standard_normal((1, 4)), rng.uniform(0.5, 2, (4,))
    gradcheck(lambda a, b, c: (a + b) * c - a / c, [a, b, c])     # broadcasting add/mul/div
    gradcheck(lambda a: F.exp(a).mean(axis=0) + F.log(a * a + 1.0).sum(axis=1).sum(), [a])
    gradcheck(lambda a, b: a.T @ (a + b), [a, b])
    gradcheck(lambda a: a.sum(axis=(0, 1), keepdims=True) * a, [a])


@pytest.mark.parametrize("seed", SEEDS)
def test_shape_ops_gradchecks(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 1, 4))
    gradcheck(lambda a, b: F.concat([a, b, a], axis=1), [a, b])
    gradcheck(lambda a: a.transpose(2, 0, 1).reshape(4, 6).flatten(0), [a])
    gradcheck(lambda a, b: F.stack([a[:, 0], b[:, 0]], axis=1), [a, b])
    # gathers with repeated rows (sampled RoIs) and per-row channels (per-class masks)
    gradcheck(lambda a: a[np.array([1, 0, 1])], [a])
    gradcheck(lambda a: a[np.array([0, 1, 1]), np.array([2, 0, 0])], [a])
    gradcheck(lambda a: a[:, 1:3, ::2], [a])
    gradcheck(lambda a: a[np.array([True, False])], [a])        # boolean row mask (positives)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_relu_gradchecks(seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    gradcheck(lambda x, w, b: F.relu(F.linear(x, w, b)), [x, w, b])
    gradcheck(lambda x, w: F.linear(x, w), [x, w])


def _max_pool_loops(x, k, s, p):
    N, C, H, W = x.shape
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    out = np.full((N, C, Ho, Wo), -np.inf)
    for oh in range(Ho):
        for ow in range(Wo):
            for i in range(k):
                for j in range(k):
                    ih, iw = oh * s - p + i, ow * s - p + j
                    if 0 <= ih < H and 0 <= iw < W:
                        out[:, :, oh, ow] = np.maximum(out[:, :, oh, ow], x[:, :, ih, iw])
    return out


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ksp", [(2, 2, 0), (3, 2, 1), (1, 2, 0), (3, 1, 1)])
def test_max_pool2d_forward_and_gradcheck(seed, ksp):
    k, s, p = ksp
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, 7, 6))
    out, _ = max_pool2d_forward(x, k, s, p)
    np.testing.assert_array_equal(out, _max_pool_loops(x, k, s, p))
    gradcheck(lambda x: F.max_pool2d(x, k, s, p), [x])


def test_max_pool_p6_is_subsampling():
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    out, _ = max_pool2d_forward(x, 1, 2, 0)
    np.testing.assert_array_equal(out[0, 0], x[0, 0, ::2, ::2])
    with pytest.raises(ValueError, match="half the kernel"):
        max_pool2d_forward(x, 2, 2, 2)


def test_nearest_index_rule():
    # torch legacy nearest: floor(dst * in / out), clamped
    np.testing.assert_array_equal(nearest_indices(3, 5), [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(nearest_indices(4, 8), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(nearest_indices(5, 3), [0, 1, 3])
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    out, _ = upsample_nearest_forward(x, scale_factor=2)
    assert out.shape == (1, 1, 4, 6)
    np.testing.assert_array_equal(out[0, 0, 1], [0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("size", [(6, 8), (5, 7), (3, 2), (4, 4)])
def test_upsample_nearest_gradcheck(seed, size):
    x = np.random.default_rng(seed).standard_normal((2, 2, 3, 4))
    gradcheck(lambda x: F.upsample_nearest(x, size=size), [x])


@pytest.mark.reference
def test_pool_and_upsample_match_torch():
    import torch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 13, 17)).astype(np.float32)
    tx = torch.tensor(x)
    ours, _ = max_pool2d_forward(x, 3, 2, 1)
    np.testing.assert_array_equal(ours, torch.nn.functional.max_pool2d(tx, 3, 2, 1).numpy())
    for size in [(26, 34), (25, 35), (40, 41), (7, 9)]:
        ours, _ = upsample_nearest_forward(x, size=size)
        np.testing.assert_array_equal(ours, torch.nn.functional.interpolate(tx, size=size, mode="nearest").numpy())
    ours, _ = upsample_nearest_forward(x, scale_factor=2)
    np.testing.assert_array_equal(ours, torch.nn.functional.interpolate(tx, scale_factor=2, mode="nearest").numpy())
