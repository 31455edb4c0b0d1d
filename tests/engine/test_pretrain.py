"""Pre-training a body: the command line's files, exact resume, prefetching workers, refusals,
and a detection run that starts from the body it wrote."""

import csv
import json
import numpy as np
import pytest

from mrcnn_np.cli import main
from mrcnn_np.datasets.pretrain_shapes import CLASSES, PretrainShapesConfig
from mrcnn_np.detection.config import preset, with_fields
from mrcnn_np.detection.pretrained import WEIGHTS_DIR
from mrcnn_np.engine.pretrain import CHECK_IMAGES, PretrainConfig, check_body_file, pretrain
from mrcnn_np.engine.train import train

from ..cli_helpers import one_error_line
from .conftest import TINY, tiny_cfg

TINY_ARGS = ["--iters", "4", "--batch-size", "4", "--size", "32", "--eval-images", "8", "--checkpoint-every", "2",
             "--progress", "lines"]


def _cfg(tmp_path, name, **kw):
    base = dict(body=preset("teaching").backbone, iterations=5, batch_size=4, lr=0.05, warmup_iters=2,
                eval_every=0, eval_images=8, checkpoint_every=2, data=PretrainShapesConfig(image_size=32),
                out_dir=str(tmp_path / name))
    return PretrainConfig(**dict(base, **kw))


def _npz(prefix):
    with np.load(prefix.with_suffix(".npz"), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _losses(out):
    with open(out / "log.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "teaching"
    assert main(["pretrain", "--body", "teaching", "--out", str(out), "--workers", "1", *TINY_ARGS]) == 0
    return out


def test_the_command_writes_the_body_weights_and_what_made_them(cli_run):
    info = json.loads((cli_run / "body.json").read_text())
    assert info["format"] == "mrcnn_np-pretrained-body" and info["classes"] == list(CLASSES)
    assert info["body_config"]["layers"] == list(preset("teaching").backbone.layers)
    assert info["iterations"] == 4 and info["seed"] == 0 and 0 <= info["top1"] <= 1
    assert info["command"].startswith("python -m mrcnn_np pretrain") and "git_commit" in info
    with open(cli_run / "log.csv", newline="") as f:
        logged = sum(float(r["sec_per_iter"]) for r in csv.DictReader(f))
    assert info["train_seconds"] == pytest.approx(logged, abs=1e-3) and info["seconds_this_session"] > 0
    arrays = _npz(cli_run / "body")
    assert "conv1.weight" in arrays and "layer4.0.conv1.weight" in arrays
    assert arrays["fc.weight"].shape == (len(CLASSES), preset("teaching").backbone.stage_channels()[-1])
    evals = json.loads((cli_run / "eval.json").read_text())
    assert evals[-1] == {"iteration": 4, "top1": info["top1"], "images": 8}


def test_the_command_refuses_to_overwrite_and_resumes(cli_run, capsys):
    capsys.readouterr()
    assert main(["pretrain", "--out", str(cli_run), *TINY_ARGS]) == 2
    one_error_line(capsys, str(cli_run), "--resume")
    assert main(["pretrain", "--out", str(cli_run), "--resume", *TINY_ARGS[:1], "6", *TINY_ARGS[2:]]) == 0
    assert json.loads((cli_run / "body.json").read_text())["iterations"] == 6
    assert len(_losses(cli_run)) == 6


@pytest.mark.parametrize("argv, part", [
    (["pretrain", "--body", "r18"], "unknown body 'r18'"),
    (["pretrain", "--iters", "0"], "--iters"),
    (["train", "--backbone-weights", "x"], "--backbone-weights needs --backbone-init pretrained"),
    (["train", "--freeze-at", "2"], "--freeze-at needs --backbone-init pretrained"),
])
def test_bad_arguments_one_line(argv, part, capsys, tmp_path):
    if argv[0] == "train":
        assert main(["data", "shapes", "--out", str(tmp_path / "d"), "--train", "1", "--val", "0", "--size", "32",
                     "--quiet"]) == 0
        argv = argv + ["--data", str(tmp_path / "d"), "--out", str(tmp_path / "run")]
    else:
        argv = argv + ["--out", str(tmp_path / "p")]
    capsys.readouterr()
    assert main(argv) == 2
    one_error_line(capsys, part)


def test_a_folder_of_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes.txt").write_text("mine")
    assert main(["pretrain", "--out", str(tmp_path / "p"), *TINY_ARGS]) == 2
    one_error_line(capsys, "notes.txt")
    assert main(["pretrain", "--out", str(tmp_path / "p"), "--overwrite", *TINY_ARGS]) == 2
    assert (tmp_path / "p" / "notes.txt").read_text() == "mine"


def test_resume_after_a_kill_and_prefetching_workers_give_the_same_weights(tmp_path):
    quiet = dict(progress=False, log=lambda s: None)
    straight = pretrain(_cfg(tmp_path, "a"), **quiet)
    killed = pretrain(_cfg(tmp_path, "b"), stop_at=3, **quiet)
    assert killed.weights is None and not (tmp_path / "b" / "body.npz").exists()
    resumed = pretrain(_cfg(tmp_path, "b"), resume=True, **quiet)
    helpers = pretrain(_cfg(tmp_path, "c"), workers=2, **quiet)
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a") == _losses(tmp_path / "c")
    ref = _npz(straight.weights)
    for other in (resumed, helpers):
        got = _npz(other.weights)
        assert got.keys() == ref.keys()
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    assert straight.top1 == resumed.top1 == helpers.top1
    with pytest.raises(ValueError, match="recipe differs in \\['lr'\\]"):
        pretrain(_cfg(tmp_path, "b", lr=0.1, iterations=7), resume=True, **quiet)


def test_a_detection_run_starts_from_the_body_and_keeps_frozen_layers(cli_run, train_set, tmp_path):
    copy = tmp_path / "body"
    for suffix in (".npz", ".json"):
        copy.with_suffix(suffix).write_bytes((cli_run / "body").with_suffix(suffix).read_bytes())
    body = _npz(copy)
    model_cfg = with_fields(TINY, backbone_init=str(copy), freeze_at=2)
    lines = []
    res = train(model_cfg, tiny_cfg(tmp_path, "ft", iterations=2), train_set, progress=False, log=lines.append)
    assert any(str(copy) in line for line in lines)
    state = res.model.state_dict()
    for k in ("conv1.weight", "bn1.weight", "layer1.0.conv1.weight"):      # frozen: as pretrained
        np.testing.assert_array_equal(state["backbone.body." + k], body[k])
    assert not np.array_equal(state["backbone.body.layer3.0.conv1.weight"], body["layer3.0.conv1.weight"])
    for suffix in (".npz", ".json"):      # a resumed run reads its checkpoint, not the body file
        copy.with_suffix(suffix).unlink()
    res2 = train(model_cfg, tiny_cfg(tmp_path, "ft", iterations=3), train_set, resume=True, progress=False,
                 log=lambda s: None)
    assert res2.completed and res2.iteration == 3
    np.testing.assert_array_equal(res2.model.state_dict()["backbone.body.conv1.weight"], body["conv1.weight"])


def test_a_body_file_reproduces_its_recorded_check(cli_run):
    info = json.loads((cli_run / "body.json").read_text())
    assert info["check"]["images"] == CHECK_IMAGES and info["check"]["split"] == "val"
    recorded, now = check_body_file(cli_run / "body")
    assert now == recorded
    arrays = _npz(cli_run / "body")       # another classifier layer: another top-1 (the check can fail)
    arrays["fc.bias"] = np.where(np.arange(len(CLASSES)) == 3, 100.0, 0.0).astype(np.float32)
    np.savez(cli_run / "other.npz", **arrays)
    (cli_run / "other.json").write_text((cli_run / "body.json").read_text())
    try:
        assert check_body_file(cli_run / "other")[1] == pytest.approx(1 / len(CLASSES), abs=0.01)
    finally:
        (cli_run / "other.npz").unlink()
        (cli_run / "other.json").unlink()


SHIPPED = sorted(WEIGHTS_DIR.glob("*.json"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_body_reproduces_its_recorded_top1(path):
    """Each file in mrcnn_np/weights/: its classifier scores its recorded top-1 on the held-out check
    (a few borderline images may flip on another BLAS: 2 of 128 allowed)."""
    recorded, now = check_body_file(path.with_suffix(""))
    assert abs(now - recorded) <= 2 / 128


def test_train_command_from_a_body_file_or_refusing_a_missing_one(cli_run, tmp_path, capsys, monkeypatch):
    import mrcnn_np.detection.pretrained as pretrained

    data = tmp_path / "d"
    assert main(["data", "shapes", "--out", str(data), "--train", "2", "--val", "0", "--size", "64", "--quiet"]) == 0
    common = ["train", "--data", str(data), "--iters", "1", "--batch-size", "1", "--progress", "lines"]
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "no_weights")
    capsys.readouterr()
    assert main(common + ["--out", str(tmp_path / "a"), "--backbone-init", "pretrained"]) == 2
    one_error_line(capsys, "no pretrained weights")
    assert not (tmp_path / "a" / "losses.csv").exists()
    assert main(common + ["--out", str(tmp_path / "b"), "--backbone-init", "pretrained", "--backbone-weights",
                          str(cli_run / "body"), "--freeze-at", "1"]) == 0
    model = json.loads((tmp_path / "b" / "model.json").read_text())
    assert (model["backbone_init"], model["freeze_at"]) == (str(cli_run / "body"), 1)
    with np.load(tmp_path / "b" / "model.npz") as f:
        np.testing.assert_array_equal(f["backbone.body.conv1.weight"], _npz(cli_run / "body")["conv1.weight"])
