"""Ablation tables as pictures: our numbers (mean ± std over seeds) beside the paper's.

Mask R-CNN §4.2, Table 2: each table changes one design choice and retrains. The
notebooks 12-16 read a report of ``mrcnn_np.studies.tables.run_table`` (or its JSON file)
and show it with :func:`plot_ablation`: one panel with ours (teaching model, synthetic
shapes), one with the paper's COCO numbers, on separate axes because the scales differ;
only the differences within a panel are meant to be compared.

:func:`compare_variants` does the arithmetic of the notebooks' "does it reproduce?" cells:
the difference of two variants' means, the seeds' spread, and how many seeds agree. It
reads the report's numbers only (no model code).

Shapes::

    report: {"variants": [{"label", "group", "paper": {metric: float},
                           "ours": {metric: {"mean", "std", "n"}}, "failed_runs"}, ...],
             "runs": [{"variant", "seed", "metrics": {metric: float} or None}, ...], ...}
    V variants, Q metrics: V bar groups of Q bars per panel
"""

from __future__ import annotations

import numpy as np

METRIC_NAMES = {"mask_AP": "mask AP", "mask_AP50": "mask AP50", "mask_AP75": "mask AP75",
                "box_AP": "box AP", "box_AP50": "box AP50", "box_AP75": "box AP75"}


def _variant(report, label):
    for v in report["variants"]:
        if v["label"] == label:
            return v
    raise ValueError(f"the report has no variant {label!r}; it has {[v['label'] for v in report['variants']]}")


def _check_metrics(metrics):
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty list from {list(METRIC_NAMES)}, got {list(metrics)}")


def _bars(ax, labels, values, errors, metrics, groups):
    """V groups of Q bars; a missing value (None) leaves a gap marked "–"."""
    v, q = len(labels), len(metrics)
    width = 0.8 / q
    x = np.arange(v)
    for j, m in enumerate(metrics):
        pos = x + (j - (q - 1) / 2) * width
        vals = np.array([np.nan if values[i][j] is None else values[i][j] for i in range(v)], float)
        err = None
        if errors is not None:
            # no error bar where there is no std (one seed): NaN draws nothing
            err = np.array([np.nan if errors[i][j] is None else errors[i][j] for i in range(v)], float)
        ax.bar(pos, np.nan_to_num(vals), width, yerr=err, capsize=2, label=METRIC_NAMES[m],
               color=f"C{j}", error_kw=dict(lw=0.8))
        for p, val in zip(pos, vals):
            if np.isnan(val):
                ax.text(p, 0, "–", ha="center", va="bottom", fontsize=8, color="0.4")
    for i in range(1, v):                       # a thin line between groups (e.g. stride 16 | stride 32)
        if groups[i] != groups[i - 1]:
            ax.axvline(i - 0.5, color="0.6", lw=0.8, ls="--")
    ax.set_xticks(x, labels, rotation=25 if v > 3 else 0, ha="right" if v > 3 else "center", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_ablation(report, metrics=("mask_AP", "mask_AP50", "mask_AP75"), axes=None, title=None,
                  size: float = 4.2):
    """Ours (mean ± sample std over seeds) and the paper's numbers, one bar group per variant.

    report: a ``run_table`` report (or the JSON it wrote). metrics: names from METRICS of
    ``mrcnn_np.studies.ablation``. axes: two Axes to draw on (else a new figure: 1 x 2, or 2 x 1
    above five variants). A variant without a number (the paper did not report it; all our
    runs diverged) gets "–". Returns the two Axes (ours, paper).
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415 (imported on first drawing only)

    metrics = tuple(metrics)
    _check_metrics(metrics)
    variants = report["variants"]
    if not variants:
        raise ValueError("the report has no variants")
    if axes is None:   # side by side; one above the other when there are many variants
        width = max(size, 0.9 * len(variants) + 1.5)
        stacked = len(variants) > 5
        _, axes = plt.subplots(2 if stacked else 1, 1 if stacked else 2,
                               figsize=(width, 7.6) if stacked else (2 * width, 3.8))
    ax_ours, ax_paper = axes
    labels = [v["label"] for v in variants]
    groups = [v.get("group", "") for v in variants]
    means = [[v["ours"][m]["mean"] for m in metrics] for v in variants]
    stds = [[v["ours"][m]["std"] for m in metrics] for v in variants]
    _bars(ax_ours, labels, means, stds, metrics, groups)
    seeds = max((v["ours"][metrics[0]]["n"] for v in variants), default=0)
    quick = " — quick smoke run, not a measurement" if report.get("quick") else ""
    ax_ours.set_title(f"ours: mean ± std over {seeds} seed(s){quick}", fontsize=9)
    ax_ours.set_ylabel("AP (x 100)")
    ax_ours.legend(fontsize=7)
    paper = [[v["paper"].get(m) for m in metrics] for v in variants]
    if any(x is not None for row in paper for x in row):
        _bars(ax_paper, labels, paper, None, metrics, groups)
        ax_paper.set_title(f"paper ({report.get('paper_table', '')}, COCO)", fontsize=9)
        ax_paper.set_ylabel("AP (x 100)")
    else:
        ax_paper.text(0.5, 0.5, "not in the paper", ha="center", va="center", transform=ax_paper.transAxes)
        ax_paper.set_xticks([])
        ax_paper.set_yticks([])
    if title:
        ax_ours.figure.suptitle(title, fontsize=10)
    ax_ours.figure.tight_layout()
    return ax_ours, ax_paper


def compare_variants(report, better: str, worse: str, metric: str = "mask_AP") -> dict:
    """Does ``better`` beat ``worse`` on ``metric``, and by more than the seeds' spread?

    Returns a dict: diff (mean of better - mean of worse, None if either is missing),
    holds (diff > 0, or None), spread (std of better + std of worse: the ±1 std bars stop
    overlapping when |diff| exceeds it; None with fewer than two seeds), beyond_spread
    (|diff| > spread, or None), wins / paired (seeds in which better > worse / seeds with
    both numbers; runs pair by seed), paper_diff (the paper's difference, or None).
    """
    _check_metrics([metric])
    a, b = _variant(report, better), _variant(report, worse)
    sa, sb = a["ours"][metric], b["ours"][metric]
    diff = None if sa["mean"] is None or sb["mean"] is None else sa["mean"] - sb["mean"]
    spread = None if sa["std"] is None or sb["std"] is None else sa["std"] + sb["std"]
    per_seed = {}
    for run in report.get("runs", []):
        value = (run.get("metrics") or {}).get(metric)
        if value is not None and run["variant"] in (better, worse):
            per_seed.setdefault(run["seed"], {})[run["variant"]] = value
    pairs = [(s[better], s[worse]) for s in per_seed.values() if better in s and worse in s]
    pa, pb = a["paper"].get(metric), b["paper"].get(metric)
    return {"better": better, "worse": worse, "metric": metric, "diff": diff,
            "holds": None if diff is None else diff > 0, "spread": spread,
            "beyond_spread": None if diff is None or spread is None else abs(diff) > spread,
            "wins": sum(x > y for x, y in pairs), "paired": len(pairs),
            "paper_diff": None if pa is None or pb is None else pa - pb}


def format_comparison(c: dict) -> str:
    """One line for a :func:`compare_variants` result, e.g. for a notebook's print."""
    name = METRIC_NAMES[c["metric"]]
    head = f"{c['better']}  vs  {c['worse']}  ({name}): "
    if c["diff"] is None:
        return head + "no number for one of them (all runs diverged?)"
    verdict = "holds" if c["holds"] else "does NOT hold"
    spread = ("one seed: spread unknown" if c["spread"] is None else
              f"{'beyond' if c['beyond_spread'] else 'within'} the seeds' spread (std sum {c['spread']:.1f})")
    paper = "" if c["paper_diff"] is None else f"; paper {c['paper_diff']:+.1f}"
    return head + f"Δ = {c['diff']:+.1f} → {verdict}, {spread}; better in {c['wins']}/{c['paired']} seeds{paper}"
