"""Keep freed memory in the process for the next training step (glibc's malloc settings).

A training step allocates hundreds of arrays (activations, im2col columns, gradients) and
frees them all again; the next step asks for the same sizes. By default glibc serves every
request over a *dynamic* threshold (128 KiB up to 32 MiB) with a fresh ``mmap`` and returns
the memory to the OS on ``free``, so each step touches brand-new pages: every first write
is a page fault in which the kernel zeroes a page. Measured here on the teaching step
(batch 4 x 128 px, one thread): ~3,800 minor page faults and ~12 ms of system time per step
by default, ~400 faults and ~2 ms with the settings below (step CPU time -3 %).

``keep_freed_memory()`` raises the mmap threshold to 64 MiB (the largest im2col buffer a
convolution caches, ``conv.CACHE_COLS_BYTES``) and the trim threshold to 256 MiB, so freed
blocks stay in the heap and are reused. It is what the environment variables
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do, set from inside the running
process (``mallopt``). The price: up to 256 MiB of freed memory stays mapped between steps.
On a C library without ``mallopt`` (macOS, musl) it does nothing and returns False.

    from mrcnn_np.memory import keep_freed_memory
    keep_freed_memory()          # once, at the start of a training process
"""

from __future__ import annotations

import ctypes
import ctypes.util

MMAP_THRESHOLD = 64 * 2**20      # requests below this come from the heap, not from mmap
TRIM_THRESHOLD = 256 * 2**20     # free memory at the heap's top kept before giving it back
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3       # mallopt parameter numbers (malloc.h)


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Set glibc's mmap and trim thresholds (bytes) for this process; True when applied."""
    if mmap_threshold < 0 or trim_threshold < 0:
        raise ValueError(f"thresholds must be >= 0 bytes, got mmap_threshold={mmap_threshold}, "
                         f"trim_threshold={trim_threshold}")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # not glibc: nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # glibc caps the mmap threshold at 32 MiB on 32-bit systems (HEAP_MAX / 2); mallopt
    # returns 0 when it refuses a value
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1 and ok)
