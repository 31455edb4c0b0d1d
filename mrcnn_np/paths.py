"""Where the repository's folders are, found from the package itself, not from the working directory.

Notebooks, scripts and studies read the committed results (``results/``), write generated data
sets (``data/``) and training runs (``runs/``). A notebook may be started from ``notebooks/``,
from the repository root, or (on Colab) from anywhere; looking these folders up relative to the
working directory then finds nothing, and a notebook would wrongly report that no results exist.
So they are located from this file: ``mrcnn_np/paths.py`` lies in ``<repository>/mrcnn_np/``.

    from mrcnn_np.paths import results_dir
    report = results_dir() / "ablation_roi.json"

That works for a clone, with or without ``pip install -e .`` (an editable install leaves the
package where it is). A regular ``pip install`` copies only the package into site-packages, and
there is no repository next to it: then :func:`repo_root` raises a ``FileNotFoundError`` that
says so and names the fix. The environment variable ``MRCNN_NP_REPO`` overrides the search
(a path to a clone), for that case.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MRCNN_NP_REPO"
# Files that only the repository has, next to the package folder.
_MARKERS = ("pyproject.toml", "docs/DESIGN.md")


def _is_repo(path: Path) -> bool:
    return (path / "mrcnn_np").is_dir() and all((path / m).is_file() for m in _MARKERS)


def repo_root(package_file: str | os.PathLike | None = None) -> Path:
    """The repository that holds this package: the folder with ``mrcnn_np/``, ``pyproject.toml``, ``docs/``.

    package_file: where the package lives (default: this module's own file; tests pass another).
    ``$MRCNN_NP_REPO``, when set, is used instead and must be such a folder.
    Raises FileNotFoundError, naming the folder looked at and the fix, when there is none.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env).expanduser().resolve()
        if not _is_repo(root):
            raise FileNotFoundError(f"${ENV_VAR} = {env!r} is not a mrcnn_np repository "
                                    f"(no mrcnn_np/, {' or '.join(_MARKERS)} in {root})")
        return root
    here = Path(package_file if package_file is not None else __file__).resolve()
    root = here.parent.parent                  # <repository>/mrcnn_np/paths.py -> <repository>
    if not _is_repo(root):
        raise FileNotFoundError(
            f"mrcnn_np is installed at {here.parent} without its repository (no {' or '.join(_MARKERS)} "
            f"in {root}): results/ and data/ ship with the repository, not with the package. Clone the "
            f"repository and install it with `pip install -e <clone>`, or set ${ENV_VAR} to a clone.")
    return root


def results_dir() -> Path:
    """``<repository>/results``: the committed tables and reports of the studies and benchmarks."""
    return repo_root() / "results"


def data_dir() -> Path:
    """``<repository>/data``: generated data sets (git-ignored; see data/README.md)."""
    return repo_root() / "data"


def runs_dir() -> Path:
    """``<repository>/runs``: training runs started by the notebooks (git-ignored)."""
    return repo_root() / "runs"
