"""``symptom_figure(name)``: each bug's symptom as a picture, clean code above, planted below.

The clean row is computed here, by the imported package. The planted row comes from a
subprocess that imports a temporary copy of the package with the bug planted (the
checkout itself is never touched), running :func:`mrcnn_np.bughunt.symptoms.symptom_data`
there. So the lower row is what the buggy code really computes, not a drawing of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from .check import make_copy, subprocess_env
from .patch import BugHuntError, default_root, get_bug, plant
from .symptoms import symptom_data


def planted_symptom_data(name: str, root=None) -> list:
    """symptom_data(name) computed by a temporary copy of ``root`` with the bug planted."""
    root = Path(root) if root is not None else default_root()
    bug = get_bug(name)
    with tempfile.TemporaryDirectory(prefix="mrcnn_np_symptom_") as tmp:
        copy = Path(tmp)
        make_copy(root, copy)
        plant(bug.name, copy)
        code = ("import json, sys; from mrcnn_np.bughunt.symptoms import symptom_data; "
                f"json.dump(symptom_data({bug.name!r}), sys.stdout)")
        p = subprocess.run([sys.executable, "-c", code], cwd=copy, env=subprocess_env(copy), capture_output=True,
                           text=True, timeout=300)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["no output"])[-1]
            raise BugHuntError(f"the planted copy could not compute the symptom of {bug.name}: {last}")
        return json.loads(p.stdout)


def _draw(ax, title, values, limits):
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 2:
        ax.imshow(a, cmap="magma", interpolation="nearest", vmin=limits[0], vmax=limits[1])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"min {a.min():.3g}, max {a.max():.3g}", fontsize=8)
    elif len(a) > 8:
        ax.plot(np.arange(len(a)), a)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylim(*limits)
    else:
        ax.bar(np.arange(len(a)), a, color="tab:blue")
        ax.set_ylim(min(limits[0], 0), limits[1] * 1.1 if limits[1] > 0 else 1)
        ax.set_xticks(np.arange(len(a)))
        for i, v in enumerate(a):
            ax.text(i, v, f"{v:g}", ha="center", va="bottom", fontsize=8)
    ax.set_title(textwrap.fill(title, 48), fontsize=8)


def symptom_figure(name: str, root=None):
    """A matplotlib Figure: the symptom panels of bug ``name``, clean (top) and planted (bottom)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    bug = get_bug(name)
    clean = symptom_data(bug.name)
    planted = planted_symptom_data(bug.name, root)
    cols = len(clean)
    fig, axes = plt.subplots(2, cols, figsize=(max(4.2 * cols, 6.0), 7.0), squeeze=False)
    # one colour scale / axis range per panel for both rows, so the rows compare directly
    limits = [(min(np.min(c[1]), np.min(p[1])), max(np.max(c[1]), np.max(p[1]))) for c, p in zip(clean, planted)]
    limits = [(lo, hi if hi > lo else lo + 1.0) for lo, hi in limits]
    for row, (label, panels) in enumerate((("clean code", clean), (f"with {bug.name}", planted))):
        for col, (title, values) in enumerate(panels):
            _draw(axes[row, col], f"{label}: {title}" if col == 0 else title, values, limits[col])
    fig.suptitle(textwrap.fill(f"{bug.name} (modelled on {bug.source})", 60), fontsize=9)
    fig.tight_layout()
    return fig
