"""What every study's report shares: mean ± std over seeds, the git commit, number formats, the files.

A report is a plain dict (written as JSON next to its markdown) with at least::

    command, seeds, git_commit, git_dirty, quick, finished, executor, wall_seconds, recipe, data,
    variants: [{"label", "paper", "ours": {metric: mean_std}, "failed_runs", ...}],
    runs: [{"variant", "seed", "metrics": {metric: float or None} or None, "seconds", ...}]

Metrics are percentages (COCO AP x 100, as the paper); ``mean_std`` uses the sample
standard deviation (ddof 1), None for one seed.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path


def mean_std(values) -> dict:
    """{"mean", "std", "n"} of the finite values; std is the sample std (ddof 1), None for n < 2."""
    v = [float(x) for x in values if x is not None and math.isfinite(x)]
    if not v:
        return {"mean": None, "std": None, "n": 0}
    m = sum(v) / len(v)
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else None
    return {"mean": m, "std": s, "n": len(v)}


def aggregate(runs, labels, metrics) -> dict:
    """{variant label: {metric: mean_std over its finished seeds}} for ``labels`` (in that order)."""
    out = {}
    for label in labels:
        mine = [r["metrics"] for r in runs if r["variant"] == label and r.get("metrics")]
        out[label] = {m: mean_std([r.get(m) for r in mine]) for m in metrics}
    return out


def fmt_pm(stat) -> str:
    """A mean_std as "12.3 ± 1.4" ("12.3" for one seed, "–" for none)."""
    if stat is None or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.1f}" + (f" ± {stat['std']:.1f}" if stat.get("std") is not None else "")


def fmt_num(x) -> str:
    """A number with one decimal, "–" for None."""
    return "–" if x is None else f"{x:.1f}"


def fmt_delta(x, ref) -> str:
    """x - ref with its sign, "–" if either is None."""
    return "–" if x is None or ref is None else f"{x - ref:+.1f}"


def git_commit():
    """(commit hash, has uncommitted changes) of the source tree, or (None, None) outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=30)
        return head.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def commit_label(report: dict) -> str:
    """The report's git commit as written in the markdown ("unknown" outside git; dirty trees flagged)."""
    commit = report["git_commit"] or "unknown (not a git checkout)"
    return commit + (" (with uncommitted changes)" if report["git_dirty"] else "")


def heading(kind: str, report: dict) -> str:
    """The markdown's first line: "# <kind>: <title> — paper <table>", marked when it is a quick smoke run."""
    return (f"# {kind}: {report['title']} — paper {report['paper_table']}"
            + (" (quick smoke run, not a result)" if report["quick"] else ""))


def opening(kind: str, report: dict, intro: str, table: str) -> list:
    """The markdown's opening lines: the heading, a paragraph saying what the numbers are, the table."""
    return [heading(kind, report), "", intro, "", table, ""]


def reproduce_section(report: dict, times: str) -> list:
    """The markdown lines of "## Reproduce": the command, seeds, commit, and the wall time (``times``: its details)."""
    r = report
    return ["## Reproduce", "", f"- command: `{r['command']}`", f"- seeds: {r['seeds']}; git commit: {commit_label(r)}",
            f"- wall time: {r['wall_seconds'] / 60:.1f} min ({times}), {r['executor']}, finished {r['finished']}"]


def note_section(report: dict) -> list:
    """The markdown lines of a report's ``note`` (added to the JSON by hand: how the run went)."""
    return ["", "## Note", "", report["note"]] if report.get("note") else []


def write_report(report: dict, stem: Path, markdown: str) -> list:
    """Write ``stem``.json and ``stem``.md (the folder is made); returns their paths as strings."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, js = stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".json")
    js.write_text(json.dumps(report, indent=1, default=list) + "\n")
    md.write_text(markdown)
    return [str(md), str(js)]


__all__ = ["aggregate", "commit_label", "fmt_delta", "fmt_num", "fmt_pm", "git_commit", "heading", "mean_std",
           "note_section", "reproduce_section", "write_report"]
