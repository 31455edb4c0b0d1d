"""The run folder's rules (nothing overwritten that a run did not create), resume past an
unreadable checkpoint, corrupt weights and checkpoints as one-line errors, config checks,
and divergence without warnings."""

import json
import warnings
import zipfile

import numpy as np
import pytest

from mrcnn_np.detection.config import preset, with_fields
from mrcnn_np.detection.convert import save_weights
from mrcnn_np.detection.mask_rcnn import MaskRCNN
from mrcnn_np.engine import CheckpointError, TrainConfig, TrainingDiverged, load_weights, read_checkpoint, train
from mrcnn_np.engine.run_folder import COLUMNS, read_losses

from .conftest import TINY, tiny_cfg

SAME = [c for c in COLUMNS if c != "sec_per_iter"]
QUIET = dict(progress=False, log=lambda s: None)


def _cfg(tmp_path, name, **kw):
    """``tiny_cfg`` with a checkpoint every 2 iterations, three kept."""
    return tiny_cfg(tmp_path, name, **dict(dict(checkpoint_every=2, keep_checkpoints=3), **kw))


@pytest.fixture(scope="module")
def finished(train_set, tmp_path_factory):
    """An uninterrupted 6-iteration run with checkpoints at 2, 4, 6."""
    res = train(TINY, _cfg(tmp_path_factory.mktemp("fin"), "a"), train_set, **QUIET)
    return res.out_dir


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_finished_run_without_checkpoints_is_not_overwritten(finished, train_set, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("losses.csv", "model.npz", "model.json", "model.classes.json"):
        (run / name).write_bytes((finished / name).read_bytes())
    before = _snapshot(run)
    for resume in (False, True):
        with pytest.raises(ValueError, match="finished run whose checkpoints are gone"):
            train(TINY, _cfg(tmp_path, "run"), train_set, resume=resume, **QUIET)
        assert _snapshot(run) == before
    res = train(TINY, _cfg(tmp_path, "run", iterations=2), train_set, overwrite=True, **QUIET)
    assert res.completed and len(read_losses(run)["total"]) == 2


def test_a_folder_of_other_files_is_refused_unless_overwrite(train_set, tmp_path):
    run = tmp_path / "theirs"
    run.mkdir()
    (run / "annotations.json").write_text("{}")
    with pytest.raises(ValueError, match="not empty and is not a run folder"):
        train(TINY, _cfg(tmp_path, "theirs", iterations=1), train_set, other_files_ok=False, **QUIET)
    assert sorted(p.name for p in run.iterdir()) == ["annotations.json"]
    train(TINY, _cfg(tmp_path, "theirs", iterations=1), train_set, other_files_ok=False, overwrite=True, **QUIET)
    assert (run / "annotations.json").read_text() == "{}" and (run / "model.npz").is_file()
    with pytest.raises(ValueError, match="is a file"):
        train(TINY, _cfg(tmp_path, "theirs/annotations.json", iterations=1), train_set, **QUIET)


def test_resume_with_fewer_iterations_than_done_is_refused(finished, train_set, tmp_path):
    killed = _cfg(tmp_path, "k")
    train(TINY, killed, train_set, stop_at=5, **QUIET)  # checkpoints 2 and 4
    with pytest.raises(ValueError, match=r"checkpoint_000004 is already at iteration 4 .*>= 4"):
        train(TINY, _cfg(tmp_path, "k", iterations=3), train_set, resume=True, **QUIET)
    assert not (tmp_path / "k" / "eval.json").exists() and not (tmp_path / "k" / "model.npz").exists()


@pytest.mark.parametrize("damage", ["truncate", "crc", "json_list", "json_field"])
def test_resume_falls_back_past_an_unreadable_newest_checkpoint(finished, train_set, tmp_path, damage):
    cfg = _cfg(tmp_path, "k")
    train(TINY, cfg, train_set, stop_at=5, **QUIET)  # checkpoints 2 and 4, iteration 4 logged
    npz, js = tmp_path / "k" / "checkpoint_000004.npz", tmp_path / "k" / "checkpoint_000004.json"
    if damage == "truncate":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    elif damage == "crc":
        _flip_a_data_byte(npz)
    elif damage == "json_list":
        js.write_text("[1, 2]")
    else:
        doc = json.loads(js.read_text())
        del doc["loader"]
        js.write_text(json.dumps(doc))
    lines = []
    res = train(TINY, cfg, train_set, resume=True, progress=False, log=lines.append)
    warned = [s for s in lines if "checkpoint_000004" in s]
    assert len(warned) == 1 and "skipping an unreadable checkpoint" in warned[0] and "\n" not in warned[0]
    assert any("from checkpoint_000002" in s for s in lines) and res.completed
    resumed, straight = read_losses(res.out_dir), read_losses(finished)
    for c in SAME:
        np.testing.assert_array_equal(resumed[c], straight[c], err_msg=c)


def _flip_a_data_byte(npz):
    """Change one byte inside the first stored array's data (its CRC no longer matches)."""
    with zipfile.ZipFile(npz) as z:
        info = z.infolist()[0]
    raw = bytearray(npz.read_bytes())
    at = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size - 1
    raw[at] ^= 0xFF
    npz.write_bytes(bytes(raw))


def test_no_readable_checkpoint_is_an_error_not_a_fresh_start(finished, train_set, tmp_path):
    cfg = _cfg(tmp_path, "k")
    train(TINY, cfg, train_set, stop_at=3, **QUIET)  # checkpoint 2 only
    (tmp_path / "k" / "checkpoint_000002.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match="none of its 1 checkpoint"):
        train(TINY, cfg, train_set, resume=True, **QUIET)


def test_corrupt_weights_are_one_line_errors(finished, tmp_path):
    model = tmp_path / "w"
    save_weights(MaskRCNN(TINY, seed=0), model)
    good_npz, good_json = model.with_suffix(".npz").read_bytes(), model.with_suffix(".json").read_text()
    cases = {
        "truncated": (lambda: model.with_suffix(".npz").write_bytes(good_npz[:1000]), "w.npz"),
        "crc": (lambda: _flip_a_data_byte(model.with_suffix(".npz")), "w.npz"),
        "list json": (lambda: model.with_suffix(".json").write_text("[1, 2, 3]"), "w.json"),
        "unknown field": (lambda: model.with_suffix(".json").write_text(
            json.dumps(dict(json.loads(good_json), colour="red"))), "colour"),
        "bad sub-config": (lambda: model.with_suffix(".json").write_text(
            json.dumps(dict(json.loads(good_json), rpn=[1]))), "w.json"),
    }
    for name, (damage, part) in cases.items():
        model.with_suffix(".npz").write_bytes(good_npz)
        model.with_suffix(".json").write_text(good_json)
        damage()
        with pytest.raises(CheckpointError) as e:
            load_weights(model)
        assert part in str(e.value) and "\n" not in str(e.value), (name, str(e.value))


def test_weights_of_another_preset_give_a_short_summary(tmp_path):
    save_weights(MaskRCNN(TINY, seed=0), tmp_path / "w")             # the config (model.json) says TINY
    save_weights(MaskRCNN(with_fields(preset("teaching"), num_classes=3), seed=0), tmp_path / "other")
    with np.load(tmp_path / "other.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays.pop(sorted(arrays)[0])
    arrays["extra.weight"] = np.zeros(3, np.float32)
    np.savez(tmp_path / "w.npz", **arrays)                          # the arrays come from another model
    with pytest.raises(CheckpointError) as e:
        load_weights(tmp_path / "w")
    msg = str(e.value)
    assert "w.npz" in msg and "1 missing" in msg and "1 unexpected (extra.weight)" in msg
    assert "of another shape" in msg and len(msg) < 400 and "\n" not in msg, msg


def test_checkpoint_json_with_missing_or_unknown_fields(finished, tmp_path):
    src = finished / "checkpoint_000006"
    for name, edit, part in [("missing", lambda d: d.pop("model_config"), "model_config"),
                             ("unknown", lambda d: d["model_config"].update(colour=1), "colour"),
                             ("iteration", lambda d: d.update(iteration="six"), "iteration")]:
        dst = tmp_path / name
        dst.mkdir()
        (dst / "checkpoint_000006.npz").write_bytes(src.with_suffix(".npz").read_bytes())
        doc = json.loads(src.with_suffix(".json").read_text())
        edit(doc)
        (dst / "checkpoint_000006.json").write_text(json.dumps(doc))
        with pytest.raises(CheckpointError, match=part):
            load_weights(dst)
    with pytest.raises(CheckpointError, match="unreadable or truncated"):
        (tmp_path / "t").mkdir()
        (tmp_path / "t" / "checkpoint_000006.json").write_text(src.with_suffix(".json").read_text())
        (tmp_path / "t" / "checkpoint_000006.npz").write_bytes(src.with_suffix(".npz").read_bytes()[:500])
        read_checkpoint(tmp_path / "t" / "checkpoint_000006")


@pytest.mark.parametrize("field", ["clip", "momentum", "weight_decay", "lr", "gamma", "warmup_factor",
                                   "flip_prob"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_float_fields_reject_non_finite_and_negative(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_divergence_prints_no_numpy_warning(train_set, tmp_path):
    cfg = _cfg(tmp_path, "huge", lr=1e12, warmup_iters=0, clip=0.0, iterations=4)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(TrainingDiverged):
            train(TINY, cfg, train_set, **QUIET)
    assert [str(w.message) for w in seen if issubclass(w.category, RuntimeWarning)] == []
