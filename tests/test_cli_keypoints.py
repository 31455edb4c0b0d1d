"""``python -m mrcnn_np keypoints --quick``: files and fields written, both executors agree, one-line errors."""

import json
from pathlib import Path

import pytest

from mrcnn_np.cli import main
from mrcnn_np.studies.keypoints_table4 import METRICS, PAPER, QUICK_RECIPE, STUDY
from mrcnn_np.studies.runner import run_study


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The quick run through the command line, with the default 2-process pool."""
    tmp = tmp_path_factory.mktemp("kp")
    args = ["keypoints", "--quick", "--out", str(tmp / "results"), "--data-root", str(tmp / "data"),
            "--runs-root", str(tmp / "runs"), "--no-progress"]
    assert main(args) == 0
    return tmp, json.loads((tmp / "results" / "keypoints_table4_quick.json").read_text())


def test_quick_run_writes_the_table_json_and_figure(quick, capsys):
    tmp, report = quick
    results = tmp / "results"
    written = sorted(p.name for p in results.iterdir())           # _quick files, never the real ones
    assert written == ["keypoints_predictions_quick.png", "keypoints_table4_quick.json", "keypoints_table4_quick.md"]
    assert (results / "keypoints_predictions_quick.png").stat().st_size > 10_000
    assert report["command"] == (f"python -m mrcnn_np keypoints --seeds 1 --workers 2 --quick --out {results} "
                                 f"--data-root {tmp / 'data'} --runs-root {tmp / 'runs'}")
    assert report["seeds"] == [0] and report["quick"] and report["wall_seconds"] > 0
    assert "git_commit" in report and "git_dirty" in report and report["recipe"] == json.loads(json.dumps(QUICK_RECIPE))
    assert report["data"]["dir"] == str((tmp / "data" / "keypoints_quick").resolve())
    assert report["data"]["stats"]["train"]["images"] == QUICK_RECIPE["train_images"]
    assert [(v["label"], v["mask_on"]) for v in report["variants"]] == [("keypoint-only", False),
                                                                       ("keypoint & mask", True)]
    for v in report["variants"]:
        assert v["paper"] == PAPER[v["label"]] and v["failed_runs"] == 0
        assert set(v["ours"]) == set(METRICS) and v["ours"]["kp_AP"]["n"] == 1
        assert 0.0 <= v["ours"]["kp_AP"]["mean"] <= 100.0 and v["ours"]["kp_AP"]["std"] is None
    only, joint = report["variants"]
    assert only["ours"]["mask_AP"]["mean"] is None            # no mask branch, no mask AP
    assert joint["ours"]["mask_AP"]["mean"] is not None
    assert len(report["runs"]) == 2 and len(report["figure_runs"]) == 2
    for run in report["runs"]:
        assert run["metrics"]["kp_AP"] is not None and run["losses"]["loss_keypoint"]["first"] > 0
        assert run["sec_per_iter"] > 0 and (tmp / "runs" / "keypoints_quick").resolve() in Path(run["run_dir"]).parents
    md = (results / "keypoints_table4_quick.md").read_text()
    assert "quick smoke run" in md and "| keypoint & mask |" in md and "62.7" in md and "63.1" in md
    assert report["command"] in md and "keypoints_predictions_quick.png" in md


def test_one_process_gives_the_pool_numbers(quick, tmp_path):
    tmp, pooled = quick
    report = run_study(STUDY, quick=True, workers=1, out=tmp_path / "results", data_root=tmp / "data",
                       runs_root=tmp_path / "runs", progress=False, log=lambda s: None)
    assert report["executor"].startswith("this process")
    assert [r["metrics"] for r in report["runs"]] == [r["metrics"] for r in pooled["runs"]]
    assert [r["losses"] for r in report["runs"]] == [r["losses"] for r in pooled["runs"]]


def _one_error_line(capsys, *parts):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for p in parts:
        assert p in err, err


def test_errors_are_one_line(capsys, tmp_path):
    assert main(["keypoints", "--seeds", "0"]) == 2
    _one_error_line(capsys, "--seeds", ">= 1")
    assert main(["keypoints", "--workers", "two"]) == 2
    _one_error_line(capsys, "--workers")
    foreign = tmp_path / "runs" / "keypoints_quick" / "keypoint_only" / "seed0"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("not a run")
    assert main(["keypoints", "--quick", "--workers", "1", "--out", str(tmp_path / "results"), "--data-root",
                 str(tmp_path / "data"), "--runs-root", str(tmp_path / "runs"), "--no-progress"]) == 2
    _one_error_line(capsys, "is not a study's run folder")
    assert (foreign / "notes.txt").is_file()                  # a folder that is not ours is kept
    with pytest.raises(ValueError, match="iterations"):
        run_study(STUDY, iterations=0, quick=True)


def test_resume_reuses_the_finished_runs(quick, tmp_path, capsys):
    """--resume: every study can resume (the runner's), here the finished quick runs are reused as they are."""
    tmp, first = quick
    args = ["keypoints", "--quick", "--resume", "--out", str(tmp_path), "--data-root", str(tmp / "data"),
            "--runs-root", str(tmp / "runs"), "--no-progress"]
    assert main(args) == 0
    again = json.loads((tmp_path / "keypoints_table4_quick.json").read_text())
    assert [r["reused"] for r in again["runs"]] == [True, True]
    assert [r["metrics"] for r in again["runs"]] == [r["metrics"] for r in first["runs"]]
    assert again["command"].split(" --out")[0].endswith("--quick --resume")
    assert "(reused)" in capsys.readouterr().out
