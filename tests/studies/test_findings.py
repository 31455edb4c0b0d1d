"""The verdicts on the paper's claims (``mrcnn_np.studies.findings``, docs/ABLATIONS.md)."""

import json
import re
import shutil
from pathlib import Path

import pytest

from mrcnn_np.studies import findings as F
from mrcnn_np.studies import keypoints_table4
from mrcnn_np.studies.registry import ABLATION_TABLES, get_table

RESULTS = Path(__file__).resolve().parents[2] / "results"


def _report(stats: dict, paper: dict | None = None) -> dict:
    """A report with one variant per label: stats {label: (mean, std, n)} on mask_AP."""
    return {"variants": [{"label": k, "paper": {"mask_AP": (paper or {}).get(k)} if paper and k in paper else {},
                          "ours": {"mask_AP": {"mean": m, "std": s, "n": n}}} for k, (m, s, n) in stats.items()]}


@pytest.mark.parametrize("kind, a, b, verdict", [
    ("better", 12.0, 10.0, "reproduces"),      # Δ 2 > spread 1
    ("better", 10.0, 12.0, "contradicts"),
    ("better", 10.4, 10.0, "undecided"),       # within the spread
    ("no_better", 12.0, 10.0, "contradicts"),  # a ahead beyond the spread
    ("no_better", 8.0, 10.0, "reproduces"),    # behind counts as "no better"
    ("no_better", 10.4, 10.0, "reproduces"),
    ("no_worse", 8.0, 10.0, "contradicts"),
    ("no_worse", 12.0, 10.0, "reproduces"),
    ("similar", 10.4, 10.0, "reproduces"),
    ("similar", 8.0, 10.0, "contradicts"),
    ("similar", 12.0, 10.0, "contradicts"),
])
def test_verdict_by_kind(kind, a, b, verdict):
    report = _report({"A": (a, 0.5, 3), "B": (b, 0.5, 3)}, paper={"A": 31.0, "B": 30.0})
    f = F.finding(report, F.Claim("k", "t", "A vs B", kind, ("A", "B")))
    assert f["verdict"] == verdict
    assert f["our_delta"] == pytest.approx(a - b) and f["spread"] == pytest.approx(1.0) and f["seeds"] == 3
    assert f["paper_delta"] == pytest.approx(1.0)
    assert f["beyond_spread"] == (abs(a - b) > 1.0)
    assert f["needs_seeds"] == (verdict == "undecided")   # 3 < 5 seeds


def test_undecided_after_five_seeds_needs_no_more():
    f = F.finding(_report({"A": (10.4, 0.5, 5), "B": (10.0, 0.5, 5)}), F.Claim("k", "t", "c", "better", ("A", "B")))
    assert f["verdict"] == "undecided" and f["needs_seeds"] is False and f["paper_delta"] is None


def test_larger_gain_is_a_difference_of_differences_with_four_stds():
    report = _report({"a1": (20.0, 0.5, 3), "b1": (18.0, 0.5, 3), "a2": (15.0, 0.25, 3), "b2": (10.0, 0.25, 3)},
                     paper={"a1": 30.3, "b1": 26.9, "a2": 30.9, "b2": 23.6})
    f = F.finding(report, F.Claim("k", "2d", "c", "larger_gain", ("a1", "b1", "a2", "b2")))
    assert f["our_delta"] == pytest.approx((15 - 10) - (20 - 18)) and f["spread"] == pytest.approx(1.5)
    assert f["paper_delta"] == pytest.approx((30.9 - 23.6) - (30.3 - 26.9), abs=0.01)
    assert f["verdict"] == "reproduces"


def test_missing_variant_one_seed_and_diverged_runs_are_undecided_with_the_reason():
    claim = F.Claim("k", "t", "c", "better", ("A", "B"))
    f = F.finding(_report({"A": (10.0, 0.5, 3)}), claim)
    assert f["verdict"] == "undecided" and "not run" in f["why"] and "'B'" in f["why"]
    f = F.finding(_report({"A": (12.0, None, 1), "B": (10.0, None, 1)}), claim)
    assert f["verdict"] == "undecided" and "one seed" in f["why"] and f["beyond_spread"] is False
    report = _report({"A": (None, None, 0), "B": (10.0, 0.5, 3)})
    report["variants"][0]["failed_runs"] = 3
    f = F.finding(report, claim)
    assert f["verdict"] == "undecided" and "diverged" in f["why"]
    report["variants"][0]["failed_runs"] = 0     # a pooled table before any of A's run files came in
    f = F.finding(report, claim)
    assert f["verdict"] == "undecided" and "no run of ['A'] yet" in f["why"] and f["needs_seeds"]


def test_a_claim_checks_its_kind_and_arity():
    with pytest.raises(ValueError, match="kind"):
        F.Claim("k", "t", "c", "greater", ("A", "B"))
    with pytest.raises(ValueError, match="4 variants"):
        F.Claim("k", "t", "c", "larger_gain", ("A", "B"))


def test_the_claims_name_variants_of_their_tables():
    keys = []
    for name in ABLATION_TABLES:
        table = get_table(name)
        labels = {v.label for v in table.variants}
        for c in table.claims:
            keys.append(c.key)
            missing = [label for label in c.variants if label not in labels]
            assert not missing or c.key == "2a_resnext", (name, c.key, missing)   # ResNeXt: not in the table yet
    keys += [c.key for c in keypoints_table4.CLAIMS]
    assert len(keys) == len(set(keys)) == 13   # the thirteen claims, listed in docs/ABLATIONS.md
    doc = (Path(__file__).resolve().parents[2] / "docs" / "ABLATIONS.md").read_text()
    assert all(f"`{k}`" in doc for k in keys)


REPORTS = [f"ablation_{t}.json" for t in ABLATION_TABLES] + ["keypoints_table4.json"] + \
    sorted(p.name for p in RESULTS.glob("*_pretrained.json") if p.name.startswith(("ablation_", "keypoints_")))


@pytest.mark.parametrize("name", REPORTS)
def test_committed_findings_are_todays_verdicts_on_the_committed_numbers(name):
    report = json.loads((RESULTS / name).read_text())
    assert report["findings"] == json.loads(json.dumps(F.findings(report, F.study_of(report).claims)))
    assert (RESULTS / name.replace(".json", ".md")).read_text().count("| **") == len(report["findings"])


def test_refresh_writes_back_what_the_report_renders_to(tmp_path, capsys):
    for suffix in (".json", ".md"):
        shutil.copy(RESULTS / f"ablation_mask_loss{suffix}", tmp_path / f"t{suffix}")
    report = json.loads((tmp_path / "t.json").read_text())
    report["findings"] = []                                   # as before verdicts existed
    (tmp_path / "t.json").write_text(json.dumps(report))
    assert F.main(["--write", str(tmp_path / "t.json")]) == 0
    again = json.loads((tmp_path / "t.json").read_text())
    assert [f["key"] for f in again["findings"]] == ["2b_sigmoid_vs_softmax", "2b_class_agnostic"]
    assert (tmp_path / "t.md").read_text() == (RESULTS / "ablation_mask_loss.md").read_text()
    assert "REPRODUCES" in capsys.readouterr().out


def test_refresh_refuses_what_is_not_a_table_report_with_one_line(tmp_path, capsys):
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"title": "something else"}))
    assert F.main(["--write", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "not a table report" in err[0]
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert F.main([str(broken)]) == 2
    assert str(broken) in capsys.readouterr().err


def test_the_readme_summary_is_what_the_committed_reports_print():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"<!-- findings:begin[^>]*-->\n(.*?)\n<!-- findings:end -->", readme, re.S)
    assert block, "README.md has no findings block"
    assert block.group(1) == F.summary_markdown(), \
        "README's findings summary is stale: paste the output of python -m mrcnn_np.studies.findings --summary"


def test_the_multitask_table_starts_from_the_pretrained_body_and_judges_box_ap():
    table = get_table("multitask")
    assert table.backbone_init == "pretrained" and table.stem == "ablation_multitask"
    assert [v.changes for v in table.variants] == [{"mask_on": False}, {"mask_on": True}]
    (claim,) = table.claims
    assert claim.metric == "box_AP" and claim.variants == (table.variants[1].label, table.variants[0].label)
    assert [v.paper["box_AP"] for v in table.variants] == [37.3, 38.2]   # docs/PAPER_TABLES.md, Table 3
