"""Golden values from torch (tests/fixtures/autodiff.npz, made by make_autodiff.py); no torch needed."""

from pathlib import Path

import numpy as np
import pytest

from mrcnn_np.autodiff import F, Tensor

GOLD = np.load(Path(__file__).parents[1] / "fixtures" / "autodiff.npz")


def _run(fn, names, prefix):
    ts = [Tensor(GOLD[f"{prefix}_{n}"], requires_grad=True) for n in names]
    out = fn(*ts)
    out.backward(GOLD[f"{prefix}_dout"])
    return out, ts


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_conv2d_golden():
    out, (x, w, b) = _run(lambda x, w, b: F.conv2d(x, w, b, 2, 1, 1, 2), "xwb", "conv")
    _close(out.data, GOLD["conv_out"])
    for t, n in ((x, "dx"), (w, "dw"), (b, "db")):
        _close(t.grad, GOLD[f"conv_{n}"])


@pytest.mark.parametrize("name,s,p", [("deconv2", 2, 0), ("deconv4", 2, 1)])
def test_conv_transpose2d_golden(name, s, p):
    out, (x, w, b) = _run(lambda x, w, b: F.conv_transpose2d(x, w, b, s, p), "xwb", name)
    _close(out.data, GOLD[f"{name}_out"])
    for t, n in ((x, "dx"), (w, "dw"), (b, "db")):
        _close(t.grad, GOLD[f"{name}_{n}"])


@pytest.mark.parametrize("impl", ["numpy", "numba"])
def test_group_norm_golden(impl):
    out, (x, g, b) = _run(lambda x, g, b: F.group_norm(x, 3, g, b, impl=impl), "xgb", "gn")
    _close(out.data, GOLD["gn_out"])
    for t, n in ((x, "dx"), (g, "dg"), (b, "db")):
        _close(t.grad, GOLD[f"gn_{n}"])


def test_pool_upsample_and_losses_golden():
    x = Tensor(GOLD["pool_x"])
    np.testing.assert_array_equal(F.max_pool2d(x, 3, 2, 1).data, GOLD["pool_out"])
    np.testing.assert_array_equal(F.upsample_nearest(x, size=(13, 11)).data, GOLD["up_out"])
    z = Tensor(GOLD["ce_z"], requires_grad=True)
    loss = F.cross_entropy(z, GOLD["ce_y"], weight=GOLD["ce_w"])
    loss.backward()
    _close(loss.data, GOLD["ce_loss"])
    _close(z.grad, GOLD["ce_dz"])
    a = Tensor(GOLD["sl1_a"], requires_grad=True)
    loss = F.smooth_l1_loss(a, GOLD["sl1_t"], beta=1 / 9)
    loss.backward()
    _close(loss.data, GOLD["sl1_loss"])
    _close(a.grad, GOLD["sl1_da"])
    a = Tensor(GOLD["sl1_a"] * 10, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(a, GOLD["bce_t"])
    loss.backward()
    _close(loss.data, GOLD["bce_loss"])
    _close(a.grad, GOLD["bce_da"])
