"""The paper's claims, one by one, and what our runs say about each: machine-readable verdicts.

Each ablation table (and Table 4) declares the claims of the paper it can test as ``Claim``
objects. ``findings(report, claims)`` compares the variants' numbers in a finished report
(``results/<stem>.json``) and returns one dict per claim::

    {"key", "table", "claim", "kind", "metric", "variants": [labels], "paper_delta", "our_delta",
     "spread", "seeds", "verdict", "why", "needs_seeds", "beyond_spread", "also": {metric: our Δ}}

Differences are means over seeds (COCO AP x 100). The *spread* of a difference is the sum of
the sample standard deviations of the numbers it is made of (two for a plain difference, four
for a difference of differences): when |Δ| exceeds it, the ±1 std bars of the two sides stop
overlapping. This is the project's definition of "beyond the spread" (it is not a significance
test; with 3 seeds it is a rough but honest guard against reading noise as an effect).

Verdicts, by the kind of claim:

``better`` (the paper: *a* beats *b*; Δ = a - b)
    "reproduces"  Δ > spread (beyond the spread, in the paper's direction)
    "contradicts" Δ < -spread (beyond the spread, the other way)
    "undecided"   |Δ| <= spread; ``needs_seeds`` is True while fewer than 5 seeds were run
``larger_gain`` (the paper: the gain of *a* over *b* is larger in the second group; Δ = (a2 - b2) - (a1 - b1))
    as ``better``, on the difference of differences
``no_better`` (the paper: *a* is no better than *b*, e.g. RoIWarp vs RoIPool; Δ = a - b)
    "contradicts" Δ > spread (a beats b beyond the spread), else "reproduces"
``no_worse`` (the paper: *a* is nearly as good as *b*, e.g. class-agnostic masks; Δ = a - b)
    "contradicts" Δ < -spread (a loses beyond the spread), else "reproduces"
``similar`` (the paper: *a* ≈ *b*, e.g. max vs average inside RoIAlign; Δ = a - b)
    "reproduces" |Δ| <= spread, else "contradicts"

The last three read "the seeds cannot tell them apart" as agreement with a claim of
(near-)equality: weaker evidence than a decided ``better`` claim, and said so in ``why``.
A claim whose variants are missing from the report, or whose numbers are missing (all runs
diverged), or which has one seed, is "undecided" with the reason in ``why``.

    python -m mrcnn_np.studies.findings results/ablation_mask_loss.json           # print the verdicts
    python -m mrcnn_np.studies.findings --write results/ablation_*.json  # judge again, rewrite .json/.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VERDICTS = ("reproduces", "contradicts", "undecided")
KINDS = ("better", "larger_gain", "no_better", "no_worse", "similar")
SEEDS_TO_DECIDE = 5   # "undecided" is final only after this many seeds


@dataclass(frozen=True)
class Claim:
    """One claim of the paper about two variants (four for ``larger_gain``) of one table.

    variants: labels as in the table; ``better``/``no_better``/``no_worse``/``similar``: (a, b);
    ``larger_gain``: (a1, b1, a2, b2), the gain a - b in group 1 and in group 2.
    also: further metrics whose Δ is reported beside (e.g. AP75 for "most at AP75").
    paper_delta: the paper's Δ when the variants' ``paper`` dicts do not hold it flat (Table 4).
    """

    key: str
    table: str
    text: str
    kind: str
    variants: tuple
    metric: str = "mask_AP"
    also: tuple = ()
    paper_delta: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.key!r}: kind must be one of {KINDS}, got {self.kind!r}")
        want = 4 if self.kind == "larger_gain" else 2
        if len(self.variants) != want:
            raise ValueError(f"claim {self.key!r}: kind {self.kind!r} takes {want} variants, got {self.variants}")


def _variant(report: dict, label: str) -> dict | None:
    for v in report.get("variants", []):
        if v["label"] == label:
            return v
    return None


def _stat(v: dict, metric: str):
    s = v["ours"].get(metric) or {}
    return s.get("mean"), s.get("std"), s.get("n", 0)


def _delta(report: dict, claim: Claim, metric: str):
    """(our Δ, spread, smallest seed count, paper Δ) of ``claim`` on ``metric``; None where unknown."""
    vs = [_variant(report, label) for label in claim.variants]
    if any(v is None for v in vs):
        return None, None, 0, None
    stats = [_stat(v, metric) for v in vs]
    signs = (1, -1) if len(vs) == 2 else (-1, 1, 1, -1)   # a - b, or (a2 - b2) - (a1 - b1)
    means = [m for m, _, _ in stats]
    ours = None if any(m is None for m in means) else sum(s * m for s, m in zip(signs, means))
    stds = [s for _, s, _ in stats]
    spread = None if any(s is None for s in stds) else sum(stds)
    papers = [v.get("paper", {}).get(metric) for v in vs]
    paper = None if any(not isinstance(p, (int, float)) for p in papers) else sum(s * p for s, p in zip(signs, papers))
    if metric == claim.metric and claim.paper_delta is not None:
        paper = claim.paper_delta
    return ours, spread, min(n for _, _, n in stats), paper


def _verdict(kind: str, delta: float, spread: float) -> tuple[str, str]:
    beyond_up, beyond_down = delta > spread, delta < -spread
    if kind in ("better", "larger_gain"):
        if beyond_up:
            return "reproduces", "beyond the spread, in the paper's direction"
        if beyond_down:
            return "contradicts", "beyond the spread, the other way"
        return "undecided", "within the spread"
    if kind == "no_better":
        return (("contradicts", "the first beats the second beyond the spread") if beyond_up else
                ("reproduces", "not better beyond the spread: the seeds cannot put it ahead"))
    if kind == "no_worse":
        return (("contradicts", "the first loses beyond the spread") if beyond_down else
                ("reproduces", "not worse beyond the spread: the seeds cannot put it behind"))
    return (("contradicts", "they differ beyond the spread") if beyond_up or beyond_down else
            ("reproduces", "within the spread: the seeds cannot tell them apart"))


def finding(report: dict, claim: Claim) -> dict:
    """The verdict on one claim from a finished report (see the module docstring)."""
    ours, spread, n, paper = _delta(report, claim, claim.metric)
    out = {"key": claim.key, "table": claim.table, "claim": claim.text, "kind": claim.kind,
           "metric": claim.metric, "variants": list(claim.variants), "paper_delta": _round(paper),
           "our_delta": _round(ours), "spread": _round(spread), "seeds": n}
    missing = [label for label in claim.variants if _variant(report, label) is None]
    if missing:
        out.update(verdict="undecided", why=f"not run: no variant {missing} in this table", needs_seeds=False)
    elif ours is None:
        unrun = [label for label in claim.variants if not _variant(report, label).get("failed_runs")
                 and _stat(_variant(report, label), claim.metric)[0] is None]
        why = (f"no run of {unrun} yet" if unrun else "no number for a variant (all its runs diverged)")
        out.update(verdict="undecided", why=why, needs_seeds=bool(unrun))
    elif spread is None or n < 2:
        out.update(verdict="undecided", why="one seed: the spread is unknown", needs_seeds=True)
    else:
        verdict, why = _verdict(claim.kind, ours, spread)
        out.update(verdict=verdict, why=why, needs_seeds=verdict == "undecided" and n < SEEDS_TO_DECIDE)
    out["beyond_spread"] = bool(out["our_delta"] is not None and out["spread"] is not None and out["seeds"] >= 2
                                and abs(ours) > spread)
    out["also"] = {m: _round(_delta(report, claim, m)[0]) for m in claim.also}
    return out


def findings(report: dict, claims) -> list:
    """``finding`` for every claim, in order."""
    return [finding(report, c) for c in claims]


def _round(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 2)


def _num(x) -> str:
    return "–" if x is None else f"{x:+.1f}"


def _spread(f: dict) -> str:
    return "–" if f["spread"] is None else f"{f['spread']:.1f}"


def format_finding(f: dict) -> str:
    """One line: the claim, the paper's Δ, ours ± spread, the verdict."""
    spread = "" if f["spread"] is None else f" (spread {f['spread']:.1f})"
    more = "; 5 seeds would be needed to call it undecided for good" if f.get("needs_seeds") else ""
    also = "".join(f"; {m} Δ {_num(d)}" for m, d in f.get("also", {}).items())
    return (f"{f['verdict'].upper():11s} {f['claim']}: paper Δ {_num(f['paper_delta'])}, ours "
            f"{_num(f['our_delta'])}{spread}, {f['seeds']} seeds: {f['why']}{also}{more}")


def findings_section(report: dict) -> list:
    """Markdown lines: a table of the report's ``findings`` (empty when it has none)."""
    rows = report.get("findings") or []
    if not rows:
        return []
    lines = ["## Findings: the paper's claims", "",
             "Δ in AP points (x 100), ours as the mean over seeds; spread = the sum of the standard deviations "
             "involved; verdicts as defined in `mrcnn_np/studies/findings.py` and docs/ABLATIONS.md.", "",
             "| claim | metric | paper Δ | our Δ | spread | seeds | verdict |", "|---|---|---|---|---|---|---|"]
    for f in rows:
        spread = _spread(f)
        also = "".join(f"; {m} Δ {_num(d)}" for m, d in f.get("also", {}).items())
        lines.append(f"| {f['claim']} | {f['metric']}{also} | {_num(f['paper_delta'])} | {_num(f['our_delta'])} | "
                     f"{spread} | {f['seeds']} | **{f['verdict']}** ({f['why']}) |")
    decided = sum(f["verdict"] != "undecided" for f in rows)
    beyond = sum(f["verdict"] != "undecided" and f.get("beyond_spread", False) for f in rows)
    others = decided - beyond
    lines += ["", f"{decided} of {len(rows)} claim(s) decided, {beyond} by a difference beyond the spread"
              + (f", {others} as near-equality the seeds cannot tell apart." if others else "."), ""]
    return lines


def study_of(report: dict):
    """The registered study a report belongs to (an ablation table or Table 4), or ValueError."""
    from mrcnn_np.studies import keypoints_table4  # noqa: PLC0415
    from mrcnn_np.studies.registry import get_table  # noqa: PLC0415

    if "table" in report:
        return get_table(report["table"])
    if report.get("title") == keypoints_table4.STUDY.title:
        return keypoints_table4.STUDY
    raise ValueError("not a table report (no 'table' field, not the keypoints Table 4)")


# The paper's claims that no study tests yet (the README's summary lists them as "not run").
NOT_STUDIED: tuple = ()   # (table, claim) pairs; every claim of the issue has a study since the multitask table
SUMMARY_TABLES = ("backbone", "mask_loss", "roi", "mask_head", "multitask", "keypoints")   # in the order of the paper's tables


def summary_markdown(names=SUMMARY_TABLES) -> str:
    """The README's summary of every claim: one row per claim and committed report (from scratch, from
    the pretrained bodies), the stored verdict, and a count that takes, per claim, the pretrained
    report's verdict where there is one (the paper's setting), else the scratch one's."""
    rows = ["| table | the paper's claim | body | paper Δ | our Δ | spread | seeds | verdict |",
            "|---|---|---|---|---|---|---|---|"]
    latest = {}
    for name in names:
        for _, path, report in stored_reports(name):
            body = report.get("backbone_init", "scratch")
            for f in report.get("findings") or []:
                spread = _spread(f)
                rows.append(f"| {f['table']} | {f['claim']} | {body} | {_num(f['paper_delta'])} | "
                            f"{_num(f['our_delta'])} | {spread} | {f['seeds']} | **{f['verdict']}** |")
                if body == "pretrained" or f["key"] not in latest:
                    latest[f["key"]] = f
    for table, claim in NOT_STUDIED:
        rows.append(f"| {table} | {claim} | – | – | – | – | 0 | not run (no study yet) |")
    total = len(latest) + len(NOT_STUDIED)
    decided = [f for f in latest.values() if f["verdict"] != "undecided"]
    beyond = sum(f.get("beyond_spread", False) for f in decided)
    return "\n".join(rows) + (
        f"\n\n{len(decided)} of the paper's {total} claims are decided ({beyond} by a difference beyond the spread, "
        f"{len(decided) - beyond} as near-equalities the seeds cannot tell apart); per claim the count takes the "
        "run from the pretrained bodies where there is one. Printed by `python -m mrcnn_np.studies.findings --summary`.")


def stored_reports(name: str) -> list:
    """The committed reports of table ``name`` (or "keypoints" for Table 4) in ``results/``, as
    (description, path, report): the table's default body (``ablation_<name>.json``), then the other
    body when that file exists (``ablation_<name>_pretrained.json``; ``report["backbone_init"]`` says which)."""
    from mrcnn_np.paths import results_dir  # noqa: PLC0415

    stem = "keypoints_table4" if name == "keypoints" else f"ablation_{name}"
    out = []
    for suffix, words in (("", "the table's default body"), ("_pretrained", "from the pretrained bodies")):
        path = results_dir() / f"{stem}{suffix}.json"
        if path.is_file():
            out.append((words, path, _load(path)))
    return out


def print_verdicts(name: str) -> list:
    """Print the stored verdicts of table ``name``'s committed reports (notebooks 12-17) and check that
    each is what today's claims say about the report's own numbers; returns the reports printed."""
    reports = stored_reports(name)
    for words, path, report in reports:
        rows = report.get("findings")
        print(f"{path.name} (backbone body: {report.get('backbone_init', 'scratch')}, {len(report['seeds'])} seeds, "
              f"commit {str(report['git_commit'])[:8]}):")
        if not rows:
            print("  no claim of the paper to judge in this table")
            continue
        again = findings(report, study_of(report).claims)
        if [(f["key"], f["verdict"]) for f in again] != [(f["key"], f["verdict"]) for f in rows]:
            raise ValueError(f"{path}: the stored verdicts are not today's: run "
                             f"python -m mrcnn_np.studies.findings --write {path}")
        for f in rows:
            print("  " + format_finding(f))
    if not reports:
        print(f"no committed report of {name!r} in results/")
    return [r for _, _, r in reports]


def _load(path) -> dict:
    import json  # noqa: PLC0415

    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read a report: {e}") from None
    if not isinstance(report, dict):
        raise ValueError(f"{path}: cannot read a report: a JSON object was expected")
    return report


def refresh(path) -> dict:
    """Judge the claims of the report at ``path`` again with today's claims and write its .json and .md back.

    For committed reports made before the verdicts existed: the verdicts are a function of the
    numbers already in the report, so nothing is retrained and no number changes; the report's
    recorded command, commit and runs stay as they were."""
    from pathlib import Path  # noqa: PLC0415

    from mrcnn_np.studies.report import write_report  # noqa: PLC0415

    path = Path(path)
    report = _load(path)
    try:
        study = study_of(report)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    report["findings"] = findings(report, study.claims)
    write_report(report, path.with_suffix(""), study.format_markdown(report))
    return report


def main(argv=None) -> int:
    import argparse  # noqa: PLC0415
    import sys  # noqa: PLC0415

    ap = argparse.ArgumentParser(description="print the verdicts stored in study reports")
    ap.add_argument("reports", nargs="*", help="results/<stem>.json files")
    ap.add_argument("--summary", action="store_true",
                    help="print the README's markdown summary of every claim from the committed reports in results/")
    ap.add_argument("--write", action="store_true",
                    help="judge the claims again from the report's numbers and write its .json and .md back")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary_markdown())
        return 0
    if not args.reports:
        ap.error("give report files, or --summary")
    for path in args.reports:
        try:
            if args.write:
                report = refresh(path)
            else:
                report = _load(path)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{path}:")
        for row in report.get("findings") or []:
            print("  " + format_finding(row))
        if not report.get("findings"):
            print("  (no findings recorded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["KINDS", "SEEDS_TO_DECIDE", "VERDICTS", "Claim", "finding", "findings", "findings_section",
           "format_finding", "print_verdicts", "refresh", "stored_reports", "study_of", "summary_markdown"]
