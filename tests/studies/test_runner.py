"""The runner's own parts without training: run-folder reuse and resume, slugs, the command line, executors."""

import json

import pytest

from mrcnn_np.studies.executors import describe, map_jobs
from mrcnn_np.studies.registry import get_study
from mrcnn_np.studies.runner import command_line, prepare_run_dir, slug

IDENT = {"digest": "abcd1234", "data": {"seed": 0, "train": 4}, "step_workers": 1}


def _finished_run(run_dir, ident=IDENT):
    run_dir.mkdir(parents=True)
    (run_dir / "job.json").write_text(json.dumps({"identity": ident}))
    (run_dir / "checkpoint_000004.npz").write_text("weights")
    (run_dir / "result.json").write_text(json.dumps({"metrics": {"mask_AP": 1.0}}))


def test_a_finished_run_of_the_same_identity_is_reused(tmp_path):
    _finished_run(tmp_path / "r")
    assert prepare_run_dir(tmp_path / "r", IDENT, resume=True) == (True, {"metrics": {"mask_AP": 1.0}})
    assert (tmp_path / "r" / "checkpoint_000004.npz").is_file()


@pytest.mark.parametrize("change", [{"digest": "ffff0000"}, {"data": {"seed": 1, "train": 4}}, {"step_workers": 2}])
def test_another_identity_is_retrained_from_scratch(tmp_path, change):
    _finished_run(tmp_path / "r")
    assert prepare_run_dir(tmp_path / "r", dict(IDENT, **change), resume=True) == (False, None)
    assert list((tmp_path / "r").iterdir()) == []                 # our old run is gone, the folder is ready


def test_without_resume_our_folder_is_replaced_and_an_unfinished_one_resumes_with_it(tmp_path):
    _finished_run(tmp_path / "r")
    assert prepare_run_dir(tmp_path / "r", IDENT, resume=False) == (False, None)
    assert list((tmp_path / "r").iterdir()) == []
    _finished_run(tmp_path / "u")
    (tmp_path / "u" / "result.json").unlink()                     # killed before it was scored
    assert prepare_run_dir(tmp_path / "u", IDENT, resume=True) == (True, None)
    assert (tmp_path / "u" / "checkpoint_000004.npz").is_file()   # train(resume=True) continues from it


def test_a_folder_that_is_not_ours_is_an_error_and_kept(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("keep me")
    for resume in (False, True):
        with pytest.raises(ValueError, match="is not a study's run folder"):
            prepare_run_dir(tmp_path / "r", IDENT, resume)
    assert (tmp_path / "r" / "notes.txt").read_text() == "keep me"
    assert prepare_run_dir(tmp_path / "empty", IDENT, False) == (False, None)   # a new folder is made


def test_slugs():
    assert slug("RoIAlign (avg), stride 16") == "roialign_avg_stride_16"
    assert slug("keypoint & mask") == "keypoint_and_mask" and slug("keypoint-only") == "keypoint_only"
    assert slug("MLP fc 128 → 128 → K·28²") == "mlp_fc_128_128_k282"


def test_command_line_names_every_flag_that_differs_from_the_study_default():
    demo, roi = get_study("demo"), get_study("roi")
    assert command_line(demo, 1) == "python -m mrcnn_np demo --seeds 1 --workers 2 --out results --data-root data " \
                                    "--runs-root runs"
    assert "--no-resume" in command_line(demo, 1, resume=False) and "--resume" not in command_line(demo, 1, resume=True)
    assert command_line(roi, 3, scheduler="tcp://h:1", resume=True, iterations=9).startswith(
        "python -m mrcnn_np ablate roi --seeds 3 --scheduler tcp://h:1 --iters 9 --resume --out")


def test_map_jobs_in_this_process_keeps_the_order():
    assert list(map_jobs(abs, [-3, 2, -1], workers=1)) == [(0, 3), (1, 2), (2, 1)]
    assert list(map_jobs(abs, [-3], workers=4)) == [(0, 3)]          # one job: no pool
    assert describe(2, 1) == "this process, one run after the other"
    assert describe(2, 6) == "local process pool (spawn), 2 workers, one thread each"
    assert describe(2, 6, "tcp://h:1") == "dask scheduler tcp://h:1"


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown study 'nope'; choose from"):
        get_study("nope")
    with pytest.raises(ValueError, match="has no variant 'x'"):
        get_study("demo").variant("x")
