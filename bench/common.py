"""Helpers shared by the benchmark scripts.

Every benchmark runs ours and the reference (torch/torchvision) in the same process, on
the same inputs, and prints ratios: the machine is shared and noisy, so absolute times
drift but ratios hold. Run a script directly: ``python bench/bench_nms.py``.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np


def timeit(fn, *, repeat: int = 7, warmup: int = 1, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs.

    Interleave the calls of the things you compare (see :func:`compare`) so that a burst
    of load on the shared machine hits both sides alike.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare(fns: dict, *, repeat: int = 7, warmup: int = 1) -> dict:
    """Median time of each callable in ``fns``, measured interleaved round by round."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def gemm_gflops(n: int = 1024, dtype=np.float32, repeat: int = 5) -> float:
    """GFLOP/s of NumPy's matrix product on an n x n problem, measured now."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    t = timeit(lambda: a @ b, repeat=repeat, warmup=1)
    return 2 * n**3 / t / 1e9


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
