"""How many BLAS threads a matrix product gets.

A small product (a few tens of MFLOP: every convolution of the teaching model) finishes in
well under a millisecond on one core. Split over two threads it must wait for the second
thread to be scheduled, and on a busy 2-core machine that wait is a scheduler time slice:
measured here, a 4x32x32x32 3x3 convolution took 88 ms with 2 OpenBLAS threads and 3.3 ms
with one. So products below ``SMALL_GEMM_FLOPS`` (env ``MRCNN_NP_SMALL_GEMM_FLOPS``,
default 2**26) run single-threaded; large ones keep every BLAS thread.

Uses threadpoolctl when it is installed (switching costs ~1 microsecond); otherwise this
is a no-op and BLAS decides.
"""

from __future__ import annotations

import os

SMALL_GEMM_FLOPS = int(os.environ.get("MRCNN_NP_SMALL_GEMM_FLOPS", 1 << 26))

try:
    from threadpoolctl import ThreadpoolController
    _BLAS = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
except Exception:  # threadpoolctl missing or unable to inspect the BLAS: leave it alone
    _BLAS = []


class gemm_threads:
    """Context manager: one BLAS thread inside when ``flops`` (per product) is small."""

    __slots__ = ("saved",)

    def __init__(self, flops: float):
        self.saved = None
        if _BLAS and flops < SMALL_GEMM_FLOPS:
            self.saved = [c.get_num_threads() for c in _BLAS]

    def __enter__(self):
        if self.saved is not None:
            for c, n in zip(_BLAS, self.saved):
                if n > 1:
                    c.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            for c, n in zip(_BLAS, self.saved):
                if n > 1:
                    c.set_num_threads(n)
        return False
