"""Modules, state dicts, initialisation, SGD, the LR schedule, clipping and an overfit run."""

import numpy as np
import pytest

from mrcnn_np.autodiff import F, Tensor, init, nn, optim


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.gn1 = nn.GroupNorm(2, 8)
        self.layers = nn.Sequential(nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1))
        self.bn = nn.FrozenBatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 3)

    def forward(self, x):
        h = self.layers(self.gn1(self.conv1(x)))
        return self.fc(F.relu(self.bn(h)).flatten(1))


def test_named_parameters_and_state_dict_use_torch_names():
    init.manual_seed(0)
    m = Block()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["conv1.weight", "gn1.weight", "gn1.bias", "layers.1.weight", "layers.1.bias",
                     "fc.weight", "fc.bias"]
    sd = m.state_dict()
    assert "bn.running_var" in sd and "bn.weight" in sd and "bn.weight" not in names
    assert m.num_parameters() == 3 * 8 * 9 + 16 + 8 * 8 * 9 + 8 + 128 * 3 + 3


def test_state_dict_round_trip_and_errors():
    init.manual_seed(0)
    a = Block()
    init.manual_seed(1)
    b = Block()
    assert not np.allclose(a.fc.weight.data, b.fc.weight.data)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    np.testing.assert_array_equal(a(Tensor(x)).data, b(Tensor(x)).data)
    sd = a.state_dict()
    bad = dict(sd, **{"fc.weight": np.zeros((3, 5), np.float32)})
    with pytest.raises(ValueError, match=r"fc.weight has shape \(3, 5\).*\(3, 128\)"):
        b.load_state_dict(bad)
    with pytest.raises(ValueError, match="missing keys.*conv1.weight"):
        b.load_state_dict({k: v for k, v in sd.items() if k != "conv1.weight"})
    missing, unexpected = b.load_state_dict(dict(sd, extra=np.zeros(1)), strict=False)
    assert missing == [] and unexpected == ["extra"]


def test_train_eval_freeze_and_seeded_init():
    init.manual_seed(3)
    m = Block()
    m.eval()
    assert not m.training and not m.layers[1].training
    m.conv1.requires_grad_(False)
    assert [n for n, p in m.named_parameters() if not p.requires_grad] == ["conv1.weight"]
    init.manual_seed(3)
    assert np.array_equal(Block().conv1.weight.data, m.conv1.weight.data)


def test_initialisers_have_the_papers_statistics():
    rng = np.random.default_rng(0)
    w = np.zeros((256, 128, 3, 3), np.float32)
    init.kaiming_normal_(w, mode="fan_out", rng=rng)
    assert np.isclose(w.std(), np.sqrt(2 / (256 * 9)), rtol=0.02)
    init.kaiming_uniform_(w, a=1, rng=rng)
    assert np.isclose(np.abs(w).max(), np.sqrt(3 / (128 * 9)), rtol=0.01)
    init.normal_(w, std=0.01, rng=rng)
    assert np.isclose(w.std(), 0.01, rtol=0.02)
    assert init.calculate_fans((8, 4, 2, 2)) == (16, 32)


def test_sgd_momentum_weight_decay_by_hand():
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    g1, g2 = np.array([0.5, 0.5]), np.array([-1.0, 2.0])
    p.grad = g1.copy()
    opt.step()
    d1 = g1 + 0.01 * np.array([1.0, -2.0])
    x1 = np.array([1.0, -2.0]) - 0.1 * d1
    np.testing.assert_allclose(p.data, x1)
    p.grad = g2.copy()
    opt.step()
    buf = 0.9 * d1 + (g2 + 0.01 * x1)
    np.testing.assert_allclose(p.data, x1 - 0.1 * buf)
    # state dict round trip restores the momentum buffer
    q = nn.Parameter(np.zeros(2))
    opt2 = optim.SGD([q], lr=0.1, momentum=0.9)
    opt2.load_state_dict(opt.state_dict())
    np.testing.assert_allclose(opt2.momentum_buffers[0], buf)
    with pytest.raises(ValueError, match="does not match parameter 0"):
        opt2.load_state_dict(dict(opt.state_dict(), **{"momentum_buffer.0": np.zeros(3)}))


def test_warmup_multistep_schedule():
    s = optim.WarmupMultiStepLR(0.02, warmup_iters=100, warmup_factor=0.001, milestones=[300, 400], gamma=0.1)
    assert np.isclose(s(0), 0.02 * 0.001)
    assert np.isclose(s(50), 0.02 * (0.001 * 0.5 + 0.5))
    assert np.isclose(s(100), 0.02) and np.isclose(s(299), 0.02)
    assert np.isclose(s(300), 0.002) and np.isclose(s(400), 0.0002)
    p = nn.Parameter(np.zeros(1))
    opt = optim.SGD([{"params": [p], "lr_scale": 2.0}], lr=1.0)
    s.apply(opt, 300)
    assert np.isclose(opt.param_groups[0]["lr"], 0.004)
    with pytest.raises(ValueError, match="increasing"):
        optim.WarmupMultiStepLR(0.1, milestones=[5, 3])


def test_clip_grad_norm():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    total = optim.clip_grad_norm_([a, b], 1.0)
    assert np.isclose(total, 5.0)
    assert np.isclose(np.sqrt((a.grad**2).sum() + (b.grad**2).sum()), 1.0, rtol=1e-5)


def test_small_network_overfits_a_tiny_batch():
    """conv-GN-relu-conv + linear learns 8 random labels: catches sign/accumulation bugs."""
    init.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    m = Block()
    opt = optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(60):
        loss = F.cross_entropy(m(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.8 and losses[-1] < 0.02, (losses[0], losses[-1])


@pytest.mark.reference
def test_sgd_matches_torch_over_several_steps():
    import torch
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(5)]
    for kw in (dict(momentum=0.9, weight_decay=1e-4), dict(momentum=0.9, nesterov=True),
               dict(momentum=0.5, dampening=0.1), dict()):
        p = nn.Parameter(w0.copy())
        tp = torch.tensor(w0.copy(), requires_grad=True)
        ours, theirs = optim.SGD([p], lr=0.1, **kw), torch.optim.SGD([tp], lr=0.1, **kw)
        for g in grads:
            p.grad = g.copy()
            tp.grad = torch.tensor(g)
            ours.step()
            theirs.step()
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-12)
