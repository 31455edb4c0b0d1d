"""How many threads the numerical kernels use: numba's parallel loops and the BLAS.

On a 2-core machine that is also running something else, a parallel region must wait for
its second thread to be scheduled, and a small kernel then takes a scheduler time slice
instead of a fraction of a millisecond (measured here: a 4 x 64 x 32 x 32 3x3 convolution
took ~140 ms with 2 OpenBLAS threads on a loaded machine and ~12 ms with one). The small
teaching model therefore trains with one thread per process, and a sweep uses the second
core by running a second training process (``ablate`` runs two at once).

    from mrcnn_np.threads import set_num_threads
    set_num_threads(1)
"""

from __future__ import annotations

import os


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for numba's parallel kernels and for the BLAS, from now on."""
    n = int(n)
    if not 1 <= n <= (os.cpu_count() or 1):
        raise ValueError(f"threads must be between 1 and {os.cpu_count()}, got {n}")
    import numba
    numba.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n, user_api="blas")
    except ImportError:           # without threadpoolctl the BLAS keeps its own setting
        pass


def get_num_threads() -> int:
    import numba
    return numba.get_num_threads()
