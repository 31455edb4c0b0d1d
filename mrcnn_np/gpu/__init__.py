"""GPU kernels: the CUDA C sources in kernels/*.cu, loaded with CuPy, or run on the CPU.

Each op of :mod:`mrcnn_np.ops` / :mod:`mrcnn_np.autodiff` that is heavy on a GPU has a
kernel in ``kernels/`` (one thread per output element) and a thin wrapper here with the
same signature as its NumPy/numba twin (minus ``impl``):

    roi_align, roi_align_backward, roi_pool, roi_pool_backward    (roi.py)
    im2col, col2im, conv2d_forward, conv2d_backward               (conv.py: + cuBLAS GEMM)
    nms                                                           (nms.py: bit mask + host sweep)

Where the code runs is decided by the arrays: CuPy arrays run on the GPU (kernels compiled
by ``cupy.RawModule``); NumPy arrays run the *same kernel source* on the CPU through the
host shim (``kernels/host_shim.h`` + :mod:`mrcnn_np.gpu.shim`, g++ and ctypes) -- slow,
but it is how every kernel is executed and checked on machines without a GPU.

These are the ops' CUDA twins: each op's implementation table lists its kernel under
``impl="cupy"`` (see :mod:`mrcnn_np.ops.dispatch`), so ``impl="cupy"`` on NumPy arrays runs
the shim. This package is the bottom layer: it imports nothing from ``ops`` or
``autodiff`` (they import it), which tests/test_layering.py checks.

CuPy is optional: this package imports without it (NumPy input needs only a C++
compiler); :func:`cupy_or_raise` raises an ImportError naming what to install.
Modules: table.py (each kernel's argument types, read by both launchers), launch.py
(argument casting, grid sizes, CuPy launch), shim.py (CPU compile + launch).
"""

from .conv import col2im, conv2d_backward, conv2d_forward, im2col
from .launch import cupy_or_raise
from .nms import nms
from .roi import roi_align, roi_align_backward, roi_pool, roi_pool_backward
from .table import KERNELS, kernel_dir


def gpu_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device."""
    try:
        import cupy  # noqa: PLC0415
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, or CUDA driver/runtime errors
        return False


__all__ = ["roi_align", "roi_align_backward", "roi_pool", "roi_pool_backward", "im2col",
           "col2im", "conv2d_forward", "conv2d_backward", "nms", "gpu_available", "cupy_or_raise",
           "KERNELS", "kernel_dir"]
