"""The one place that decides which implementation of an op runs.

Every heavy op exists as ``_reference`` (loops, the specification), ``_numpy``
(vectorised), ``_numba`` (the CPU default) and, for CuPy input, a CUDA kernel.
Public functions take ``impl=None`` and call :func:`resolve_impl`; notebooks and tests
pass ``impl="reference"`` etc. explicitly to compare the twins.
"""

from __future__ import annotations

IMPLS = ("reference", "numpy", "numba", "cupy")


def is_cupy(x) -> bool:
    """True for a CuPy array (checked by module name, so cupy need not be installed)."""
    return type(x).__module__.startswith("cupy")


def resolve_impl(impl: str | None, *arrays, available=IMPLS) -> str:
    """Return the implementation name to run.

    impl: None picks "cupy" when any array is a CuPy array, else "numba".
    available: the implementations this op has; asking for another raises ValueError.
    """
    if impl is None:
        impl = "cupy" if any(is_cupy(a) for a in arrays) else "numba"
    if impl not in available:
        raise ValueError(f"impl must be one of {tuple(available)}, got {impl!r}")
    if impl != "cupy" and any(is_cupy(a) for a in arrays):
        raise ValueError(f"impl={impl!r} runs on the CPU but got a CuPy array; "
                         "pass NumPy arrays or impl='cupy'")
    return impl
