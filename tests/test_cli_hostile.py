"""train / eval / predict used as a hostile user would: nothing overwritten that the command did
not create, corrupt weights, odd file names, folders for files, bad numbers. Every user error
is one ``error:`` line naming the file or the argument, exit code 2."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mrcnn_np.cli import main

from .cli_helpers import one_error_line as _one_error_line

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "shapes"
    assert main(["data", "shapes", "--out", str(out), "--train", "3", "--val", "2", "--size", "64", "--quiet"]) == 0
    return out


def _train(data, out, *extra):
    return main(["train", "--data", str(data), "--iters", "2", "--batch-size", "1", "--out", str(out),
                 "--checkpoint-every", "1", "--progress", "lines", "--log-every", "1", *extra])


@pytest.fixture(scope="module")
def run(data):
    out = data.parent / "run"
    assert _train(data, out) == 0
    return out


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_train_never_overwrites_a_finished_run_whose_checkpoints_were_deleted(run, data, tmp_path, capsys):
    done = tmp_path / "done"
    shutil.copytree(run, done)
    for p in done.glob("checkpoint_*"):
        p.unlink()
    before = _files(done)
    for extra in ([], ["--resume"]):
        assert _train(data, done, *extra) == 2
        _one_error_line(capsys, str(done), "finished run", "--overwrite")
        assert _files(done) == before
    assert _train(data, done, "--overwrite") == 0
    assert (done / "checkpoint_000002.json").is_file()


def test_train_refuses_a_folder_of_other_files(data, tmp_path, capsys):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    assert _train(data, theirs) == 2
    _one_error_line(capsys, str(theirs), "not a run folder", "notes.txt")
    assert _files(theirs) == {"notes.txt": b"mine"}
    assert _train(data, theirs, "--overwrite") == 0
    assert (theirs / "notes.txt").read_text() == "mine" and (theirs / "model.npz").is_file()


def test_resume_below_the_iterations_done_is_refused(run, data, tmp_path, capsys):
    again = tmp_path / "again"
    shutil.copytree(run, again)
    evals = (again / "eval.json").read_text()
    assert _train(data, again, "--resume", "--iters", "1") == 2
    _one_error_line(capsys, "iterations=1", "already at iteration 2")
    assert (again / "eval.json").read_text() == evals


def test_resume_falls_back_to_the_older_checkpoint(run, data, tmp_path, capsys):
    again = tmp_path / "again"
    shutil.copytree(run, again)
    for p in ("model.npz", "model.json", "model.classes.json", "eval.json"):
        (again / p).unlink()                                    # as if killed after checkpoint 2
    npz = again / "checkpoint_000002.npz"
    npz.write_bytes(npz.read_bytes()[:200])
    capsys.readouterr()
    assert _train(data, again, "--resume") == 0
    out = capsys.readouterr().out
    warned = [s for s in out.splitlines() if "checkpoint_000002" in s and "unreadable" in s]
    assert len(warned) == 1 and "from checkpoint_000001" in out


@pytest.mark.parametrize("damage, parts", [
    ("truncate", ["model.npz", "truncated"]),
    ("list", ["model.json", "list"]),
    ("unknown_field", ["model.json", "colour"]),
    ("other_classes", ["model.npz", "of another shape"]),
])
def test_eval_and_predict_on_corrupt_weights(run, data, tmp_path, capsys, damage, parts):
    w = tmp_path / "w"
    shutil.copytree(run, w)
    if damage == "truncate":
        (w / "model.npz").write_bytes((w / "model.npz").read_bytes()[:3000])
    elif damage == "list":
        (w / "model.json").write_text("[]")
    elif damage == "unknown_field":
        (w / "model.json").write_text(json.dumps(dict(json.loads((w / "model.json").read_text()), colour=1)))
    else:
        doc = json.loads((w / "model.json").read_text())
        (w / "model.json").write_text(json.dumps(dict(doc, num_classes=doc["num_classes"] + 2)))
    for argv in (["eval", "--weights", str(w), "--data", str(data)],
                 ["predict", str(data / "val" / "000000.png"), "--weights", str(w), "--out", str(tmp_path / "p")]):
        assert main(argv) == 2
        err = _one_error_line(capsys, *parts)
        assert len(err) < 400, err


def test_predict_a_non_utf8_file_name_and_a_folder(run, data, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    odd = os.fsdecode(b"caf\xe9_\xff.png")                     # Latin-1 bytes: not UTF-8
    shutil.copy(data / "val" / "000000.png", images / odd)
    shutil.copy(data / "val" / "000001.png", images / "b.png")
    (images / "readme.txt").write_text("not an image")          # skipped: not an image suffix
    out = tmp_path / "pred"
    assert main(["predict", str(images), "--weights", str(run), "--out", str(out), "--score-thresh", "0"]) == 0
    doc = json.loads((out / "detections.json").read_text())
    assert len(doc["images"]) == 2 and doc["images"][1]["file_name"].endswith("caf\ufffd_\ufffd.png")
    assert (out / os.fsdecode(b"caf\xe9_\xff_pred.png")).is_file() and (out / "b_pred.png").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(empty), "--weights", str(run), "--out", str(tmp_path / "p2")]) == 2
    _one_error_line(capsys, str(empty), "folder with no image files")


def test_predict_does_not_overwrite_without_the_flag(run, data, tmp_path, capsys):
    image = str(data / "val" / "000000.png")
    out = tmp_path / "pred"
    assert main(["predict", image, "--weights", str(run), "--out", str(out)]) == 0
    before = _files(out)
    capsys.readouterr()
    assert main(["predict", image, "--weights", str(run), "--out", str(out)]) == 2
    _one_error_line(capsys, "detections.json", "already exists", "--overwrite")
    assert _files(out) == before
    assert main(["predict", image, "--weights", str(run), "--out", str(out), "--overwrite"]) == 0


@pytest.mark.parametrize("argv, parts", [
    (["train", "--clip", "nan"], ["--clip", "finite"]),
    (["train", "--clip", "inf"], ["--clip", "finite"]),
    (["train", "--clip", "-1"], ["--clip", ">= 0"]),
    (["predict", "x.png", "--weights", "w", "--score-thresh", "nan"], ["--score-thresh", "finite"]),
    (["train", "--batch-size", "-1"], ["--batch-size"]),
    (["train", "--resume", "--overwrite"], ["--resume and --overwrite"]),
    (["eval", "--weights", "w", "--limit", "-2"], ["--limit"]),
])
def test_bad_numbers_are_refused(argv, parts, capsys):
    assert main(argv) == 2
    _one_error_line(capsys, *parts)


def test_files_and_folders_in_the_wrong_place(run, data, tmp_path, capsys):
    image = data / "val" / "000000.png"
    cases = [
        (["train", "--data", str(data / "annotations" / "train.json"), "--out", str(tmp_path / "r")],
         ["--data", "train.json", "is a file"]),
        (["train", "--data", str(data), "--out", str(run / "model.npz")], ["--out", "model.npz", "is a file"]),
        (["eval", "--weights", str(image), "--data", str(data)], ["000000.png", "not a weights file"]),
        (["eval", "--weights", str(data), "--data", str(data)], [str(data), "no weights"]),
        (["predict", str(image), "--weights", str(run), "--out", str(run / "model.npz")],
         ["model.npz", "is a file"]),
    ]
    for argv, parts in cases:
        assert main(argv) == 2, argv
        _one_error_line(capsys, *parts)
    assert not (tmp_path / "r").exists()


def test_divergence_prints_only_its_line(data, tmp_path):
    """In a fresh interpreter: pytest would catch the warnings that a user sees printed."""
    argv = ["train", "--data", str(data), "--iters", "3", "--batch-size", "1", "--out", str(tmp_path / "div"),
            "--progress", "lines", "--lr", "1e12", "--warmup", "0"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "mrcnn_np", *argv], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
