"""How long each notebook takes, in quick and in full mode: a markdown table for the README.

Every notebook is executed top to bottom in a fresh kernel (nbclient, as ``pytest --nbmake``
does), started in ``notebooks/``, once per mode: ``quick`` sets ``MRCNN_NP_QUICK=1`` (the
training cells train a few iterations on a tiny set, as CI runs them) and ``full`` unsets it
(notebooks 10, 11 and 17 then train for minutes, and reuse their run folders under ``runs/``
on a second run: delete those to time a first run). Nothing is written back into the
notebooks. The table gives the wall seconds of each notebook, the total, and the machine
(CPU count); a notebook that fails shows ``error`` and makes the exit code 1.

    python -m bench.notebook_times                       # every notebook, both modes (long)
    python -m bench.notebook_times --modes quick --only 00 04
    python -m bench.notebook_times --full-from-render    # full mode: the times `make notebooks-render` stored

``--full-from-render`` does not run the notebooks in full mode: it reads the wall seconds that
``bench.render_notebooks`` measured and stored in each notebook's ``metadata["mrcnn_np"]`` when it
rendered them (one full-mode run serves both), and times quick mode itself.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def run_notebook(path: Path, quick: bool, timeout: int) -> float:
    """Wall seconds to execute ``path`` top to bottom in a fresh kernel; raises on a failing cell."""
    import nbformat  # noqa: PLC0415  (the dev extra; the package itself does not need them)

    return execute_notebook(nbformat.read(path, as_version=4), path.parent, quick, timeout)


def execute_notebook(nb, workdir: Path, quick: bool, timeout: int) -> float:
    """Execute the nbformat notebook ``nb`` in place (its cells get their outputs) in a fresh
    kernel started in ``workdir``; returns the wall seconds. Raises on a failing cell."""
    from nbclient import NotebookClient  # noqa: PLC0415  (the dev extra, through nbmake)

    env = dict(os.environ)
    env.pop("MRCNN_NP_QUICK", None)
    if quick:
        env["MRCNN_NP_QUICK"] = "1"
    # the kernel inherits this process's environment: set the mode there, and let it find the package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        # record_timing=False: no per-cell execution timestamps in a notebook written back
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(workdir)}})
        t0 = time.perf_counter()
        client.execute()
        return time.perf_counter() - t0
    finally:
        os.environ.clear()
        os.environ.update(saved)


def rendered_seconds(path: Path):
    """(seconds, cpus) that ``bench.render_notebooks`` stored in the notebook's metadata, or (None, None)."""
    import json  # noqa: PLC0415

    info = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("mrcnn_np", {})
    if info.get("mode") != "full":
        return None, None
    return info.get("seconds"), info.get("cpus")


def markdown_table(times: dict, modes: list) -> str:
    """times: {notebook name: {mode: seconds or None (failed)}} -> a markdown table with a total row."""
    head = "| notebook | " + " | ".join(f"{m} mode (s)" for m in modes) + " |"
    lines = [head, "|---|" + "---:|" * len(modes)]
    for name, row in times.items():
        cells = ["error" if row.get(m) is None else f"{row[m]:.0f}" for m in modes]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    totals = []
    for m in modes:
        vals = [row.get(m) for row in times.values()]
        totals.append("—" if any(v is None for v in vals) else f"{sum(vals):.0f}")
    lines.append("| **total** | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def select_notebooks(only):
    """The notebooks numbered ``only`` (all when empty), in order; None after one ``error:`` line
    on stderr when a number has no notebook."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {n.zfill(2) for n in only}
        unknown = wanted - {p.name[:2] for p in paths}
        if unknown:
            print(f"error: --only: no notebook numbered {', '.join(sorted(unknown))} in {NOTEBOOKS}", file=sys.stderr)
            return None
        paths = [p for p in paths if p.name[:2] in wanted]
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", nargs="+", choices=("quick", "full"), default=["quick", "full"])
    ap.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers, e.g. 00 04 (default: all)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    ap.add_argument("--full-from-render", action="store_true",
                    help="full mode: read the seconds make notebooks-render stored in each notebook instead of running it")
    args = ap.parse_args(argv)
    paths = select_notebooks(args.only)
    if paths is None:
        return 2
    modes = list(dict.fromkeys(args.modes + (["full"] if args.full_from_render else [])))
    times, failed, cpus = {}, False, set()
    for path in paths:
        row = times.setdefault(path.stem, {})
        if args.full_from_render:
            row["full"], n = rendered_seconds(path)
            cpus.add(n)
            if row["full"] is None:
                failed = True
                print(f"{path.stem:<34} full  no stored time: render it (make notebooks-render ONLY={path.name[:2]})",
                      file=sys.stderr, flush=True)
        for mode in args.modes:
            if mode == "full" and args.full_from_render:
                continue
            try:
                row[mode] = run_notebook(path, mode == "quick", args.timeout)
                print(f"{path.stem:<34} {mode:<5} {row[mode]:8.1f} s", file=sys.stderr, flush=True)
            except Exception as e:  # noqa: BLE001  (a failing notebook is reported, the others still run)
                row[mode], failed = None, True
                first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                print(f"{path.stem:<34} {mode:<5} FAILED: {first}", file=sys.stderr, flush=True)
    how = f"`python -m bench.notebook_times --modes {' '.join(args.modes)}`"
    if args.full_from_render:
        how = (f"`python -m bench.notebook_times --full-from-render --modes quick` (full mode: the times stored by "
               f"`make notebooks-render`, on {', '.join(str(c) for c in sorted(cpus, key=str))} CPU cores)")
    print(f"Notebook wall times, {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
          f"measured with {how}:\n")
    print(markdown_table(times, modes))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
