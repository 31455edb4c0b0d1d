"""The studies' --backbone-init / --freeze-at: runs start from the shipped body, in their own
folders and report, on the same data set; the default stays scratch."""

import json

import numpy as np
import pytest

import mrcnn_np.detection.pretrained as pretrained
from mrcnn_np.cli import build_parser, main
from mrcnn_np.detection.config import preset
from mrcnn_np.detection.pretrained import BodyClassifier, save_body

from ..cli_helpers import one_error_line


@pytest.mark.parametrize("command", [["demo"], ["ablate", "roi"], ["keypoints"]])
def test_the_default_is_scratch(command):
    args = build_parser().parse_args(command)
    assert (args.backbone_init, args.freeze_at) == ("scratch", 0)


def test_freeze_without_pretrained_is_refused(tmp_path, capsys):
    assert main(["demo", "--quick", "--freeze-at", "2", "--out", str(tmp_path / "r"), "--data-root",
                 str(tmp_path / "d"), "--runs-root", str(tmp_path / "runs"), "--no-progress"]) == 2
    one_error_line(capsys, "--freeze-at needs --backbone-init pretrained")
    assert not (tmp_path / "runs").exists()


def test_the_demo_from_the_shipped_body(tmp_path, monkeypatch, capsys):
    shipped = tmp_path / "weights"
    body = save_body(BodyClassifier(preset("teaching").backbone, 24, seed=3), shipped / "teaching", {})
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", shipped)
    args = ["demo", "--quick", "--out", str(tmp_path / "r"), "--data-root", str(tmp_path / "d"),
            "--runs-root", str(tmp_path / "runs"), "--no-progress", "--workers", "1",
            "--backbone-init", "pretrained", "--freeze-at", "2"]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "r" / "demo_metrics_quick_pretrained_freeze2.json").read_text())
    assert "--backbone-init pretrained --freeze-at 2" in metrics["command"]
    assert [p.name for p in tmp_path.joinpath("d").iterdir()] == ["shapes_demo_quick"]   # the same data set
    run = next((tmp_path / "runs" / "demo_quick_pretrained_freeze2").iterdir()) / "seed0"
    model_cfg = json.loads((run / "model.json").read_text())
    assert (model_cfg["backbone_init"], model_cfg["freeze_at"]) == ("pretrained", 2)
    with np.load(run / "model.npz", allow_pickle=False) as f, np.load(body.with_suffix(".npz")) as b:
        for k in ("conv1.weight", "layer1.0.conv2.weight"):                       # frozen: still the body's
            np.testing.assert_array_equal(f["backbone.body." + k], b[k])
        assert not np.array_equal(f["backbone.body.layer3.0.conv1.weight"], b["layer3.0.conv1.weight"])
