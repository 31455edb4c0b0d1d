"""The studies' --backbone-init / --freeze-at: runs start from the shipped body, in their own
folders and report, on the same data set; the demo's default is the shipped body, the tables' scratch."""

import json

import numpy as np
import pytest

import mrcnn_np.detection.pretrained as pretrained
from mrcnn_np.cli import build_parser, main
from mrcnn_np.detection.config import preset
from mrcnn_np.detection.pretrained import BodyClassifier, save_body
from mrcnn_np.studies.registry import get_study
from mrcnn_np.studies.runner import init_suffix

from ..cli_helpers import one_error_line


@pytest.mark.parametrize("command, default", [(["demo"], "pretrained"), (["ablate", "roi"], "scratch"),
                                              (["keypoints"], "scratch")])
def test_each_study_has_its_default_body(command, default):
    args = build_parser().parse_args(command)
    assert (args.backbone_init, args.freeze_at) == (None, 0)     # None: the study's default
    name = command[-1] if command[0] == "ablate" else command[0]
    assert get_study(name).backbone_init == default


def test_suffixes_name_the_choice_that_is_not_the_default():
    assert init_suffix("pretrained", 0, "pretrained") == "" and init_suffix("scratch", 0, "scratch") == ""
    assert init_suffix("scratch", 0, "pretrained") == "_scratch"
    assert init_suffix("pretrained", 2, "scratch") == "_pretrained_freeze2"
    assert init_suffix("pretrained", 2, "pretrained") == "_freeze2"


def test_freeze_without_pretrained_is_refused(tmp_path, capsys):
    assert main(["demo", "--quick", "--backbone-init", "scratch", "--freeze-at", "2", "--out", str(tmp_path / "r"),
                 "--data-root",
                 str(tmp_path / "d"), "--runs-root", str(tmp_path / "runs"), "--no-progress"]) == 2
    one_error_line(capsys, "--freeze-at needs --backbone-init pretrained")
    assert not (tmp_path / "runs").exists()


def test_the_demo_from_the_shipped_body(tmp_path, monkeypatch, capsys):
    shipped = tmp_path / "weights"
    body = save_body(BodyClassifier(preset("teaching").backbone, 24, seed=3), shipped / "teaching", {})
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", shipped)
    args = ["demo", "--quick", "--out", str(tmp_path / "r"), "--data-root", str(tmp_path / "d"),
            "--runs-root", str(tmp_path / "runs"), "--no-progress", "--workers", "1",
            "--freeze-at", "2"]                       # the demo starts from the shipped body by default
    assert main(args) == 0
    metrics = json.loads((tmp_path / "r" / "demo_metrics_quick_freeze2.json").read_text())
    assert "--freeze-at 2" in metrics["command"] and "--backbone-init" not in metrics["command"]
    assert "- backbone body: pretrained, frozen up to stage 2" in (tmp_path / "r" / "demo_metrics_quick_freeze2.md"
                                                                   ).read_text()
    assert [p.name for p in tmp_path.joinpath("d").iterdir()] == ["shapes_demo_quick"]   # the same data set
    run = next((tmp_path / "runs" / "demo_quick_freeze2").iterdir()) / "seed0"
    model_cfg = json.loads((run / "model.json").read_text())
    assert (model_cfg["backbone_init"], model_cfg["freeze_at"]) == ("pretrained", 2)
    with np.load(run / "model.npz", allow_pickle=False) as f, np.load(body.with_suffix(".npz")) as b:
        for k in ("conv1.weight", "layer1.0.conv2.weight"):                       # frozen: still the body's
            np.testing.assert_array_equal(f["backbone.body." + k], b[k])
        assert not np.array_equal(f["backbone.body.layer3.0.conv1.weight"], b["layer3.0.conv1.weight"])
