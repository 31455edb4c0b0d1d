"""``bughunt check``: every bug is caught by its test, and every test passes without it.

In a temporary copy of the checkout (``mrcnn_np/``, ``tests/``, ``pyproject.toml``):

1. the named tests of all bugs run once on the clean copy and must all pass (a test that
   fails anyway proves nothing);
2. for each bug: plant it, run its named test, which must *fail* (pytest exit code 1; a
   collection error or a missing test is reported as such), take the bug out again
   (:func:`mrcnn_np.bughunt.patch.reset` checks that the files hash as before);
3. the named tests run once more on the copy, which must pass again.

Each run is ``python -m pytest`` in a subprocess with ``PYTHONPATH`` set to the copy (so the
copy's package is imported, not an installed one -- checked once), one thread for numba
and BLAS, and one numba cache folder inside the copy shared by the runs (a planted file
gets a new modification time, which makes numba compile its kernels afresh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .bugs import BUGS
from .patch import BugHuntError, default_root, plant, read_state, reset

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", ".pytest_cache", ".hypothesis")


@dataclass
class CheckResult:
    name: str
    test: str
    caught: bool
    seconds: float
    detail: str


def make_copy(root: Path, dest: Path) -> Path:
    """Copy the package, the tests and pyproject.toml of ``root`` into ``dest``; returns dest."""
    for need in ("mrcnn_np", "tests", "pyproject.toml"):
        if not (root / need).exists():
            raise BugHuntError(f"{root / need}: missing; bughunt check needs a checkout of the repository")
    shutil.copytree(root / "mrcnn_np", dest / "mrcnn_np", ignore=_IGNORE)   # symlinks followed
    shutil.copytree(root / "tests", dest / "tests", ignore=_IGNORE)
    shutil.copy2(root / "pyproject.toml", dest / "pyproject.toml")
    return dest


def subprocess_env(copy: Path) -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(copy), NUMBA_CACHE_DIR=str(copy / ".numba_cache"), OMP_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", MRCNN_NP_QUICK="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def run_tests(copy: Path, node_ids, timeout: float = 600) -> tuple[int, str]:
    """(pytest exit code, its output) for ``node_ids`` run in the copy."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(copy),
           "-c", str(copy / "pyproject.toml"), *node_ids]
    p = subprocess.run(cmd, cwd=copy, env=subprocess_env(copy), capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def _last_line(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def check(root=None, names=None, progress=print) -> list:
    """Run the check on a temporary copy of ``root``; returns one CheckResult per bug.

    names: only these bugs (default: all). Raises BugHuntError when a named test fails on
    the clean code or the copy does not import its own package.
    """
    root = Path(root) if root is not None else default_root()
    planted = read_state(root)
    if planted is not None:
        raise BugHuntError(f"bug {planted['bug']!r} is planted in {root}; run `python -m mrcnn_np bughunt reset` "
                           "before the check")
    bugs = [b for b in BUGS if names is None or b.name in names]
    if names is not None and len(bugs) != len(set(names)):
        unknown = sorted(set(names) - {b.name for b in BUGS})
        raise BugHuntError(f"no bug named {', '.join(unknown)}")
    node_ids = sorted({b.test for b in bugs})
    with tempfile.TemporaryDirectory(prefix="mrcnn_np_bughunt_") as tmp:
        copy = make_copy(root, Path(tmp))
        probe = subprocess.run([sys.executable, "-c", "import mrcnn_np; print(mrcnn_np.__file__)"],
                               cwd=copy, env=subprocess_env(copy), capture_output=True, text=True)
        if not probe.stdout.strip().startswith(str(copy)):
            raise BugHuntError(f"the copy imports mrcnn_np from {probe.stdout.strip() or probe.stderr.strip()}, "
                               f"not from {copy}")
        t0 = time.perf_counter()
        code, out = run_tests(copy, node_ids)
        if code != 0:
            raise BugHuntError(f"the named tests fail on the clean code (exit {code}): {_last_line(out)}")
        progress(f"clean code: {len(node_ids)} named tests pass ({time.perf_counter() - t0:.1f} s)")
        results = []
        for bug in bugs:
            t0 = time.perf_counter()
            plant(bug.name, copy)
            try:
                code, out = run_tests(copy, [bug.test])
            finally:
                reset(copy)
            seconds = time.perf_counter() - t0
            caught = code == 1
            detail = {0: "NOT CAUGHT: the test passes with the bug planted",
                      1: "caught"}.get(code, f"test did not run properly (pytest exit {code}): {_last_line(out)}")
            results.append(CheckResult(bug.name, bug.test, caught, seconds, detail))
            progress(f"{bug.name:36s} {detail} ({seconds:.1f} s)")
        t0 = time.perf_counter()
        code, out = run_tests(copy, node_ids)
        if code != 0:
            raise BugHuntError(f"after reset the named tests fail (exit {code}): {_last_line(out)}")
        progress(f"after reset: the named tests pass again ({time.perf_counter() - t0:.1f} s)")
    return results
