"""Checkpoints: complete pairs only, no pickle, pruning, consistency checks, loading weights
from a run folder / checkpoint / weights prefix."""

import json

import numpy as np
import pytest

from mrcnn_np.autodiff.optim import SGD
from mrcnn_np.detection.convert import save_weights
from mrcnn_np.detection.mask_rcnn import MaskRCNN
from mrcnn_np.engine.checkpoint import (latest_checkpoint, list_checkpoints, load_weights, read_checkpoint,
                                        save_checkpoint, write_classes)

from .conftest import TINY


@pytest.fixture(scope="module")
def model():
    return MaskRCNN(TINY, seed=5)


def _opt(model):
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()  # momentum buffers exist
    for p in model.parameters():
        p.data += 0.1  # undo the step (lr * buf = 0.1): keep the shared model as it was
        p.grad = None
    return opt


def test_round_trip_without_pickle(model, tmp_path):
    opt = _opt(model)
    rng = np.random.default_rng(7)
    rng.random(3)
    meta = {"rng": {"sampling": rng.bit_generator.state}, "note": "x"}
    prefix = save_checkpoint(tmp_path, 12, model, opt, meta)
    assert prefix.name == "checkpoint_000012" and latest_checkpoint(tmp_path) == prefix
    with np.load(prefix.with_suffix(".npz"), allow_pickle=False) as f:  # plain arrays only
        assert any(k.startswith("optim/momentum_buffer.") for k in f.files)
    model_arrays, optim_arrays, got = read_checkpoint(prefix)
    assert got["iteration"] == 12 and got["note"] == "x" and got["model_config"]["num_classes"] == 6
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model_arrays[k], v)
    again = SGD(MaskRCNN(TINY, seed=0).parameters(), lr=0.1, momentum=0.9)
    again.load_state_dict(optim_arrays)
    for a, b in zip(again.momentum_buffers, opt.momentum_buffers):
        np.testing.assert_array_equal(a, b)
    other = np.random.default_rng(0)
    other.bit_generator.state = got["rng"]["sampling"]  # JSON round trip of a 128-bit state
    np.testing.assert_array_equal(other.random(4), rng.random(4))
    assert not list(tmp_path.glob("*.tmp*"))  # temporary files were renamed


def test_keeps_the_newest_and_ignores_incomplete(model, tmp_path):
    opt = _opt(model)
    for it in (10, 20, 30):
        save_checkpoint(tmp_path, it, model, opt, {}, keep=2)
    assert [it for it, _ in list_checkpoints(tmp_path)] == [20, 30]
    # a crash after the npz and before the JSON: that checkpoint does not count
    (tmp_path / "checkpoint_000040.npz").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path).name == "checkpoint_000030"
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_inconsistent_or_foreign_files_are_refused(model, tmp_path):
    opt = _opt(model)
    a = save_checkpoint(tmp_path, 1, model, opt, {})
    b = save_checkpoint(tmp_path, 2, model, opt, {})
    b.with_suffix(".npz").replace(a.with_suffix(".npz"))  # npz of iteration 2 beside the JSON of 1
    with pytest.raises(ValueError, match="holds iteration 2 but .* says 1"):
        read_checkpoint(a)
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    (tmp_path / "x.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="not a mrcnn_np checkpoint"):
        read_checkpoint(tmp_path / "x")
    with pytest.raises(ValueError, match="checkpoint file not found"):
        read_checkpoint(tmp_path / "missing")


def test_load_weights_from_any_form(model, tmp_path):
    opt = _opt(model)
    ckpt = save_checkpoint(tmp_path / "run", 3, model, opt,
                           {"class_names": ["background", "a", "b", "c", "d", "e"],
                            "label_to_cat_id": {"1": 10, "2": 20, "3": 30, "4": 40, "5": 50}})
    m1, names, ids = load_weights(ckpt)
    assert names[1] == "a" and ids[2] == 20 and not m1.training
    m2, _, _ = load_weights(tmp_path / "run")  # folder without model.json: newest checkpoint
    save_weights(model, tmp_path / "run" / "model")
    write_classes(tmp_path / "run" / "model", ["background", *"vwxyz"], {i: 100 + i for i in range(1, 6)})
    m3, names3, ids3 = load_weights(tmp_path / "run")  # folder with model.json: the final weights
    assert names3[1] == "v" and ids3[5] == 105
    m4, names4, _ = load_weights(tmp_path / "run" / "model.npz")
    for m in (m1, m2, m3, m4):
        for k, v in model.state_dict().items():
            np.testing.assert_array_equal(m.state_dict()[k], v)
    save_weights(model, tmp_path / "plain")
    assert load_weights(tmp_path / "plain")[1:] == (None, None)
    for bad, match in [(tmp_path / "nope", "nope.json: weights file not found"),
                       (tmp_path / "empty", "no weights in this folder")]:
        if bad.name == "empty":
            bad.mkdir()
        with pytest.raises(ValueError, match=match):
            load_weights(bad)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a mrcnn_np weights JSON"):
        load_weights(tmp_path / "junk")
