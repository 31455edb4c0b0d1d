"""``python -m mrcnn_np pretrain-effect SETTING``: scratch vs pretrained body, the same recipe, learning curves."""

import json

import pytest

from mrcnn_np.cli import main
from mrcnn_np.studies import pretrain_effect
from mrcnn_np.studies.registry import PRETRAIN_SETTINGS, get_study


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pe")
    args = ["pretrain-effect", "c4", "--quick", "--workers", "1", "--out", str(tmp / "results"),
            "--data-root", str(tmp / "data"), "--runs-root", str(tmp / "runs"), "--no-progress"]
    assert main(args) == 0
    return tmp, json.loads((tmp / "results" / "pretrain_effect_c4_quick.json").read_text())


def test_the_two_variants_differ_only_in_the_body_and_share_the_recipe():
    for setting in PRETRAIN_SETTINGS:
        study = get_study(f"pretrain_effect_{setting}")
        assert [v.label for v in study.variants] == ["scratch", "pretrained"]
        assert [v.changes for v in study.variants] == [{}, {"backbone_init": "pretrained"}]
        assert study.recipe["seeds"] == 3 and study.eval_in_training
        assert study.bookkeeping["eval_every"] * pretrain_effect.CURVE_POINTS <= study.recipe["iterations"]
    assert get_study("pretrain_effect_c4").base["architecture"] == "c4"
    assert get_study("pretrain_effect_rotated").data.rotate and not get_study("pretrain_effect_demo").data.rotate


def test_quick_run_writes_table_curves_and_figure(quick):
    tmp, report = quick
    assert sorted(p.name for p in (tmp / "results").iterdir()) == [
        "pretrain_effect_c4_quick.json", "pretrain_effect_c4_quick.md", "pretrain_effect_c4_quick.png"]
    assert [v["label"] for v in report["variants"]] == ["scratch", "pretrained"]
    for run in report["runs"]:
        assert run["metrics"] is not None and run["curve"], run
        assert run["curve"][-1]["iteration"] == report["recipe"]["iterations"]
        assert run["curve"][-1]["train_seconds"] == run["train_seconds_measured"] > 0
    logs = {r["variant"]: (tmp / "runs" / "pretrain_effect" / "c4_quick" / r["variant"] / "seed0" / "train.log")
            .read_text() for r in report["runs"]}
    assert "backbone body from" in logs["pretrained"] and "backbone body from" not in logs["scratch"]
    md = (tmp / "results" / "pretrain_effect_c4_quick.md").read_text()
    assert md == pretrain_effect.format_markdown(report)
    assert "| scratch | 0 |" in md and "![learning curves](pretrain_effect_c4_quick.png)" in md


def test_a_backbone_init_flag_is_refused(tmp_path, capsys):
    assert main(["pretrain-effect", "demo", "--backbone-init", "pretrained", "--quick",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "compares both backbone inits" in err[0]
    assert not any(tmp_path.iterdir())
