"""Command line: subcommands call the package; bad input ends in one `error:` line, exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from mrcnn_np.cli import main


def test_data_shapes(tmp_path, capsys):
    out = tmp_path / "shapes"
    assert main(["data", "shapes", "--out", str(out), "--train", "3", "--val", "2", "--size", "64", "--quiet"]) == 0
    assert len(list((out / "train").glob("*.png"))) == 3 and (out / "annotations" / "val.json").is_file()
    text = capsys.readouterr().out
    assert "train: 3 images" in text and "val: 2 images" in text


def test_data_shapes_config_options(tmp_path, capsys):
    out = tmp_path / "small"
    assert main(["data", "shapes", "--out", str(out), "--train", "0", "--val", "3", "--size", "64", "--quiet",
                 "--min-objects", "4", "--max-objects", "4", "--min-size", "4", "--max-size", "10",
                 "--overlap", "0"]) == 0
    params = json.loads((out / "params.json").read_text())
    assert params["config"]["max_size"] == 10 and params["config"]["min_objects"] == 4
    boxes = np.array([a["bbox"] for a in json.loads((out / "annotations" / "val.json").read_text())["annotations"]])
    assert len(boxes) >= 9 and boxes[:, 2:].max() <= 11
    assert main(["data", "shapes", "--out", str(out), "--min-size", "40", "--max-size", "10"]) == 2
    assert "min_size <= max_size" in capsys.readouterr().err


def test_data_stats(tmp_path, capsys):
    out = tmp_path / "shapes"
    main(["data", "shapes", "--out", str(out), "--train", "0", "--val", "2", "--size", "64", "--quiet"])
    capsys.readouterr()
    assert main(["data", "stats", str(out / "annotations" / "val.json"), "--images", str(out / "val")]) == 0
    assert "all 2 image files found" in capsys.readouterr().out
    (out / "val" / "000001.png").unlink()
    assert main(["data", "stats", str(out / "annotations" / "val.json"), "--images", str(out / "val")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "000001.png: image file not found" in err


def test_demo_runs_and_reuses(tmp_path, capsys):
    """The demo study's --quick version (2 iterations, 4 + 3 images; tests/studies checks the full recipe)."""
    args = ["demo", "--quick", "--out", str(tmp_path / "r"), "--data-root", str(tmp_path / "d"),
            "--runs-root", str(tmp_path / "runs"), "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "generated" in text and "AP50" in text and "val: 3 images" in text and "classical baseline" in text
    assert (tmp_path / "r" / "demo_predictions_quick.png").stat().st_size > 1000
    metrics = json.loads((tmp_path / "r" / "demo_metrics_quick.json").read_text())
    assert metrics["iterations_done"] == 2 and 0 <= metrics["mask_rcnn"]["segm"]["AP50"] <= 1
    assert metrics["step_workers"] == 2 and metrics["command"].startswith("python -m mrcnn_np demo --seeds 1")
    run_dirs = list((tmp_path / "runs" / "demo_quick").iterdir())
    assert len(run_dirs) == 1 and (run_dirs[0] / "seed0" / "model.npz").is_file()
    assert main(args) == 0  # again: the data set and the finished run are reused, not redone
    text = capsys.readouterr().out
    assert "reused (same parameters)" in text and "seed 0: mask AP" in text and "(reused)" in text
    again = json.loads((tmp_path / "r" / "demo_metrics_quick.json").read_text())
    assert again["mask_rcnn"] == metrics["mask_rcnn"] and again["runs"][0]["reused"]


@pytest.mark.parametrize("argv, expected", [
    ([], "required: command"),
    (["data", "shapes", "--train", "x"], "argument --train: expected an integer, got 'x'"),
    (["data", "shapes", "--val", "-3"], "non-negative"),
    (["nonsense"], "invalid choice"),
    (["data", "shapes", "--out", "OUT", "--size", "8", "--train", "1", "--val", "0"], "image_size must be >= 16"),
])
def test_bad_arguments_one_line(argv, expected, capsys, tmp_path):
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1


def test_bad_files_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [}')
    assert main(["data", "stats", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: malformed JSON") and err.count("\n") == 1
    assert main(["data", "stats", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: annotation file not found" in capsys.readouterr().err


def test_python_dash_m_exit_code(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mrcnn_np", "data", "stats", str(tmp_path / "none.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
