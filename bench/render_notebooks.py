"""Render the notebooks for GitHub: execute each one in full mode and store its outputs in place.

Every notebook in ``notebooks/`` is executed top to bottom in a fresh kernel (nbclient, as
``pytest --nbmake`` and ``bench.notebook_times`` do), started in ``notebooks/``, with
``MRCNN_NP_QUICK`` unset (full mode: notebooks 10, 11 and 17 train for minutes). A notebook
that runs to the end is written back with its outputs and a stamp in its metadata::

    metadata["mrcnn_np"] = {"code_fingerprint": "<sha256 hex>", "mode": "full", "date": "YYYY-MM-DD",
                            "seconds": <wall seconds of the run>, "cpus": <os.cpu_count()>}

In the stored outputs the clone's absolute path is written as ``<repo>`` (``sanitize_outputs``):
the files then do not depend on, nor show, the folder they were rendered in.

A notebook with a failing cell is not written (the file keeps what it had); the exit code is
then 1. ``tests/test_notebook_freshness.py`` compares the stamp with the code cells, so a
code change without a new rendering fails CI.

The fingerprint (``code_fingerprint``) is the sha256 of the code cells' sources, in order:
each source (a string, or the list of strings nbformat stores, joined) with its line endings
normalised to ``\\n``, encoded as UTF-8 and followed by one NUL byte (so that moving text
from one cell to the next changes the hash). Markdown cells, outputs, execution counts and
metadata are not hashed: editing prose does not ask for a new rendering.

Each rendered file must stay at most ``MAX_BYTES`` (1.5 MB), so that GitHub shows it; a
larger one is written (to look at) but reported as an error, exit code 1: draw that
notebook's figures as JPEG (the synthetic images are noisy, so PNGs are large; notebooks 01,
02, 08 and 17 do this in their import cell), lower their dpi, or draw fewer of them.

    python -m bench.render_notebooks                 # all 19 (long: the full-mode trainings)
    python -m bench.render_notebooks --only 01 03    # just those (make notebooks-render ONLY="01 03")
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sys
import time
from pathlib import Path

from bench.notebook_times import ROOT, execute_notebook, select_notebooks

MAX_BYTES = 1_500_000  # 1.5 MB: above this GitHub's notebook viewer may refuse the file
STAMP_KEY = "mrcnn_np"


def cell_source(cell) -> str:
    """A cell's source as one string with ``\\n`` line endings (nbformat stores str or list of str)."""
    src = cell.get("source", "")
    if not isinstance(src, str):
        src = "".join(src)
    return src.replace("\r\n", "\n").replace("\r", "\n")


def code_fingerprint(nb) -> str:
    """sha256 hex of the code cells' sources in order, each followed by a NUL byte (see module doc).

    nb: a notebook as a dict (``json.load``) or an ``nbformat.NotebookNode``.
    """
    h = hashlib.sha256()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            h.update(cell_source(cell).encode("utf-8"))
            h.update(b"\0")
    return h.hexdigest()


def stamp(nb, mode: str = "full", date: str | None = None, seconds: float | None = None) -> dict:
    """Write the rendering stamp into ``nb``'s metadata (in place) and return it; ``seconds``: how long
    the notebook took top to bottom (with the machine's CPU count)."""
    info = {"code_fingerprint": code_fingerprint(nb), "mode": mode,
            "date": date or datetime.date.today().isoformat()}
    if seconds is not None:
        info.update(seconds=round(float(seconds), 1), cpus=os.cpu_count())
    nb["metadata"][STAMP_KEY] = info
    return info


REPO_MARK = "<repo>"
IMAGE_KEYS = ("image/png", "image/jpeg", "image/svg+xml")


def sanitize_outputs(nb, root: Path | None = None) -> int:
    """Write the clone's absolute path as ``<repo>`` in every text of ``nb``'s stored outputs (in
    place; images are left alone); returns how many strings changed. Paths printed by a cell
    would otherwise show the folder of the machine that rendered it."""
    roots = sorted({str(r) for r in (root or ROOT, Path(root or ROOT).resolve())}, key=len, reverse=True)

    def clean(value):
        nonlocal changed
        if isinstance(value, str):
            new = value
            for r in roots:
                new = new.replace(r, REPO_MARK)
            changed += new != value
            return new
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: (v if k in IMAGE_KEYS else clean(v)) for k, v in value.items()}
        return value

    changed = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and cell.get("outputs"):
            cell["outputs"] = [type(o)(clean(dict(o))) if isinstance(o, dict) else o for o in cell["outputs"]]
    return changed


def size_problem(path: Path) -> str | None:
    """None when ``path`` is at most MAX_BYTES, else the message that says what to do."""
    size = path.stat().st_size
    if size <= MAX_BYTES:
        return None
    return (f"{path.name} is {size / 1e6:.2f} MB after rendering, over the {MAX_BYTES / 1e6:.1f} MB limit: "
            f"draw its figures as JPEG (set_matplotlib_formats(\"jpeg\"), as notebook 01 does), "
            f"lower their dpi or draw fewer, then render it again")


def render(path: Path, timeout: int, quick: bool = False) -> float:
    """Execute ``path`` in a fresh kernel, stamp it, write it back; returns wall seconds.

    Raises (and leaves the file untouched) when a cell fails. The file is replaced through a
    temporary file in the same folder, so an interrupted write cannot truncate it.
    """
    import nbformat  # noqa: PLC0415  (the dev extra; the package itself does not need it)

    nb = nbformat.read(path, as_version=4)
    seconds = execute_notebook(nb, path.parent, quick, timeout)
    sanitize_outputs(nb)
    stamp(nb, "quick" if quick else "full", seconds=seconds)
    tmp = path.with_name(path.name + ".rendering")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    return seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers, e.g. 01 03 (default: all)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = ap.parse_args(argv)
    paths = select_notebooks(args.only)
    if paths is None:
        return 2
    problems, t0 = [], time.perf_counter()
    for path in paths:
        try:
            seconds = render(path, args.timeout)
        except Exception as e:  # noqa: BLE001  (a failing notebook is reported, the others still render)
            first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            problems.append(f"{path.name}: a cell failed, file not written: {first}")
            print(f"{path.stem:<34} FAILED: {first}", flush=True)
            continue
        size = path.stat().st_size
        print(f"{path.stem:<34} {seconds:8.1f} s  {size / 1e6:5.2f} MB", flush=True)
        too_big = size_problem(path)
        if too_big:
            problems.append(too_big)
    print(f"rendered {len(paths) - sum('file not written' in p for p in problems)} of {len(paths)} notebooks "
          f"in full mode in {time.perf_counter() - t0:.0f} s")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
