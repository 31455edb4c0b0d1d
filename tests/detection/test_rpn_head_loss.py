"""RPN head, output flattening and loss: gradient-checked, and equal to torchvision (live)."""

import numpy as np
import pytest

from mrcnn_np.autodiff import Tensor, gradcheck
from mrcnn_np.detection.rpn import RPNHead, flatten_rpn_outputs, rpn_loss, sample_anchors
from mrcnn_np.detection.sampler import BalancedPositiveNegativeSampler


def _inputs(rng, n=2, a=3, sizes=((4, 5), (2, 3)), c=6):
    feats = [rng.normal(size=(n, c) + s) for s in sizes]
    return feats


def test_flatten_order_matches_anchor_order():
    # objectness value encodes (level, y, x, a) so the flattened order can be read back
    n, a = 1, 3
    o0 = np.zeros((n, a, 2, 2)); o1 = np.zeros((n, a, 1, 2))
    for y in range(2):
        for x in range(2):
            o0[0, :, y, x] = [100 * y + 10 * x + k for k in range(a)]
    for x in range(2):
        o1[0, :, 0, x] = [1000 + 10 * x + k for k in range(a)]
    d0 = np.arange(n * 4 * a * 4, dtype=float).reshape(n, 4 * a, 2, 2)
    d1 = np.zeros((n, 4 * a, 1, 2))
    obj, dts = flatten_rpn_outputs([Tensor(o0), Tensor(o1)], [Tensor(d0), Tensor(d1)])
    np.testing.assert_array_equal(obj.data[0], [0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112,
                                                1000, 1001, 1002, 1010, 1011, 1012])
    # anchor a at (y, x) takes channels 4a..4a+3
    np.testing.assert_array_equal(dts.data[0, 1 * 3 + 2], d0[0, 8:12, 0, 1])


def test_rpn_loss_gradcheck():
    rng = np.random.default_rng(0)
    n, a = 2, 7
    labels = [rng.choice([-1, 0, 1], size=a).astype(np.float32) for _ in range(n)]
    targets = [rng.normal(size=(a, 4)) for _ in range(n)]
    pos, neg = sample_anchors(labels, BalancedPositiveNegativeSampler(6, 0.5), np.random.default_rng(1))
    assert len(pos) + len(neg) > 0

    def f(obj, dts):
        cls, box = rpn_loss(obj, dts, labels, targets, pos, neg)
        return cls + box * 2.0
    gradcheck(f, [rng.normal(size=(n, a)), rng.normal(size=(n, a, 4)) * 0.2])


def test_rpn_loss_by_hand():
    # one positive with delta error 1 (> beta: 1 - beta/2), one negative with logit 0
    obj = Tensor(np.array([[0.0, 0.0]], np.float32))
    dts = Tensor(np.array([[[1.0, 0, 0, 0], [0, 0, 0, 0]]], np.float32))
    labels = np.array([1.0, 0.0], np.float32)
    targets = np.zeros((2, 4), np.float32)
    cls, box = rpn_loss(obj, dts, labels, targets, np.array([0]), np.array([1]))
    np.testing.assert_allclose(cls.data, np.log(2), rtol=1e-6)
    np.testing.assert_allclose(box.data, (1 - 0.5 / 9) / 2, rtol=1e-6)


@pytest.mark.reference
def test_head_and_loss_equal_torchvision():
    import torch
    from torchvision.models.detection import _utils as det_utils
    from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead as TvHead, concat_box_prediction_layers

    rng = np.random.default_rng(0)
    c, a = 6, 3
    torch.manual_seed(0)
    tv_head = TvHead(c, a)
    ours = RPNHead(c, a)
    ours.load_state_dict({k: v.numpy() for k, v in tv_head.state_dict().items()})
    feats = [f.astype(np.float32) for f in _inputs(rng, c=c)]
    o_t, d_t = tv_head([torch.from_numpy(f) for f in feats])
    obj_t, dts_t = concat_box_prediction_layers(o_t, d_t)
    obj, dts = flatten_rpn_outputs(*ours([Tensor(f) for f in feats]))
    np.testing.assert_allclose(obj.data.reshape(-1), obj_t.detach().numpy().reshape(-1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dts.data.reshape(-1, 4), dts_t.detach().numpy(), rtol=1e-4, atol=1e-6)

    n, total = obj.shape
    labels = [rng.choice([-1, 0, 1], p=[0.2, 0.6, 0.2], size=total).astype(np.float32) for _ in range(n)]
    targets = [rng.normal(size=(total, 4)).astype(np.float32) for _ in range(n)]
    pos, neg = sample_anchors(labels, BalancedPositiveNegativeSampler(16, 0.5), np.random.default_rng(3))

    class Fixed:   # torchvision's sampler replaced by our choice, as per-image masks
        def __call__(self, labels_t):
            pm, nm = [], []
            for i, lab in enumerate(labels_t):
                m_p = torch.zeros(len(lab), dtype=torch.uint8)
                m_n = torch.zeros(len(lab), dtype=torch.uint8)
                m_p[torch.from_numpy(pos[(pos >= i * total) & (pos < (i + 1) * total)] - i * total)] = 1
                m_n[torch.from_numpy(neg[(neg >= i * total) & (neg < (i + 1) * total)] - i * total)] = 1
                pm.append(m_p); nm.append(m_n)
            return pm, nm

    rpn = RegionProposalNetwork(None, tv_head, 0.7, 0.3, 16, 0.5, dict(training=10, testing=10),
                                dict(training=10, testing=10), 0.7)
    rpn.fg_bg_sampler = Fixed()
    cls_t, box_t = rpn.compute_loss(obj_t, dts_t, [torch.from_numpy(l) for l in labels],
                                    [torch.from_numpy(t) for t in targets])
    cls, box = rpn_loss(obj, dts, labels, targets, pos, neg)
    np.testing.assert_allclose(cls.data, cls_t.item(), rtol=1e-5)
    np.testing.assert_allclose(box.data, box_t.item(), rtol=1e-5)
    # gradients with respect to the head's weights agree too
    (cls + box).backward()
    (cls_t + box_t).backward()
    for name, p in ours.named_parameters():
        tp = dict(tv_head.named_parameters())[name]
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-3, atol=1e-6, err_msg=name)
    assert det_utils is not None
