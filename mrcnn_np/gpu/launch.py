"""Launch a kernel of the table on CuPy arrays (GPU) or NumPy arrays (CPU, host shim).

Both paths share :func:`cast_args`, which checks every argument against the kernel
table: arrays must have the kernel's dtype and be C-contiguous (a kernel indexes raw
memory), and Python numbers are cast explicitly to ``np.int64`` / ``np.int32`` /
``np.float32|64``. The explicit cast matters: CuPy passes a Python ``int`` as a 64-bit
value and a Python ``float`` as a double, so a kernel expecting ``int``/``float`` would
read garbage -- a classic RawKernel bug that the table makes impossible.
"""

from __future__ import annotations

import threading

import numpy as np

from .table import KERNELS, POINTER_TYPES, read_source

BLOCK = 256          # threads per block: a multiple of the warp size (32)
MAX_GRID = 65535     # enough blocks to fill any GPU; the grid-stride loops cover the rest
INT32_MAX = 2**31 - 1

_cupy_modules: dict = {}
_lock = threading.Lock()


def is_cupy(x) -> bool:
    """True for a CuPy array (checked by module name, so cupy need not be installed)."""
    return type(x).__module__.startswith("cupy")


def cupy_or_raise():
    """Import cupy, or raise an ImportError that says what to install."""
    try:
        import cupy  # noqa: PLC0415  (optional dependency)
    except ImportError as e:
        raise ImportError("mrcnn_np.gpu needs CuPy for GPU arrays: `pip install mrcnn_np[gpu]` "
                          "(cupy-cuda12x) on a machine with an NVIDIA GPU; NumPy input runs the "
                          "same kernels through the CPU host shim instead") from e
    return cupy


def array_module(*arrays):
    """cupy if any array is a CuPy array (then all must be), else numpy."""
    flags = [is_cupy(a) for a in arrays if a is not None]
    if any(flags):
        if not all(flags):
            raise ValueError("mix of CuPy and NumPy arrays; move them all to the same device")
        return cupy_or_raise()
    return np


def grid_size(total: int, block: int) -> int:
    """Blocks for ``total`` elements: one thread per element, capped at MAX_GRID."""
    return int(min(max(1, -(-total // block)), MAX_GRID))


def check_int32(name: str, value: int) -> None:
    if not 0 <= value <= INT32_MAX:
        raise ValueError(f"{name}={value} does not fit the kernels' int32 indices")


def cast_args(name: str, values: dict, dtype) -> list:
    """The kernel's arguments in table order, checked and cast.

    values: {argument name: value} for every argument of kernel ``name``.
    dtype: float32 or float64, the kernel's ``scalar_t``.
    """
    spec = KERNELS[name]
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: the kernels are compiled for float32 and float64, got {dtype}")
    missing = {n for n, _ in spec.args} ^ set(values)
    if missing:
        raise TypeError(f"{name}: arguments do not match the kernel table: {sorted(missing)}")
    out = []
    for arg, t in spec.args:
        v = values[arg]
        if t in POINTER_TYPES:
            want = {"_i32": np.dtype(np.int32), "_u64": np.dtype(np.uint64)}.get(t[-4:], dtype)
            if v.dtype != want:
                raise ValueError(f"{name}: {arg} must be {want}, got {v.dtype}")
            if not v.flags.c_contiguous:
                raise ValueError(f"{name}: {arg} must be C-contiguous")
            out.append(v)
        elif t == "i64":
            out.append(np.int64(v))
        elif t == "i32":
            check_int32(arg, abs(int(v)))
            out.append(np.int32(v))
        elif t == "scalar":
            out.append(dtype.type(v))
        elif t == "f64":
            out.append(np.float64(v))
        else:  # pragma: no cover - the table only uses the codes above
            raise TypeError(f"unknown argument type {t!r}")
    return out


def cupy_function(name: str, dtype):
    """The CuPy RawModule function for kernel ``name`` compiled for ``dtype`` (cached)."""
    cupy = cupy_or_raise()
    spec = KERNELS[name]
    ctype = "float" if np.dtype(dtype) == np.float32 else "double"
    key = (spec.file, ctype)
    with _lock:
        if key not in _cupy_modules:
            _cupy_modules[key] = cupy.RawModule(code=read_source(spec.file),
                                                options=(f"-Dscalar_t={ctype}",))
        return _cupy_modules[key].get_function(name)


def launch(name: str, total: int, values: dict, dtype, *, block: int | None = None) -> None:
    """Run kernel ``name`` with one thread per element of a ``total``-element output.

    The arrays in ``values`` decide where: CuPy arrays run on the GPU, NumPy arrays run
    through the host shim on the CPU.
    """
    args = cast_args(name, values, dtype)
    block = BLOCK if block is None else int(block)   # read at call time: BLOCK can be changed
    if total == 0:
        return                       # CUDA rejects an empty grid; nothing to do anyway
    grid = grid_size(total, block)
    arrays = [a for a in args if isinstance(a, np.ndarray) or is_cupy(a)]
    if array_module(*arrays) is np:
        from . import shim  # noqa: PLC0415
        shim.run(name, dtype, grid, block, args)
    else:
        cupy_function(name, dtype)((grid,), (block,), tuple(args))
