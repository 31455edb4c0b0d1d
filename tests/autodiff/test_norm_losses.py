"""GroupNorm, frozen BN, activations and losses: gradchecks, hand values, torch comparisons."""

import numpy as np
import pytest

from mrcnn_np.autodiff import F, Tensor, gradcheck
from mrcnn_np.autodiff.norm import group_norm_forward

SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("impl", ["numpy", "numba"])
def test_group_norm_gradcheck(seed, impl):
    rng = np.random.default_rng(seed)
    x, g, b = rng.standard_normal((2, 6, 3, 4)), rng.standard_normal(6), rng.standard_normal(6)
    gradcheck(lambda x, g, b: F.group_norm(x, 3, g, b, impl=impl), [x, g, b], atol=1e-5)


def test_group_norm_normalises_each_group():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 8, 5, 5)) * 3 + 7).astype(np.float32)
    for impl in ("numpy", "numba"):
        y, _ = group_norm_forward(x, 4, impl=impl)
        yg = y.reshape(2, 4, -1)
        np.testing.assert_allclose(yg.mean(-1), 0, atol=1e-5)
        np.testing.assert_allclose(yg.var(-1), 1, rtol=1e-3)
    with pytest.raises(ValueError, match="must divide"):
        group_norm_forward(x, 3)


def test_frozen_batch_norm_is_affine_and_only_x_gets_grad():
    rng = np.random.default_rng(0)
    w, b, m, v = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3), rng.uniform(1, 2, 3)
    x = rng.standard_normal((2, 3, 4, 4))
    gradcheck(lambda x: F.frozen_batch_norm(x, w, b, m, v), [x])
    y = F.frozen_batch_norm(Tensor(x), w, b, m, v, eps=0.0).data
    expect = (x - m[:, None, None]) / np.sqrt(v)[:, None, None] * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(y, expect, rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_activation_gradchecks(seed):
    x = np.random.default_rng(seed).standard_normal((3, 5)) * 3
    gradcheck(F.sigmoid, [x])
    gradcheck(lambda x: F.softmax(x, axis=1), [x])
    gradcheck(lambda x: F.log_softmax(x, axis=0), [x])


def test_sigmoid_and_softmax_are_stable():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    s = F.sigmoid(Tensor(x)).data
    assert np.isfinite(s).all() and s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    lp = F.log_softmax(Tensor(x[None]), axis=1).data
    assert np.isfinite(lp).all() and np.isclose(np.exp(lp).sum(), 1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_loss_gradchecks(seed):
    rng = np.random.default_rng(seed)
    logits, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    y[0] = -100
    w = rng.uniform(0.5, 2, 4)
    gradcheck(lambda z: F.cross_entropy(z, y), [logits])
    gradcheck(lambda z: F.cross_entropy(z, y, weight=w), [logits])
    gradcheck(lambda z: F.cross_entropy(z, y, reduction="none"), [logits])
    a, t = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    for beta in (1.0 / 9, 1.0, 0.0):
        gradcheck(lambda a, t: F.smooth_l1_loss(a, t, beta=beta) / 5.0, [a, t])
    gradcheck(lambda a, t: F.smooth_l1_loss(a, t, reduction="mean"), [a, t])
    soft = rng.uniform(0, 1, (5, 4))
    gradcheck(lambda a: F.binary_cross_entropy_with_logits(a, soft), [a])
    gradcheck(lambda a: F.binary_cross_entropy_with_logits(a, soft, reduction="sum"), [a])
    m = rng.standard_normal((2, 3, 4, 4))
    tgt = rng.integers(0, 16, (2, 3))
    valid = np.array([[True, False, True], [True, True, False]])
    gradcheck(lambda m: F.spatial_softmax_cross_entropy(m, tgt, valid), [m])


def test_loss_values_by_hand():
    # smooth L1 with beta 1/9: |x| < beta -> 0.5 x^2 / beta, else |x| - beta / 2
    x = np.array([0.05, -0.5, 2.0])
    got = F.smooth_l1_loss(Tensor(x), np.zeros(3), beta=1 / 9).item()
    assert np.isclose(got, 0.5 * 0.05**2 * 9 + (0.5 - 1 / 18) + (2.0 - 1 / 18))
    assert np.isclose(F.smooth_l1_loss(Tensor(x), np.zeros(3), beta=0.0).item(), 2.55)
    # cross-entropy of uniform logits over K classes = log K; ignored rows do not count
    ce = F.cross_entropy(Tensor(np.zeros((3, 5))), np.array([1, -100, 4])).item()
    assert np.isclose(ce, np.log(5))
    # weighted mean: sum w[y] l / sum w[y]
    z = np.array([[2.0, 0.0], [0.0, 1.0]])
    w = np.array([1.0, 3.0])
    l0, l1 = np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0))
    assert np.isclose(F.cross_entropy(Tensor(z), np.array([0, 1]), weight=w).item(), (l0 + 3 * l1) / 4)
    # BCE with logits stays finite for huge logits
    bce = F.binary_cross_entropy_with_logits(Tensor(np.array([1000.0, -1000.0])), np.array([0.0, 1.0]))
    assert np.isclose(bce.item(), 1000.0)
    # no valid keypoint: loss 0 with a zero gradient
    m = Tensor(np.ones((1, 2, 3, 3)), requires_grad=True)
    loss = F.spatial_softmax_cross_entropy(m, np.zeros((1, 2), int), np.zeros((1, 2), bool))
    loss.backward()
    assert loss.item() == 0.0 and not m.grad.any()


def test_loss_bad_inputs():
    with pytest.raises(ValueError, match=r"target must be an int array of shape \(3,\)"):
        F.cross_entropy(Tensor(np.zeros((3, 2))), np.zeros(4, int))
    with pytest.raises(ValueError, match="must lie in"):
        F.cross_entropy(Tensor(np.zeros((1, 2))), np.array([2]))
    with pytest.raises(ValueError, match="shapes differ"):
        F.smooth_l1_loss(Tensor(np.zeros(3)), np.zeros(4))


@pytest.mark.reference
def test_norms_and_losses_match_torch():
    import torch
    import torch.nn.functional as tF
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 5, 6)).astype(np.float32)
    g, b = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, g, b))
    ty = tF.group_norm(tx, 4, tg, tb, 1e-5)
    ty.backward(torch.tensor(dy))
    for impl in ("numpy", "numba"):
        X, G, B = Tensor(x, True), Tensor(g, True), Tensor(b, True)
        y = F.group_norm(X, 4, G, B, impl=impl)
        y.backward(dy)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-4, atol=1e-4)
        for ours, theirs in ((X, tx), (G, tg), (B, tb)):
            np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-3, atol=1e-3)
    z = rng.standard_normal((7, 5)).astype(np.float32)
    y = rng.integers(0, 5, 7)
    tz = torch.tensor(z, requires_grad=True)
    tl = tF.cross_entropy(tz, torch.tensor(y))
    tl.backward()
    Z = Tensor(z, True)
    loss = F.cross_entropy(Z, y)
    loss.backward()
    assert np.isclose(loss.item(), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(Z.grad, tz.grad.numpy(), rtol=1e-4, atol=1e-6)
    t = rng.uniform(0, 1, (7, 5)).astype(np.float32)
    assert np.isclose(F.binary_cross_entropy_with_logits(Tensor(z), t).item(),
                      tF.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(t)).item(), rtol=1e-5)
    tt = rng.standard_normal((7, 5)).astype(np.float32) * 0.2
    assert np.isclose(F.smooth_l1_loss(Tensor(z), tt, beta=1 / 9).item(),
                      tF.smooth_l1_loss(torch.tensor(z), torch.tensor(tt), beta=1 / 9, reduction="sum").item(),
                      rtol=1e-5)
