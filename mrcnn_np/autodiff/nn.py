"""Modules and Parameters: named containers of weights, mirroring ``torch.nn``.

Concept: a :class:`Module` owns Parameters (trainable leaves), buffers (constant arrays
such as frozen batch-norm statistics) and sub-modules; attribute names compose into dotted
paths (``backbone.body.layer1.0.conv1.weight``) exactly as in PyTorch, so a torchvision
``state_dict`` maps onto ours by name (see ``detection/convert.py``).
``state_dict()`` / ``load_state_dict()`` use plain NumPy arrays (shape-checked).

Layers: Conv2d, ConvTranspose2d, Linear, GroupNorm, FrozenBatchNorm2d, ReLU, MaxPool2d,
Identity, Sequential, ModuleList. Default initialisation is PyTorch's; the detection
modules re-initialise with the papers' schemes from :mod:`.init`.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from . import init
from .conv import conv2d
from .conv_transpose import conv_transpose2d
from .im2col import pair
from .layers import linear, max_pool2d, relu
from .norm import frozen_batch_norm, group_norm
from .tensor import Tensor

__all__ = ["Parameter", "Module", "Conv2d", "ConvTranspose2d", "Linear", "GroupNorm",
           "FrozenBatchNorm2d", "ReLU", "MaxPool2d", "Identity", "Sequential", "ModuleList"]


class Parameter(Tensor):
    """A trainable leaf Tensor (requires_grad=True unless frozen)."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return f"Parameter(shape={tuple(self.shape)}, dtype={self.dtype}, requires_grad={self.requires_grad})"


class Module:
    """Base class: register Parameters/Modules by attribute assignment, buffers explicitly."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning {name!r}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._buffers.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._buffers.pop(name, None)
            self._modules[name] = value
        elif name in self._buffers:          # reassigning a buffer keeps it a buffer
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array) -> None:
        """A constant array saved in the state_dict but never trained."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Parameter) pairs, each Parameter once, in registration order."""
        seen = set()
        for mname, m in self.named_modules(prefix):
            for pname, p in m._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = ""):
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                yield (f"{mname}.{bname}" if mname else bname), b

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---------------------------------------------------------------- modes and grads
    def train(self, mode: bool = True):
        for _, m in self.named_modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag: bool = True):
        """Freeze (False) or unfreeze every parameter of this module."""
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def apply(self, fn):
        for _, m in self.named_modules():
            fn(m)
        return self

    # ---------------------------------------------------------------- state
    def state_dict(self) -> OrderedDict:
        """Dotted name -> NumPy array (parameters and buffers; arrays are not copied)."""
        out = OrderedDict()
        for mname, m in self.named_modules():
            pre = f"{mname}." if mname else ""
            for n, p in m._parameters.items():
                out[pre + n] = p.data
            for n, b in m._buffers.items():
                out[pre + n] = b
        return out

    def load_state_dict(self, state, strict: bool = True):
        """Copy arrays into the existing parameters/buffers (dtype kept, shapes checked).

        Returns (missing_keys, unexpected_keys); with strict=True any of them raises.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict: missing keys {missing[:10]}"
                             f"{'...' if len(missing) > 10 else ''}, unexpected keys {unexpected[:10]}"
                             f"{'...' if len(unexpected) > 10 else ''}")
        for k, target in own.items():
            if k not in state:
                continue
            src = np.asarray(state[k])
            if tuple(src.shape) != tuple(target.shape):
                raise ValueError(f"load_state_dict: {k} has shape {tuple(src.shape)} in the state dict "
                                 f"but {tuple(target.shape)} in the model")
            target[...] = src
        return missing, unexpected

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            lines.append(f"  ({name}): " + repr(m).replace("\n", "\n  "))
        return lines[0] + (")" if len(lines) == 1 else "\n" + "\n".join(lines[1:]) + "\n)")

    def extra_repr(self) -> str:
        return ""


def _param(shape, dtype):
    return Parameter(np.zeros(shape, dtype))


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels={in_channels} and out_channels={out_channels} must be "
                             f"divisible by groups={groups}")
        k = pair(kernel_size, "kernel_size")
        self.stride, self.padding = pair(stride, "stride"), pair(padding, "padding")
        self.dilation, self.groups = pair(dilation, "dilation"), groups
        self.weight = _param((out_channels, in_channels // groups) + k, dtype)
        self.bias = _param((out_channels,), dtype) if bias else None
        init.default_conv_init_(self.weight, self.bias, rng=rng)

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        O, Cg, kh, kw = self.weight.shape
        return (f"{Cg * self.groups}, {O}, kernel_size=({kh}, {kw}), stride={self.stride}, "
                f"padding={self.padding}, groups={self.groups}, bias={self.bias is not None}")


class ConvTranspose2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, dtype=np.float32, rng=None):
        super().__init__()
        k = pair(kernel_size, "kernel_size")
        self.stride, self.padding = pair(stride, "stride"), pair(padding, "padding")
        self.output_padding, self.dilation = pair(output_padding, "output_padding"), pair(dilation, "dilation")
        self.groups = groups
        self.weight = _param((in_channels, out_channels // groups) + k, dtype)
        self.bias = _param((out_channels,), dtype) if bias else None
        init.default_conv_init_(self.weight, self.bias, rng=rng)

    def forward(self, x):
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                self.output_padding, self.groups, self.dilation)


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        self.weight = _param((out_features, in_features), dtype)
        self.bias = _param((out_features,), dtype) if bias else None
        init.default_conv_init_(self.weight, self.bias, rng=rng)

    def forward(self, x):
        return linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"


class GroupNorm(Module):
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=np.float32):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"num_groups={num_groups} must divide num_channels={num_channels}")
        self.num_groups, self.eps = num_groups, eps
        self.weight = Parameter(np.ones(num_channels, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype)) if affine else None

    def forward(self, x):
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {len(self.weight.data) if self.weight is not None else '?'}, eps={self.eps}"


class FrozenBatchNorm2d(Module):
    """Batch norm with fixed statistics and affine parameters (all buffers, torchvision names)."""

    def __init__(self, num_features, eps=1e-5, dtype=np.float32):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", np.ones(num_features, dtype))
        self.register_buffer("bias", np.zeros(num_features, dtype))
        self.register_buffer("running_mean", np.zeros(num_features, dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype))

    def forward(self, x):
        return frozen_batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, self.eps)

    def extra_repr(self):
        return f"{len(self.weight)}, eps={self.eps}"


class ReLU(Module):
    def forward(self, x):
        return relu(x)


class Identity(Module):
    def forward(self, x):
        return x


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)


class ModuleList(Module):
    """Sub-modules named "0", "1", ... (torch naming)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, m):
        setattr(self, str(len(self._modules)), m)
        return self

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Apply sub-modules in order."""

    def __init__(self, *modules):
        super().__init__(modules)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x
