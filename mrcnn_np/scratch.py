"""Scratch folders that do not outlive the process that made them.

Notebooks and quick runs write data sets, checkpoints and reports to a temporary folder.
``tempfile.mkdtemp`` leaves that folder behind forever (the ablation notebooks' quick runs
left ~150 MB each per test run); a folder from :func:`scratch_dir` is removed when the
Python process exits normally, which includes a notebook kernel being shut down.

    from mrcnn_np.scratch import scratch_dir
    work = scratch_dir("nb10_")      # a Path; gone when the kernel stops
"""

from __future__ import annotations

import tempfile
from pathlib import Path

_LIVE: list[tempfile.TemporaryDirectory] = []   # kept alive until exit, then finalized


def scratch_dir(prefix: str = "mrcnn_np_") -> Path:
    """A new empty temporary folder, deleted (with its contents) when the process exits.

    Call :func:`remove_scratch` to delete every such folder earlier.
    """
    tmp = tempfile.TemporaryDirectory(prefix=prefix)   # its finalizer runs at exit
    _LIVE.append(tmp)
    return Path(tmp.name)


def remove_scratch() -> int:
    """Delete every folder made by :func:`scratch_dir` in this process now; returns how many."""
    n = len(_LIVE)
    while _LIVE:
        _LIVE.pop().cleanup()
    return n
