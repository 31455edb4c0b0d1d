"""Old name of :mod:`mrcnn_np.ops.dispatch`, kept only for modules still importing it.

Remove once detection/{anchors,matcher,sampler}.py and autodiff/norm.py import
``mrcnn_np.ops.dispatch`` (they belong to other branches; see tests/test_layering.py).
"""

from .dispatch import IMPLS, is_cupy, resolve_impl  # noqa: F401
