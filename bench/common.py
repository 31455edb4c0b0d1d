"""The benchmarks' one timing helper, and the machine report they all print.

Every benchmark runs ours and the reference (torch/torchvision) in the same process, on
the same inputs, and prints ratios: the machine is shared and noisy, so absolute times
drift but ratios hold. ``bench`` is a package: run a script from the repository root as a
module, e.g. ``python -m bench.bench_nms`` (``make bench`` runs every ``bench_*`` script).

    timed(fn, *args)          (result, seconds) of one call
    timings(fn, repeat, ...)  seconds of each of ``repeat`` calls after ``warmup`` calls
    timeit(fn, ...)           their median
    compare({name: fn}, ...)  median of each callable, measured interleaved round by round
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np


def timed(fn, *args, **kwargs):
    """(fn(*args, **kwargs), wall seconds of that call)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def timings(fn, repeat: int = 7, warmup: int = 1) -> list:
    """Wall seconds of each of ``repeat`` calls of ``fn()``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return [timed(fn)[1] for _ in range(repeat)]


def timeit(fn, *, repeat: int = 7, warmup: int = 1, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs.

    Interleave the calls of the things you compare (see :func:`compare`) so that a burst
    of load on the shared machine hits both sides alike.
    """
    return statistics.median(timings(fn, repeat, warmup))


def compare(fns: dict, *, repeat: int = 7, warmup: int = 1, inputs=None) -> dict:
    """Median time of each callable in ``fns``, measured interleaved round by round.

    inputs: optional sequence of ``warmup + repeat`` argument tuples; round r then calls
    every ``fn(*inputs[r])`` (the same new batch for each side), else ``fn()``.
    """
    args = (lambda r: inputs[r]) if inputs is not None else (lambda r: ())
    for r in range(warmup):
        for fn in fns.values():
            fn(*args(r))
    times = {k: [] for k in fns}
    for r in range(warmup, warmup + repeat):
        for k, fn in fns.items():
            times[k].append(timed(fn, *args(r))[1])
    return {k: statistics.median(v) for k, v in times.items()}


def gemm_gflops(n: int = 1024, dtype=np.float32, repeat: int = 5) -> float:
    """GFLOP/s of NumPy's matrix product on an n x n problem, measured now."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    t = timeit(lambda: a @ b, repeat=repeat, warmup=1)
    return 2 * n**3 / t / 1e9


def blas_kernel() -> str:
    """The BLAS library and the kernel it picked for this CPU (threadpoolctl), e.g. "openblas SkylakeX"."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "(install threadpoolctl to see which kernel runs)"
    found = [f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info()
             if i.get("user_api") == "blas"]
    return ", ".join(found) or "(none found)"


def machine_report() -> str:
    """One paragraph about the machine and its BLAS, measured in this run."""
    lines = [f"python {platform.python_version()}, numpy {np.__version__}, "
             f"{os.cpu_count()} logical cores, {platform.machine()}"]
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if var in os.environ:
            lines.append(f"{var}={os.environ[var]}")
    try:
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            if info.get("user_api") == "blas":
                lines.append(f"BLAS: {info.get('internal_api')} {info.get('version')} "
                             f"kernel={info.get('architecture')} threads={info.get('num_threads')}")
    except ImportError:
        lines.append("BLAS: (install threadpoolctl to see which kernel runs)")
    lines.append(f"NumPy float32 GEMM 1024^3: {gemm_gflops():.1f} GFLOP/s")
    return "\n".join(lines)


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print rows (dicts) as an aligned text table with the given column order."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
