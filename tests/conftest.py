"""Shared test configuration.

Markers (declared in pyproject.toml):
  reference  live comparison with torch/torchvision; `make test-reference` runs them.
             They skip with a reason when torch is not installed.
  gpu        needs a CUDA device and cupy; skipped otherwise.
Hypothesis: no per-example deadline (numba compiles on first call and the CI machine
is shared), and a bounded number of examples so the suite stays within CI's budget.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", deadline=None, max_examples=1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


def _has_gpu() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    has_torch = None
    has_gpu = None
    for item in items:
        # get_closest_marker, not `in item.keywords`: keywords also hold the names of the
        # test's directories and modules, so everything under tests/gpu/ would match "gpu".
        if item.get_closest_marker("reference"):
            if has_torch is None:
                has_torch = _has_torch()
            if not has_torch:
                item.add_marker(pytest.mark.skip(
                    reason="torch/torchvision not installed (run `make test-reference`)"))
        if item.get_closest_marker("gpu"):
            if has_gpu is None:
                has_gpu = _has_gpu()
            if not has_gpu:
                item.add_marker(pytest.mark.skip(reason="no CUDA GPU or cupy on this machine"))


@pytest.fixture
def rng():
    """A fresh, seeded generator per test (tests must not share random state)."""
    return np.random.default_rng(0)
