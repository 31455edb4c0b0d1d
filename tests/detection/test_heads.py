"""Box head and mask head modules and losses: gradient checks, hand cases, and equality
with torchvision's modules and loss functions (live, marked `reference`)."""

import numpy as np
import pytest

from mrcnn_np.autodiff import Tensor, gradcheck, no_grad
from mrcnn_np.autodiff import nn
from mrcnn_np.detection.box_head import ConvFCHead, FastRCNNPredictor, TwoMLPHead, fastrcnn_loss
from mrcnn_np.detection.mask_head import (MaskRCNNHeads, MaskRCNNPredictor, MLPMaskHead, mask_loss,
                                          mask_probabilities)


def test_fastrcnn_loss_gradcheck():
    rng = np.random.default_rng(0)
    s, k = 6, 3
    labels = np.array([0, 1, 2, 0, 2, 1])
    targets = rng.normal(size=(s, 4))
    gradcheck(lambda c, b: sum(fastrcnn_loss(c, b, labels, targets)),
              [rng.normal(size=(s, k)), rng.normal(size=(s, 4 * k)) * 0.3])


@pytest.mark.parametrize("kind,k", [("sigmoid", 3), ("sigmoid", 1), ("softmax", 3)])
def test_mask_loss_gradcheck(kind, k):
    rng = np.random.default_rng(1)
    labels = np.array([1, 2, 1])
    targets = rng.uniform(size=(3, 4, 4))
    gradcheck(lambda x: mask_loss(x, labels, targets, kind=kind), [rng.normal(size=(3, k, 4, 4))])


def test_mask_loss_uses_only_the_gt_channel():
    logits = np.zeros((1, 3, 2, 2), np.float32)
    logits[0, 2] = 50.0                  # confident "on" in the wrong class's channel
    targets = np.ones((1, 2, 2), np.float32)
    loss = mask_loss(Tensor(logits), np.array([1]), targets)
    np.testing.assert_allclose(loss.data, np.log(2), rtol=1e-6)   # channel 1 is 0 -> BCE = log 2


def test_softmax_mask_loss_classes_compete():
    # a pixel of class 1 whose class-2 logit is high is penalised by softmax, not by sigmoid
    logits = np.zeros((1, 3, 1, 1), np.float32)
    logits[0, 1] = 5.0
    logits[0, 2] = 5.0
    t = np.ones((1, 1, 1), np.float32)
    soft = mask_loss(Tensor(logits), np.array([1]), t, kind="softmax").data
    sig = mask_loss(Tensor(logits), np.array([1]), t, kind="sigmoid").data
    np.testing.assert_allclose(soft, -np.log(np.exp(5) / (1 + 2 * np.exp(5))), rtol=1e-5)
    np.testing.assert_allclose(sig, np.log1p(np.exp(-5)), rtol=1e-5)
    assert soft > 10 * sig


@pytest.mark.parametrize("kind", ["sigmoid", "softmax"])
def test_mask_loss_without_positives_is_zero_with_zero_gradient(kind):
    # no positive RoI: the loss is 0 and still connected to the logits, whose gradient is zero
    x = Tensor(np.ones((0, 3, 4, 4), np.float32), requires_grad=True)
    loss = mask_loss(x, np.zeros(0, np.int64), np.zeros((0, 4, 4), np.float32), kind=kind)
    loss.backward()
    assert float(loss.data) == 0.0
    assert x.grad is not None and x.grad.shape == x.shape and not x.grad.any()


def test_mask_probabilities():
    logits = np.random.default_rng(2).normal(size=(2, 3, 4, 4)).astype(np.float32)
    p = mask_probabilities(logits, np.array([2, 1]))
    np.testing.assert_allclose(p[0], 1 / (1 + np.exp(-logits[0, 2])), rtol=1e-6)
    q = mask_probabilities(logits, np.array([2, 1]), kind="softmax")
    e = np.exp(logits[1])
    np.testing.assert_allclose(q[1], e[1] / e.sum(0), rtol=1e-5)
    # foreground readout: any object class, 1 - p(background); for the sigmoid it changes nothing
    f = mask_probabilities(logits, np.array([2, 1]), kind="softmax", readout="foreground")
    np.testing.assert_allclose(f[1], (e[1] + e[2]) / e.sum(0), rtol=1e-5)
    assert (f >= q - 1e-6).all()
    np.testing.assert_array_equal(mask_probabilities(logits, np.array([2, 1]), readout="foreground"), p)
    with pytest.raises(ValueError, match="readout must be"):
        mask_probabilities(logits, np.array([2, 1]), readout="any")


def test_mlp_mask_head_shapes_and_gradient():
    rng = np.random.default_rng(3)
    head = MLPMaskHead(4 * 3 * 3, num_classes=3, resolution=6, hidden=(8, 8), rng=rng)
    x = Tensor(rng.normal(size=(5, 4, 3, 3)).astype(np.float32))
    out = head(x)
    assert out.shape == (5, 3, 6, 6)
    mask_loss(out, np.array([1, 2, 1, 1, 2]), rng.uniform(size=(5, 6, 6)).astype(np.float32)).backward()
    assert all(p.grad is not None for _, p in head.named_parameters())


def test_fcn_mask_head_doubles_resolution():
    rng = np.random.default_rng(4)
    heads = MaskRCNNHeads(4, layers=(6, 6), rng=rng)
    pred = MaskRCNNPredictor(6, 6, 3, rng=rng)
    with no_grad():
        out = pred(heads(Tensor(rng.normal(size=(2, 4, 7, 7)).astype(np.float32))))
    assert out.shape == (2, 3, 14, 14)


def test_conv_fc_box_head_shapes_and_gradient():
    rng = np.random.default_rng(5)
    head = ConvFCHead(4, 5, conv_layers=(8, 8), representation_size=16, norm=lambda c: nn.GroupNorm(4, c), rng=rng)
    x = Tensor(rng.normal(size=(3, 4, 5, 5)).astype(np.float32))
    out = head(x)
    assert out.shape == (3, 16) and (out.data >= 0).all()       # ends with ReLU
    out.sum().backward()
    assert all(p.grad is not None and np.abs(p.grad).sum() > 0 for _, p in head.named_parameters())


@pytest.mark.reference
def test_conv_fc_box_head_equals_torchvision():
    import torch
    from torch import nn as tnn
    from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead

    torch.manual_seed(0)
    tv = FastRCNNConvFCHead((8, 7, 7), [16, 16], [32], norm_layer=lambda c: tnn.GroupNorm(4, c))
    ours = ConvFCHead(8, 7, conv_layers=(16, 16), representation_size=32, norm=lambda c: nn.GroupNorm(4, c))
    # torchvision: Sequential(conv-norm-act, conv-norm-act, Flatten, Linear, ReLU)
    names = {"0.0.weight": "convs.0.0.weight", "0.1.weight": "convs.0.1.weight", "0.1.bias": "convs.0.1.bias",
             "1.0.weight": "convs.1.0.weight", "1.1.weight": "convs.1.1.weight", "1.1.bias": "convs.1.1.bias",
             "3.weight": "fc6.weight", "3.bias": "fc6.bias"}
    ours.load_state_dict({names[k]: v.detach().numpy() for k, v in tv.state_dict().items()})
    x = np.random.default_rng(1).normal(size=(6, 8, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(ours(Tensor(x)).data, tv(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def _load(ours, tv):
    ours.load_state_dict({k: v.detach().numpy() for k, v in tv.state_dict().items()})


@pytest.mark.reference
def test_box_head_and_loss_equal_torchvision():
    import torch
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor as TvPred, TwoMLPHead as TvHead
    from torchvision.models.detection.roi_heads import fastrcnn_loss as tv_loss

    torch.manual_seed(0)
    tv_head, tv_pred = TvHead(8 * 7 * 7, 32), TvPred(32, 4)
    head, pred = TwoMLPHead(8 * 7 * 7, 32), FastRCNNPredictor(32, 4)
    _load(head, tv_head)
    _load(pred, tv_pred)
    x = np.random.default_rng(0).normal(size=(10, 8, 7, 7)).astype(np.float32)
    c_t, b_t = tv_pred(tv_head(torch.from_numpy(x)))
    c, b = pred(head(Tensor(x)))
    np.testing.assert_allclose(c.data, c_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.data, b_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    labels = [np.array([0, 1, 3, 0, 2]), np.array([1, 0, 0, 3, 2])]
    targets = [np.random.default_rng(i).normal(size=(5, 4)).astype(np.float32) for i in range(2)]
    lc_t, lb_t = tv_loss(c_t, b_t, [torch.from_numpy(l) for l in labels], [torch.from_numpy(t) for t in targets])
    lc, lb = fastrcnn_loss(c, b, labels, targets)
    np.testing.assert_allclose([lc.data, lb.data], [lc_t.item(), lb_t.item()], rtol=1e-5)
    (lc + lb).backward()
    (lc_t + lb_t).backward()
    for mod, tv in ((head, tv_head), (pred, tv_pred)):
        tvp = dict(tv.named_parameters())
        for name, p in mod.named_parameters():
            np.testing.assert_allclose(p.grad, tvp[name].grad.numpy(), rtol=1e-3, atol=1e-6, err_msg=name)


@pytest.mark.reference
def test_mask_head_and_loss_equal_torchvision():
    import torch
    import torch.nn.functional as TF
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads as TvHeads, MaskRCNNPredictor as TvPred

    torch.manual_seed(1)
    tv_heads, tv_pred = TvHeads(8, (12, 12), 1), TvPred(12, 12, 4)
    heads, pred = MaskRCNNHeads(8, (12, 12)), MaskRCNNPredictor(12, 12, 4)
    _load(heads, tv_heads)
    _load(pred, tv_pred)
    x = np.random.default_rng(1).normal(size=(5, 8, 7, 7)).astype(np.float32)
    out_t = tv_pred(tv_heads(torch.from_numpy(x)))
    out = pred(heads(Tensor(x)))
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    labels = np.array([1, 3, 2, 2, 1])
    targets = np.random.default_rng(2).uniform(size=(5, 14, 14)).astype(np.float32)
    want = TF.binary_cross_entropy_with_logits(out_t[torch.arange(5), torch.from_numpy(labels)],
                                               torch.from_numpy(targets))
    got = mask_loss(out, labels, targets)
    np.testing.assert_allclose(got.data, want.item(), rtol=1e-5)
    got.backward()
    want.backward()
    tvp = dict(tv_pred.named_parameters())
    for name, p in pred.named_parameters():
        np.testing.assert_allclose(p.grad, tvp[name].grad.numpy(), rtol=1e-3, atol=1e-6, err_msg=name)
