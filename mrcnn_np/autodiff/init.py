"""Weight initialisations used by the papers and by torchvision, with a seeded generator.

* ``kaiming_normal_(w, mode="fan_out")``: ``N(0, 2 / fan_out)`` — ResNet convolutions and
  the mask head (He et al. 2015; torchvision's ``kaiming_normal_(mode="fan_out",
  nonlinearity="relu")``); ``kaiming_conv_(conv)`` does it to a layer and zeroes its bias
  (the mask and keypoint heads).
* ``kaiming_uniform_(w, a=1)``: ``U(-b, b)``, ``b = sqrt(6 / ((1 + a^2) fan_in))`` —
  torchvision's FPN convolutions (a = 1 gives ``b = sqrt(3 / fan_in)``).
* ``normal_(w, std)``: RPN head (std 0.01), box predictor (0.01 / 0.001).
* ``default_conv_init_``: PyTorch's default for Conv/Linear layers
  (kaiming_uniform with a = sqrt(5), bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``).

fan_in = size(1) * kh * kw, fan_out = size(0) * kh * kw (torch's rule, also for the
transposed-convolution weight layout). Every function takes ``rng`` (a
``np.random.Generator``); without one it uses the module generator seeded by
:func:`manual_seed` (default seed 0), so a model built twice after the same seed is the
same model. Functions fill the array (or Parameter) in place and return it.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["manual_seed", "get_rng", "calculate_fans", "kaiming_normal_", "kaiming_uniform_",
           "normal_", "uniform_", "zeros_", "ones_", "constant_", "default_conv_init_", "kaiming_conv_"]

_RNG = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator used when no ``rng`` is passed; returns it."""
    global _RNG
    _RNG = np.random.default_rng(seed)
    return _RNG


def get_rng(rng=None) -> np.random.Generator:
    return _RNG if rng is None else rng


def _arr(w):
    return w.data if hasattr(w, "requires_grad") else w


def calculate_fans(shape):
    if len(shape) < 2:
        raise ValueError(f"fan in/out need a weight with >= 2 dimensions, got shape {tuple(shape)}")
    rf = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * rf, shape[0] * rf


def _fill(w, values):
    a = _arr(w)
    a[...] = values.astype(a.dtype, copy=False)
    return w


def kaiming_normal_(w, mode="fan_out", a=0.0, nonlinearity="relu", rng=None):
    fan_in, fan_out = calculate_fans(_arr(w).shape)
    fan = fan_out if mode == "fan_out" else fan_in
    gain = math.sqrt(2.0 / (1 + a * a)) if nonlinearity in ("relu", "leaky_relu") else 1.0
    return _fill(w, get_rng(rng).normal(0.0, gain / math.sqrt(fan), _arr(w).shape))


def kaiming_uniform_(w, a=1.0, mode="fan_in", rng=None):
    fan_in, fan_out = calculate_fans(_arr(w).shape)
    fan = fan_out if mode == "fan_out" else fan_in
    bound = math.sqrt(2.0 / (1 + a * a)) * math.sqrt(3.0 / fan)
    return _fill(w, get_rng(rng).uniform(-bound, bound, _arr(w).shape))


def normal_(w, std=0.01, mean=0.0, rng=None):
    return _fill(w, get_rng(rng).normal(mean, std, _arr(w).shape))


def uniform_(w, low, high, rng=None):
    return _fill(w, get_rng(rng).uniform(low, high, _arr(w).shape))


def constant_(w, value):
    _arr(w)[...] = value
    return w


def zeros_(w):
    return constant_(w, 0.0)


def ones_(w):
    return constant_(w, 1.0)


def default_conv_init_(weight, bias=None, rng=None):
    """PyTorch's default Conv/Linear initialisation."""
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        fan_in = calculate_fans(_arr(weight).shape)[0]
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound, rng=rng)
    return weight


def kaiming_conv_(layer, rng=None):
    """He normal (fan_out, ReLU gain) on ``layer.weight`` and zeros on its bias, if any; returns
    the layer. torchvision's init of the mask and keypoint heads' (transposed) convolutions."""
    kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu", rng=rng)
    if layer.bias is not None:
        zeros_(layer.bias)
    return layer
