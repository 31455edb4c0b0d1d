"""The measured times of docs/WORKSHOP.md: the two plans, the solution notebooks, the pooled table, the set-up.

Nothing in the instructor's guide is a typed-in time: this script prints the block between the
``workshop-times`` markers of docs/WORKSHOP.md (a test keeps the two equal). It reads what was
measured and stored:

- the student notebooks' full-mode seconds, from their render stamps (``make notebooks-render``);
- the solution notebooks' seconds and the set-up times, from ``results/workshop_times.json``,
  which ``--measure`` writes: it executes every solution notebook in quick and in full mode in a
  fresh kernel, and times the first and second smoke run of a table in fresh processes with an
  empty numba cache (the compile cost a class pays once, unless the cache was warmed before);
- one workshop run and the whole workshop table, from the committed workshop report
  (``results/ablation_<table>_workshop.json``, ``python -m mrcnn_np ablate TABLE --workshop``).

    python -m bench.workshop_times              # print the block
    python -m bench.workshop_times --measure    # measure (minutes), store, then print
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
STORE = ROOT / "results" / "workshop_times.json"
POOLED_TABLE = "mask_loss"

# The plans: (minutes of class time, what, student notebooks, "NN: exercises", bugs, pooled step).
# The minutes are the plan's; the compute column is measured (see the module docstring).
PLANS = {
    "3 hours": [
        (15, "start the pooled runs (one per laptop), then a talk on the paper's §3 while they train", [], [], [],
         "run"),
        (25, "anchors and matching", ["01_anchors", "02_matching_and_box_coding"], ["01: 1, 3", "02: 1, 2"], [], ""),
        (30, "RoIPool, RoIWarp, RoIAlign", ["04_roi_pool_warp_align"], ["04: 1, 4"], [], ""),
        (10, "break", [], [], [], ""),
        (25, "heads, losses, and the mask-loss table", ["09_heads_and_losses", "13_ablation_mask_loss"],
         ["09: 1, 2", "13: 1"], [], ""),
        (40, "bug hunt, in pairs", ["18_bug_hunt"], [],
         ["anchor-ratio-inverted", "roialign-no-half-offset", "mask-softmax-across-classes"], ""),
        (20, "the class's table: merge the run files, compare with the committed run", [], [], [], "merge"),
        (15, "training a model, watched (one laptop on the projector)", ["10_training"], [], [], ""),
    ],
    "90 minutes": [
        (10, "start the pooled runs (one per laptop), then a talk on RoIAlign", [], [], [], "run"),
        (25, "RoIPool, RoIWarp, RoIAlign", ["04_roi_pool_warp_align"], ["04: 1"], [], ""),
        (30, "bug hunt, in pairs", ["18_bug_hunt"], [], ["roialign-no-half-offset", "mask-softmax-across-classes"],
         ""),
        (20, "the class's table and the paper's Table 2b", ["13_ablation_mask_loss"], ["13: 1"], [], "merge"),
        (5, "wrap-up", [], [], [], ""),
    ],
}


def rendered_full_seconds(stem: str):
    from bench.notebook_times import rendered_seconds  # noqa: PLC0415

    return rendered_seconds(NOTEBOOKS / f"{stem}.ipynb")[0]


def workshop_report(table: str = POOLED_TABLE):
    path = ROOT / "results" / f"ablation_{table}_workshop.json"
    return json.loads(path.read_text()) if path.is_file() else None


def solution_paths():
    return sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))


# ---------------------------------------------------------------- measuring
def measure_solutions(timeout: int = 900) -> dict:
    """{solution notebook stem: {"quick": s, "full": s, "fingerprint"}}, each executed in a fresh kernel."""
    import nbformat  # noqa: PLC0415

    from bench.notebook_times import execute_notebook  # noqa: PLC0415
    from bench.render_notebooks import code_fingerprint  # noqa: PLC0415

    out = {}
    for path in solution_paths():
        nb = nbformat.read(path, as_version=4)
        row = {"fingerprint": code_fingerprint(nb)}
        for mode in ("quick", "full"):
            row[mode] = round(execute_notebook(nbformat.read(path, as_version=4), path.parent, mode == "quick",
                                               timeout), 1)
            print(f"{path.stem:<36} {mode:<5} {row[mode]:7.1f} s", file=sys.stderr, flush=True)
        out[path.stem] = row
    return out


def measure_setup() -> dict:
    """The first smoke run of a table in a fresh process with an empty numba cache, then a second one."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba"), PYTHONPATH=str(ROOT))
        cmd = [sys.executable, "-m", "mrcnn_np", "ablate", POOLED_TABLE, "--quick", "--workers", "1", "--no-progress",
               "--out", str(Path(tmp) / "o"), "--data-root", str(Path(tmp) / "d"), "--runs-root", str(Path(tmp) / "r")]
        for key in ("cold_cache_seconds", "warm_cache_seconds"):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=ROOT)
            out[key] = round(time.perf_counter() - t0, 1)
            print(f"smoke run of ablate {POOLED_TABLE} --quick: {key} {out[key]} s", file=sys.stderr, flush=True)
    return out


# ---------------------------------------------------------------- printing
def _s(x) -> str:
    return "–" if x is None else f"{x:.0f} s" if x < 120 else f"{x / 60:.1f} min"


def block() -> str:
    """The markdown between the workshop-times markers of docs/WORKSHOP.md."""
    store = json.loads(STORE.read_text()) if STORE.is_file() else {}
    sols = store.get("solutions", {})
    report = workshop_report()
    run_s = None
    if report:
        secs = [r.get("seconds") for r in report["runs"] if r.get("seconds")]
        run_s = sum(secs) / len(secs) if secs else None
    lines = [f"Measured on {store.get('cpus', os.cpu_count())} CPU cores ({platform.machine()}); printed by "
             "`python -m bench.workshop_times` from the notebooks' render stamps, `results/workshop_times.json` "
             "(`--measure`) and the committed workshop report.", ""]
    for plan, rows in PLANS.items():
        lines += [f"**{plan}**", "", "| min | what | notebooks (full mode) | exercises (solution run) | bugs |",
                  "|---:|---|---|---|---|"]
        total = 0
        for minutes, what, nbs, exercises, bugs, pooled in rows:
            total += minutes
            nb_cells = ", ".join(f"`{n[:2]}` {_s(rendered_full_seconds(n))}" for n in nbs) or "–"
            ex_cells = ", ".join(f"{e} ({_s(sols.get(_sol_stem(e[:2]), {}).get('full'))})" for e in exercises) or "–"
            if pooled == "run":
                what += f" — one workshop run: {_s(run_s)} on one core" if run_s else ""
            lines.append(f"| {minutes} | {what} | {nb_cells} | {ex_cells} | {', '.join(f'`{b}`' for b in bugs) or '–'} |")
        lines += [f"| **{total}** | | | | |", ""]
    if report:
        r = report
        lines += [f"**The pooled table** (`ablate {POOLED_TABLE} --workshop`, {len(r['variants'])} variants x "
                  f"{len(r['seeds'])} seeds, {r['recipe']['iterations']} iterations): one run {_s(run_s)} of "
                  f"training and evaluation on one core; the whole table {_s(r['wall_seconds'])} on this machine "
                  f"({r['executor']}); its data set {_s(r['data_seconds'])}.", ""]
    if store.get("setup"):
        st = store["setup"]
        lines += [f"**Before the class**: the first smoke run of a table (`ablate {POOLED_TABLE} --quick`) in a "
                  f"fresh process with an empty numba cache took {_s(st['cold_cache_seconds'])}, the second one "
                  f"{_s(st['warm_cache_seconds'])}: run it once on every laptop before the class.", ""]
    if sols:
        lines += ["**Solution notebooks** (`notebooks/solutions/`, quick mode as CI runs them / full mode):", "",
                  "| notebook | quick | full |", "|---|---:|---:|"]
        lines += [f"| `{k}` | {_s(v.get('quick'))} | {_s(v.get('full'))} |" for k, v in sorted(sols.items())]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _sol_stem(nn: str):
    for p in solution_paths():
        if p.name.startswith(nn):
            return p.stem
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure", action="store_true",
                    help="execute the solution notebooks and time the set-up, store results/workshop_times.json")
    args = ap.parse_args(argv)
    if args.measure:
        store = {"cpus": os.cpu_count(), "measured": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                 "solutions": measure_solutions(), "setup": measure_setup()}
        STORE.write_text(json.dumps(store, indent=1) + "\n")
        print(f"wrote {STORE}", file=sys.stderr)
    print(block(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
