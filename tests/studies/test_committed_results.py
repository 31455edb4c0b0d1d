"""The committed reports in results/ (long runs, never regenerated here) are read and rendered by the
studies' markdown writers exactly as committed: the JSON format did not change with the runner."""

import json
from pathlib import Path

import pytest

from mrcnn_np.studies import ablation, keypoints_table4
from mrcnn_np.studies.registry import ABLATION_TABLES, get_table

RESULTS = Path(__file__).resolve().parents[2] / "results"


@pytest.mark.parametrize("name", ABLATION_TABLES)
def test_ablation_reports_render_as_committed(name):
    report = json.loads((RESULTS / f"ablation_{name}.json").read_text())
    assert ablation.format_markdown(report) == (RESULTS / f"ablation_{name}.md").read_text()
    # the committed runs are the table's variants, in order, with the paper's numbers of today's table
    # (a table may have gained rows since its report was run: the roi table's aligned=True and
    # crop_and_resize rows; the committed variants are then the table's others, in order)
    table = get_table(name)
    labels = [v["label"] for v in report["variants"]]
    kept = [v for v in table.variants if v.label in labels]
    assert labels == [v.label for v in kept]
    assert len(kept) == len(table.variants) or name == "roi"
    assert [v["paper"] for v in report["variants"]] == [v.paper for v in kept]
    assert [v["changes"] for v in report["variants"]] == json.loads(json.dumps([v.changes for v in kept],
                                                                               default=list))
    assert report["recipe"] == json.loads(json.dumps(table.recipe, default=list))


def test_keypoints_report_renders_as_committed():
    report = json.loads((RESULTS / "keypoints_table4.json").read_text())
    assert keypoints_table4.format_markdown(report) == (RESULTS / "keypoints_table4.md").read_text()
    assert [v["label"] for v in report["variants"]] == [v.label for v in keypoints_table4.VARIANTS]
    assert report["recipe"] == json.loads(json.dumps(keypoints_table4.RECIPE, default=list))


@pytest.mark.parametrize("setting", ["demo", "rotated", "c4"])
def test_pretrain_effect_reports_render_as_committed(setting):
    from mrcnn_np.studies import pretrain_effect  # noqa: PLC0415
    from mrcnn_np.studies.registry import get_study  # noqa: PLC0415

    report = json.loads((RESULTS / f"pretrain_effect_{setting}.json").read_text())
    assert pretrain_effect.format_markdown(report) == (RESULTS / f"pretrain_effect_{setting}.md").read_text()
    study = get_study(f"pretrain_effect_{setting}")
    assert report["title"] == study.title and report["recipe"] == json.loads(json.dumps(study.recipe, default=list))
    assert [v["label"] for v in report["variants"]] == ["scratch", "pretrained"] and len(report["seeds"]) == 3
    assert not report["git_dirty"] and all(r["metrics"] for r in report["runs"])
