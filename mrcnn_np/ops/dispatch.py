"""The one place that decides which implementation of an op runs.

Every heavy op exists as twins that compute the same numbers, named ``<op>_<impl>``:

    <op>_reference   loops, the specification (docs/REFERENCE.md)
    <op>_numpy       vectorised NumPy
    <op>_numba       compiled loops, the CPU default
    <op>_cuda        the CUDA kernel of ``kernels/*.cu`` (:mod:`mrcnn_np.gpu`): on the GPU
                     for CuPy arrays, through the CPU host shim for NumPy arrays

and one table per op maps the ``impl=`` name to its twin, e.g.
``ROI_ALIGN = {"reference": roi_align_reference, ..., "cupy": roi_align_cuda}``
(the key of the CUDA twin is "cupy", the name ``impl=`` has always used). An op with no
CUDA twin (``crop_and_resize``) leaves "cupy" out of its table, so :func:`resolve_impl`
refuses it, and a CuPy array, with a ValueError naming the choices. The CPU twins
of an op share an internal signature (arguments already checked); the CUDA twin takes the
public arguments and checks them itself, because CuPy arrays must not be converted to
NumPy on the way. Public functions take ``impl=None`` and call :func:`resolve_impl`;
notebooks and tests pass ``impl="reference"`` etc. explicitly to compare the twins.

Layering: this module imports :func:`is_cupy` from :mod:`mrcnn_np.gpu`, the bottom layer
(``gpu/`` imports nothing from ``ops/`` or ``autodiff/``).
"""

from __future__ import annotations

from ..gpu.launch import is_cupy

__all__ = ["IMPLS", "CUDA", "is_cupy", "resolve_impl"]

IMPLS = ("reference", "numpy", "numba", "cupy")
CUDA = "cupy"  # the table key of the CUDA twin


def resolve_impl(impl: str | None, *arrays, available=IMPLS) -> str:
    """Return the implementation name to run.

    impl: None picks "cupy" when any array is a CuPy array, else "numba".
    available: the implementations this op has (a tuple, or the op's table); asking for
    another raises ValueError naming the choices.
    """
    available = tuple(available)
    if impl is None:
        impl = CUDA if any(is_cupy(a) for a in arrays) else "numba"
    if impl not in available:
        raise ValueError(f"impl must be one of {available}, got {impl!r}")
    if impl != CUDA and any(is_cupy(a) for a in arrays):
        raise ValueError(f"impl={impl!r} runs on the CPU but got a CuPy array; "
                         "pass NumPy arrays or impl='cupy'")
    return impl
