"""Shared strategies and helpers for the RoI op tests (RoIAlign, RoIPool, RoIWarp)."""

import numpy as np
import pytest
from hypothesis import strategies as st

from mrcnn_np.gpu import shim

# The CUDA twin (impl="cupy") runs the kernels of kernels/*.cu through the host shim on the
# CPU, so it joins every equality test -- when a C++ compiler can build the shim.
HAS_COMPILER = shim.compiler() is not None
CUDA = pytest.param("cupy", marks=pytest.mark.skipif(
    not HAS_COMPILER, reason="no C++ compiler (g++ or $CXX): the host shim cannot build the kernels"))
ALL = ("reference", "numpy", "numba", CUDA)          # for @pytest.mark.parametrize
IMPLS_FAST = ("numpy", "numba") + (("cupy",) if HAS_COMPILER else ())  # twins looped over
ALL_RUNNABLE = ("reference",) + IMPLS_FAST


@st.composite
def roi_problem(draw, max_grid_cells=6):
    """A small random feature map and RoIs: inside, partly or fully outside, zero-size,
    tiny, huge and inverted, in image pixels for a random power-of-two stride."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    scale = draw(st.sampled_from([1.0, 0.5, 0.25]))
    k = draw(st.integers(0, 5))
    kinds = draw(st.lists(st.sampled_from(["in", "partial", "outside", "zero", "tiny", "huge",
                                           "inverted"]), min_size=k, max_size=k))
    rois = []
    for kind in kinds:
        W, H = w / scale, h / scale  # the map's extent in image pixels
        x1, y1 = rng.uniform(0, W), rng.uniform(0, H)
        bw, bh = rng.uniform(0.5, W), rng.uniform(0.5, H)
        if kind == "partial":
            x1, y1 = x1 - W / 2, y1 - H / 2
        elif kind == "outside":
            x1, y1 = (x1 + 2 * W, y1) if rng.random() < 0.5 else (x1 - 3 * W, y1 - 3 * H)
        elif kind == "zero":
            bw, bh = 0.0, 0.0
        elif kind == "tiny":
            bw, bh = rng.uniform(0, 0.3, 2)
        elif kind == "huge":
            x1, y1, bw, bh = -W, -H, 3 * W, 3 * H
        elif kind == "inverted":
            bw, bh = -bw, -bh
        rois.append([rng.integers(0, n), x1, y1, x1 + bw, y1 + bh])
    rois = np.array(rois, np.float64).reshape(-1, 5)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    ph, pw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return x, rois.astype(dtype), (ph, pw), scale, rng


def adaptive_grid_ok(rois, scale, output_size, aligned, limit=8):
    """True when adaptive sampling stays small enough for the pure-Python reference."""
    if len(rois) == 0:
        return True
    off = 0.5 if aligned else 0.0
    rw = (rois[:, 3] * scale - off) - (rois[:, 1] * scale - off)
    rh = (rois[:, 4] * scale - off) - (rois[:, 2] * scale - off)
    return bool(np.all(np.ceil(rh / output_size[0]) <= limit) and np.all(np.ceil(rw / output_size[1]) <= limit))


