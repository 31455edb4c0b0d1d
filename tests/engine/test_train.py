"""Training loop: determinism, exact resume after a kill, NaN handling, evaluation log,
refusing to overwrite a run, images without objects, config validation."""

import json
from dataclasses import replace

import numpy as np
import pytest

from mrcnn_np.autodiff import Tensor
from mrcnn_np.detection.mask_rcnn import LOSS_NAMES, MaskRCNN
from mrcnn_np.engine.data import shapes_split
from mrcnn_np.engine.train import COLUMNS, TrainConfig, TrainingDiverged, read_losses, run_digest, train

from .conftest import TINY
from .conftest import tiny_cfg as _cfg

SAME = [c for c in COLUMNS if c != "sec_per_iter"]


@pytest.fixture(scope="module")
def straight(train_set, tmp_path_factory):
    """An uninterrupted 6-iteration run (shared by the determinism and resume tests)."""
    tmp = tmp_path_factory.mktemp("straight")
    res = train(TINY, _cfg(tmp, "a"), train_set, progress=False, log=lambda s: None)
    return res, read_losses(res.out_dir)


def test_run_folder_contents(straight):
    res, log = straight
    assert res.completed and res.iteration == 6
    names = sorted(p.name for p in res.out_dir.iterdir())
    assert names == ["checkpoint_000003.json", "checkpoint_000003.npz", "checkpoint_000006.json",
                     "checkpoint_000006.npz", "losses.csv", "model.classes.json", "model.json", "model.npz"]
    np.testing.assert_array_equal(log["iteration"], np.arange(6))
    assert np.isfinite(log["total"]).all() and (log["total"] > 0).all()
    np.testing.assert_allclose(log["total"], sum(log[k] for k in LOSS_NAMES), rtol=1e-5)
    # warmup from lr * 0.001 over 2 iterations, then x0.1 at 50 % of the schedule
    np.testing.assert_allclose(log["lr"], [1e-5, 0.005005, 0.01, 0.001, 0.001, 0.001], rtol=1e-9)
    assert (log["num_pos_anchors"] > 0).all() and (log["sec_per_iter"] > 0).all()


def test_same_seed_same_losses_other_seed_differs(straight, train_set, tmp_path):
    _, log = straight
    again = train(TINY, _cfg(tmp_path, "b", iterations=3), train_set, progress=False, log=lambda s: None)
    log_b = read_losses(again.out_dir)
    for c in SAME:
        if c != "lr":  # the schedule depends on the length; the first 3 losses do not
            np.testing.assert_array_equal(log_b[c], log[c][:3], err_msg=c)
    other = train(TINY, _cfg(tmp_path, "c", iterations=3, seed=1), train_set, progress=False, log=lambda s: None)
    assert not np.array_equal(read_losses(other.out_dir)["total"], log_b["total"])


def test_resume_after_a_kill_continues_exactly(straight, train_set, tmp_path):
    _, log = straight
    cfg = _cfg(tmp_path, "killed")
    first = train(TINY, cfg, train_set, stop_at=4, progress=False, log=lambda s: None)
    assert not first.completed and first.iteration == 4
    assert len(read_losses(first.out_dir)["total"]) == 4  # iteration 3 ran after checkpoint 3
    assert not (first.out_dir / "model.npz").exists()
    lines = []
    second = train(TINY, cfg, train_set, resume=True, progress=False, log=lines.append)  # new objects
    assert second.completed and any("from checkpoint_000003" in s for s in lines)
    resumed = read_losses(second.out_dir)
    np.testing.assert_array_equal(resumed["iteration"], np.arange(6))  # iteration 3 redone, not duplicated
    for c in SAME:
        np.testing.assert_allclose(resumed[c], log[c], rtol=1e-6, atol=1e-7, err_msg=c)
    a = np.load(straight[0].out_dir / "model.npz")
    b = np.load(second.out_dir / "model.npz")
    for k in a.files:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_resume_refuses_another_recipe_and_existing_runs_are_not_overwritten(straight, train_set, tmp_path):
    res, _ = straight
    cfg = _cfg(res.out_dir.parent, res.out_dir.name)
    with pytest.raises(ValueError, match="already holds a run"):
        train(TINY, cfg, train_set, progress=False, log=lambda s: None)
    with pytest.raises(ValueError, match=r"differs in \['lr'\]"):
        train(TINY, replace(cfg, lr=0.5), train_set, resume=True, progress=False, log=lambda s: None)
    with pytest.raises(ValueError, match="model config differs"):
        train(replace(TINY, num_classes=4), cfg, train_set, resume=True, progress=False, log=lambda s: None)


def test_resume_without_checkpoint_starts_afresh(train_set, tmp_path):
    lines = []
    res = train(TINY, _cfg(tmp_path, "fresh", iterations=1), train_set, resume=True, progress=False,
                log=lines.append)
    assert res.completed and any("starting from scratch" in s for s in lines)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(train_set, tmp_path, monkeypatch):
    forward = MaskRCNN.forward
    calls = []

    def poisoned(self, images, targets=None, **kw):
        out = forward(self, images, targets, **kw)
        calls.append(1)
        if len(calls) == 5:  # iteration 4 (0-based)
            out["loss_mask"] = Tensor(np.array(np.nan, np.float32))
        return out

    monkeypatch.setattr(MaskRCNN, "forward", poisoned)
    cfg = _cfg(tmp_path, "nan", checkpoint_every=2)
    with pytest.raises(TrainingDiverged, match=r"loss_mask is nan at iteration 4 .*checkpoint_000004 \(kept\)"):
        train(TINY, cfg, train_set, progress=False, log=lambda s: None)
    out = tmp_path / "nan"
    assert (out / "checkpoint_000004.npz").is_file() and not (out / "model.npz").exists()
    assert len(read_losses(out)["total"]) == 4  # the bad iteration is not logged


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_learning_rate_diverges_with_a_message(train_set, tmp_path):
    cfg = _cfg(tmp_path, "huge", lr=1e12, warmup_iters=0, clip=0.0, iterations=4)
    msg = r"(NaN or inf|is nan|is inf|is -inf).* at iteration \d+ .*no checkpoint"
    with pytest.raises(TrainingDiverged, match=msg):
        train(TINY, cfg, train_set, progress=False, log=lambda s: None)


def test_periodic_evaluation_is_logged(shapes64, train_set, tmp_path):
    val = shapes_split(shapes64, "val")
    cfg = _cfg(tmp_path, "eval", iterations=4, eval_every=2, eval_images=2, log_every=2)
    lines = []
    res = train(TINY, cfg, train_set, val_set=val, progress=False, log=lines.append)
    evals = json.loads((res.out_dir / "eval.json").read_text())
    assert [e["iteration"] for e in evals] == [2, 4] and evals == res.evals
    for e in evals:
        for t in ("bbox", "segm"):
            assert set(e[t]) >= {"AP", "AP50", "AR100"} and all(-1 <= v <= 1 for v in e[t].values())
        assert set(e["per_class"]["bbox"]) == set(val.class_names[1:])
    assert sum(s.startswith("iter ") for s in lines) == 3 and sum(s.startswith("eval @") for s in lines) == 2


def test_progress_bar_mode(train_set, tmp_path, capsys):
    train(TINY, _cfg(tmp_path, "bar", iterations=2), train_set, progress=True)
    err = capsys.readouterr().err
    assert "train" in err and "loss" in err and "2/2" in err


class _WithEmpty:
    """The training set, but its first image has no objects."""

    def __init__(self, ds):
        self.ds, self.class_names, self.label_to_cat_id = ds, ds.class_names, ds.label_to_cat_id

    def __len__(self):
        return 2

    def __getitem__(self, i):
        s = self.ds[i]
        if i == 0:
            s = dict(s, boxes=s["boxes"][:0], labels=s["labels"][:0], masks=s["masks"][:0])
        return s


def test_images_without_objects_train(train_set, tmp_path):
    res = train(TINY, _cfg(tmp_path, "empty", iterations=2), _WithEmpty(train_set), progress=False,
                log=lambda s: None)
    assert np.isfinite(read_losses(res.out_dir)["total"]).all()


@pytest.mark.parametrize("kw, match", [
    ({"iterations": 0}, "iterations must be >= 1"), ({"batch_size": 0}, "batch_size"),
    ({"lr": -1.0}, "lr must be"), ({"lr": float("nan")}, "lr must be"),
    ({"milestones": (0.9, 0.5)}, "milestones"), ({"milestones": (1.5,)}, "milestones"),
    ({"clip": -1.0}, "clip"), ({"eval_every": -2}, "eval_every")])
def test_train_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_train_config_milestones_in_iterations():
    assert TrainConfig(iterations=1000, milestones=[0.75, 0.9]).milestone_iters() == [750, 900]


def test_run_digest_follows_the_recipe_not_the_bookkeeping():
    cfg = TrainConfig(iterations=100)
    d = run_digest(TINY, cfg)
    assert len(d) == 8 and d == run_digest(TINY, TrainConfig(iterations=100))
    assert run_digest(TINY, replace(cfg, eval_every=7, out_dir="elsewhere", log_every=3)) == d
    for other in (replace(cfg, lr=0.01), replace(cfg, iterations=200), replace(cfg, seed=1)):
        assert run_digest(TINY, other) != d
    assert run_digest(replace(TINY, num_classes=3), cfg) != d
