"""mrcnn_np.viz.ablation: the bar chart of an ablation report and the comparison arithmetic
of the notebooks' "does it reproduce?" cells, on a hand-made report with known numbers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mrcnn_np.studies.ablation import METRICS  # noqa: E402
from mrcnn_np.studies.report import aggregate  # noqa: E402
from mrcnn_np.viz import compare_variants, format_comparison, plot_ablation  # noqa: E402


def _run(label, seed, ap):
    return {"variant": label, "seed": seed,
            "metrics": None if ap is None else {m: ap + i for i, m in enumerate(METRICS)}}


def _report(paper=True):
    # A: mask AP 10, 12, 14 (mean 12, std 2); B: 20, 21, 22 (mean 21, std 1); C: all diverged
    runs = [_run("A", s, ap) for s, ap in enumerate((10.0, 12.0, 14.0))]
    runs += [_run("B", s, ap) for s, ap in enumerate((20.0, 21.0, 22.0))]
    runs += [_run("C", s, None) for s in range(3)]
    agg = aggregate(runs, ["A", "B", "C"], METRICS)
    papers = {"A": {"mask_AP": 26.9, "mask_AP50": 48.8, "mask_AP75": 26.4}, "B": {"mask_AP": 30.3}, "C": {}}
    variants = [{"label": k, "group": "g1" if k != "C" else "g2", "changes": {}, "paper": papers[k] if paper else {},
                 "ours": agg[k], "failed_runs": 3 * (k == "C")} for k in ("A", "B", "C")]
    return {"paper_table": "Table 2c", "quick": False, "variants": variants, "runs": runs}


def test_plot_draws_means_and_std_error_bars():
    ax_ours, ax_paper = plot_ablation(_report())
    bars = ax_ours.patches                      # 3 metrics x 3 variants, metric-major
    assert len(bars) == 9
    np.testing.assert_allclose([b.get_height() for b in bars[:3]], [12.0, 21.0, 0.0])   # mask AP; C: none
    np.testing.assert_allclose([b.get_height() for b in bars[3:6]], [13.0, 22.0, 0.0])  # AP50 = AP + 1 here
    # error bar of A's mask AP spans mean ± std = 12 ± 2; C (no std) gets none: 2 x 3 bars drawn
    segments = [np.asarray(seg) for c in ax_ours.collections for seg in c.get_segments()]
    spans = [(round(float(s[:, 1].min()), 6), round(float(s[:, 1].max()), 6))
             for s in segments if s.ndim == 2 and len(s) and np.isfinite(s).all()]
    assert (10.0, 14.0) in spans and len(spans) == 6
    assert "–" in [t.get_text() for t in ax_ours.texts]                # C diverged: marked, no bar
    assert [t.get_text() for t in ax_ours.get_xticklabels()] == ["A", "B", "C"]
    paper_heights = [b.get_height() for b in ax_paper.patches[:3]]
    np.testing.assert_allclose(paper_heights, [26.9, 30.3, 0.0])
    plt.close(ax_ours.figure)


def test_plot_without_paper_numbers_says_so():
    ax_ours, ax_paper = plot_ablation(_report(paper=False), metrics=("mask_AP75",))
    assert len(ax_ours.patches) == 3 and len(ax_paper.patches) == 0
    assert [t.get_text() for t in ax_paper.texts] == ["not in the paper"]
    plt.close(ax_ours.figure)


def test_compare_variants_difference_spread_and_seeds():
    c = compare_variants(_report(), "B", "A")
    assert c["diff"] == pytest.approx(9.0) and c["holds"] is True
    assert c["spread"] == pytest.approx(3.0) and c["beyond_spread"] is True
    assert (c["wins"], c["paired"]) == (3, 3)
    assert c["paper_diff"] == pytest.approx(30.3 - 26.9)
    back = compare_variants(_report(), "A", "B", "mask_AP75")
    assert back["holds"] is False and back["wins"] == 0 and back["paper_diff"] is None
    line = format_comparison(c)
    assert "+9.0" in line and "holds" in line and "beyond" in line and "3/3" in line
    assert "does NOT hold" in format_comparison(back)
    missing = compare_variants(_report(), "C", "A")
    assert missing["diff"] is None and missing["holds"] is None and missing["paired"] == 0
    assert "no number" in format_comparison(missing)


def test_one_seed_has_no_spread():
    r = _report()
    r["runs"] = [x for x in r["runs"] if x["seed"] == 0]
    for v in r["variants"]:
        v["ours"] = aggregate(r["runs"], [v["label"]], METRICS)[v["label"]]
    c = compare_variants(r, "B", "A")
    assert c["diff"] == pytest.approx(10.0) and c["spread"] is None and c["beyond_spread"] is None
    assert "spread unknown" in format_comparison(c)


def test_bad_names_are_clear_errors():
    with pytest.raises(ValueError, match="no variant 'D'"):
        compare_variants(_report(), "D", "A")
    with pytest.raises(ValueError, match="metrics must be"):
        compare_variants(_report(), "B", "A", metric="AP")
    with pytest.raises(ValueError, match="metrics must be"):
        plot_ablation(_report(), metrics=())
