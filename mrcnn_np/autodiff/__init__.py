"""Autodiff-lite: a Tensor with a tape, forward/backward op pairs, modules and SGD.

    from mrcnn_np.autodiff import Tensor, no_grad, functional as F, nn, optim
    x = Tensor(images)                                  # (N, 3, H, W) float32 constant
    conv = nn.Conv2d(3, 16, 3, padding=1)
    loss = F.cross_entropy(F.linear(F.relu(conv(x)).mean(axis=(2, 3)), w), labels)
    loss.backward(); opt.step()

Modules: tensor (Tensor, tape, no_grad), im2col / conv / conv_transpose, layers, norm,
activations, losses, roi (RoI ops), functional (everything as ``F``), nn (Module,
layers), init, optim (SGD, WarmupMultiStepLR, clip_grad_norm_), gradcheck.
"""

from . import functional, init, nn, optim
from . import functional as F
from .gradcheck import gradcheck
from .nn import Module, Parameter
from .tensor import Tensor, as_tensor, describe_graph, enable_grad, is_grad_enabled, no_grad

__all__ = ["Tensor", "Parameter", "Module", "no_grad", "enable_grad", "is_grad_enabled",
           "as_tensor", "describe_graph", "functional", "F", "nn", "init", "optim", "gradcheck"]
