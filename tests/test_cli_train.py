"""Command line train / eval / predict: the happy paths, resume, and one-line errors."""

import json

import numpy as np
import pytest

from mrcnn_np.cli import main

from .cli_helpers import one_error_line as _one_error_line


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "shapes"
    assert main(["data", "shapes", "--out", str(out), "--train", "3", "--val", "2", "--size", "64", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def run(data):
    """A 2-iteration run of the teaching preset (module-shared)."""
    out = data.parent / "run"
    assert main(["train", "--data", str(data), "--iters", "2", "--batch-size", "1", "--out", str(out),
                 "--checkpoint-every", "1", "--progress", "lines", "--log-every", "1"]) == 0
    return out


def test_train_writes_a_run_and_resumes(run, data, capsys):
    assert (run / "model.npz").is_file() and (run / "model.classes.json").is_file()
    assert len((run / "losses.csv").read_text().splitlines()) == 3  # header + 2 iterations
    evals = json.loads((run / "eval.json").read_text())
    assert evals[-1]["iteration"] == 2 and "segm" in evals[-1]
    capsys.readouterr()
    args = ["train", "--data", str(data), "--iters", "3", "--batch-size", "1", "--out", str(run),
            "--checkpoint-every", "1", "--progress", "lines"]
    assert main(args) == 2
    _one_error_line(capsys, "already holds a run", "resume")
    assert main(args + ["--resume"]) == 0
    text = capsys.readouterr().out
    assert "resuming" in text and "checkpoint_000002" in text and "final: bbox AP" in text
    assert len((run / "losses.csv").read_text().splitlines()) == 4
    assert main(args + ["--resume", "--lr", "0.5"]) == 2
    _one_error_line(capsys, "cannot resume", "lr")


def test_eval_prints_the_table(run, data, capsys):
    assert main(["eval", "--weights", str(run), "--data", str(data), "--limit", "1"]) == 0
    text = capsys.readouterr().out
    assert "1 of 2 images" in text and "AP50" in text and "per-class AP" in text and "segm" in text


def test_predict_writes_drawings_and_coco_json(run, data, tmp_path, capsys):
    images = [str(data / "val" / "000000.png"), str(data / "val" / "000001.png")]
    out = tmp_path / "pred"
    assert main(["predict", *images, "--weights", str(run / "model"), "--out", str(out),
                 "--score-thresh", "0"]) == 0
    assert (out / "000000_pred.png").stat().st_size > 1000 and (out / "000001_pred.png").is_file()
    doc = json.loads((out / "detections.json").read_text())
    assert [im["id"] for im in doc["images"]] == [1, 2]
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    assert cats[2] == "circle" and cats[13] == "hexagon"  # the data set's COCO ids and names
    for a in doc["annotations"]:
        assert a["category_id"] in cats and a["image_id"] in (1, 2) and 0 <= a["score"] <= 1
        assert len(a["bbox"]) == 4 and a["bbox"][2] >= 0 and "counts" in a["segmentation"]
    ids = [a["id"] for a in doc["annotations"]]
    assert len(set(ids)) == len(ids)
    # a threshold above every score leaves images without detections, and still works
    assert main(["predict", images[0], "--weights", str(run), "--out", str(tmp_path / "none"),
                 "--score-thresh", "1"]) == 0
    assert json.loads((tmp_path / "none" / "detections.json").read_text())["annotations"] == []


def test_predict_bad_files(run, data, tmp_path, capsys):
    good = str(data / "val" / "000000.png")
    (tmp_path / "notes.txt").write_text("not an image")
    cases = [
        (["predict", str(tmp_path / "missing.png"), "--weights", str(run)], ["missing.png", "not found"]),
        (["predict", str(tmp_path / "notes.txt"), "--weights", str(run)], ["notes.txt", "not a readable image"]),
        (["predict", good, "--weights", str(tmp_path / "noweights")], ["noweights.json", "not found"]),
        (["predict", good, "--weights", str(run), "--score-thresh", "2"], ["score threshold"]),
        (["eval", "--weights", str(run), "--data", str(tmp_path / "nodata")], ["val.json", "not found"]),
        (["eval", "--weights", str(run), "--data", str(data), "--split", "test"], ["test.json", "not found"]),
        (["predict", "--weights", str(run)], ["IMAGE"]),
        (["eval", "--data", str(data)], ["--weights"]),
    ]
    for argv, parts in cases:
        assert main(argv) == 2, argv
        _one_error_line(capsys, *parts)
    assert not (tmp_path / "predictions").exists()


@pytest.mark.parametrize("extra, parts", [
    (["--iters", "x"], ["--iters", "expected an integer"]),
    (["--iters", "0"], ["iterations must be >= 1"]),
    (["--lr", "-1"], ["--lr", "positive"]),
    (["--lr", "nan"], ["--lr", "positive"]),
    (["--preset", "huge"], ["unknown preset"]),
])
def test_train_bad_arguments(data, tmp_path, capsys, extra, parts):
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), *extra]) == 2
    _one_error_line(capsys, *parts)


def test_train_missing_data(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
    _one_error_line(capsys, "train.json", "not found", "data shapes")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_train_divergence_is_one_line_exit_1(data, tmp_path, capsys):
    assert main(["train", "--data", str(data), "--iters", "5", "--batch-size", "1", "--lr", "1e12",
                 "--warmup", "0", "--out", str(tmp_path / "r"), "--progress", "lines"]) == 1
    _one_error_line(capsys, "at iteration", "training stopped")
    assert not (tmp_path / "r" / "model.npz").exists()
    assert np.isfinite(np.loadtxt(tmp_path / "r" / "losses.csv", delimiter=",", skiprows=1, ndmin=2)[:, 6]).all()
