"""results/pretrain.md/.json and shipping a body: numbers read from the run folder, no overwriting."""

import json

import pytest

from mrcnn_np.cli import main
from mrcnn_np.detection.config import preset
from mrcnn_np.detection.pretrained import shipped_weights
from mrcnn_np.studies import pretrain_report

ARGS = ["--iters", "4", "--batch-size", "4", "--size", "32", "--eval-images", "8", "--eval-every", "2",
        "--checkpoint-every", "2", "--workers", "1", "--progress", "lines"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "teaching"
    assert main(["pretrain", "--body", "teaching", "--out", str(out), *ARGS]) == 0
    return out


def test_report_reads_the_run_and_ships_the_body(run, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    assert pretrain_report.main([str(run), "--ship", "--out", str(tmp_path / "results")], weights) == 0
    info = json.loads((run / "body.json").read_text())
    rep = json.loads((tmp_path / "results" / "pretrain.json").read_text())["bodies"][0]
    assert rep["top1"] == info["top1"] and rep["iterations"] == 4 and rep["classes"] == 24
    assert [e["iteration"] for e in rep["curve"]] == [2, 4]
    md = (tmp_path / "results" / "pretrain.md").read_text()
    assert f"{info['top1']:.3f}" in md and info["command"] in md
    # the shipped copy is found by its body config, as backbone_init="pretrained" finds it
    assert shipped_weights(preset("teaching").backbone, weights) == weights / "teaching"
    assert (weights / "teaching.npz").read_bytes() == (run / "body.npz").read_bytes()


def test_shipping_never_replaces_a_different_file_unless_told(run, tmp_path, capsys):
    weights = tmp_path / "w"
    weights.mkdir()
    (weights / "teaching.npz").write_bytes(b"someone else's file")
    with pytest.raises(ValueError, match="exists and differs"):
        pretrain_report.ship(run, weights)
    assert (weights / "teaching.npz").read_bytes() == b"someone else's file"
    pretrain_report.ship(run, weights, overwrite=True)
    assert (weights / "teaching.npz").read_bytes() == (run / "body.npz").read_bytes()


def test_a_folder_that_is_no_finished_run_is_one_error_line(tmp_path, capsys):
    assert pretrain_report.main([str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "body.json" in err[0]


def test_the_effect_reports_in_out_are_summarised(run, tmp_path):
    out = tmp_path / "results"
    assert main(["pretrain-effect", "c4", "--quick", "--workers", "1", "--out", str(out), "--data-root",
                 str(tmp_path / "d"), "--runs-root", str(tmp_path / "runs"), "--no-progress"]) == 0
    # the quick report stands in for a real one under the real name
    (out / "pretrain_effect_c4_quick.json").rename(out / "pretrain_effect_c4.json")
    assert pretrain_report.main([str(run), "--out", str(out)]) == 0
    rep = json.loads((out / "pretrain.json").read_text())
    effect = json.loads((out / "pretrain_effect_c4.json").read_text())
    assert [e["setting"] for e in rep["effect"]] == ["c4"]
    want = {v["label"]: v["ours"]["mask_AP"] for v in effect["variants"]}
    assert rep["effect"][0]["scratch_mask_AP"] == want["scratch"]
    assert rep["effect"][0]["pretrained_mask_AP"] == want["pretrained"]
    md = (out / "pretrain.md").read_text()
    assert "## What the pretrained body buys" in md and "| c4 | 4 | 1 |" in md
    assert "![Pretrained vs scratch: a one-level C4 model](pretrain_effect_c4.png)" in md
