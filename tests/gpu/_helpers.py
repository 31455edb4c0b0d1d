"""Shared bits of the GPU-kernel tests: skip conditions and the twins to compare with."""

from __future__ import annotations

import importlib

import pytest

from mrcnn_np.gpu import shim

needs_compiler = pytest.mark.skipif(
    shim.compiler() is None,
    reason="no C++ compiler (g++ or $CXX): the host shim cannot build the kernels")


def twin(module: str, *names):
    """Functions ``names`` of the NumPy twin ``module``, or skip naming what is missing."""
    try:
        mod = importlib.import_module(module)
        return [getattr(mod, n) for n in names]
    except (ImportError, AttributeError) as e:
        pytest.skip(f"the NumPy twin {module} ({', '.join(names)}) is not available: {e}")
