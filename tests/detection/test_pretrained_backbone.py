"""Pretrained backbone bodies: loading into each architecture, refusing what does not fit (one
line), freezing the first layers, and the unchanged scratch initialisation."""

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mrcnn_np.autodiff.optim import SGD
from mrcnn_np.detection.config import preset, with_fields
from mrcnn_np.detection.mask_rcnn import MaskRCNN, total_loss
from mrcnn_np.detection.pretrained import (BodyClassifier, backbone_weights_path, body_keys, frozen_modules,
                                           load_pretrained_backbone, save_body, shipped_weights)

from ..model_checks import scene_batch

FIXTURES = Path(__file__).parents[1] / "fixtures"
TEACHING = preset("teaching")
C4 = with_fields(TEACHING, architecture="c4", **{"rpn.anchor_sizes": ((8, 16, 32, 64, 128),)})
C5 = with_fields(TEACHING, architecture="c5", **{"rpn.anchor_sizes": ((8, 16, 32, 64, 128),)})


def _digests():
    spec = importlib.util.spec_from_file_location("make_init_digest", FIXTURES / "make_init_digest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def body_file(tmp_path_factory):
    """A body file of the teaching body (a classifier with seed 5, so its weights differ from any model's)."""
    clf = BodyClassifier(TEACHING.backbone, 24, seed=5)
    return save_body(clf, tmp_path_factory.mktemp("body") / "teaching", {"top1": 0.5})


def test_scratch_initialisation_is_bit_identical_to_before():
    """tests/fixtures/init_digest.json was made by make_init_digest.py before pretraining existed."""
    mod = _digests()
    before = json.loads((FIXTURES / "init_digest.json").read_text())["digests"]
    for name, make in mod.CONFIGS.items():
        cfg = make()
        assert cfg.backbone_init == "scratch" and cfg.freeze_at == 0
        assert mod.state_digest(MaskRCNN(cfg, seed=0)) == before[name], name


@pytest.mark.parametrize("cfg", [TEACHING, C4, C5], ids=["fpn", "c4", "c5"])
def test_loading_sets_the_body_and_leaves_the_rest(cfg, body_file):
    model = MaskRCNN(cfg, seed=0)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    loaded = load_pretrained_backbone(model, body_file)
    with np.load(body_file.with_suffix(".npz"), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    keys = body_keys(model)
    assert sorted(loaded) == sorted(keys.values())
    assert set(keys) == {k for k in arrays if not k.startswith("fc.")}   # a place for every body array
    after = model.state_dict()
    for src, dst in keys.items():
        np.testing.assert_array_equal(after[dst], arrays[src], err_msg=dst)
        if arrays[src].ndim == 4:              # conv weights (norms start at 1 and 0 either way)
            assert not np.array_equal(before[dst], arrays[src]), dst
    for k in set(after) - set(loaded):
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    if cfg.architecture == "c4":
        assert any(k.startswith("roi_heads.res5.") for k in loaded)


def test_a_body_of_another_config_is_refused_in_one_line(body_file):
    deeper = with_fields(TEACHING, **{"backbone.layers": (1, 1, 3, 1)})
    with pytest.raises(ValueError) as e:
        load_pretrained_backbone(MaskRCNN(deeper), body_file)
    msg = str(e.value)
    assert "\n" not in msg and str(body_file.with_suffix(".json")) in msg and "body_config.layers" in msg


def test_an_array_of_another_shape_is_refused_in_one_line(body_file, tmp_path):
    with np.load(body_file.with_suffix(".npz"), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["layer2.0.conv1.weight"] = arrays["layer2.0.conv1.weight"][:, :3]
    bad = tmp_path / "bad"
    np.savez(bad.with_suffix(".npz"), **arrays)
    bad.with_suffix(".json").write_text(body_file.with_suffix(".json").read_text())
    model = MaskRCNN(TEACHING)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as e:
        load_pretrained_backbone(model, bad)
    msg = str(e.value)
    assert "\n" not in msg and str(bad.with_suffix(".npz")) in msg and "layer2.0.conv1.weight" in msg
    for k, v in model.state_dict().items():      # refused before anything was copied
        np.testing.assert_array_equal(v, before[k])
    del arrays["layer2.0.conv1.weight"]
    np.savez(bad.with_suffix(".npz"), **arrays)
    with pytest.raises(ValueError, match="no array 'layer2.0.conv1.weight'"):
        load_pretrained_backbone(model, bad)
    with pytest.raises(ValueError, match="not found"):
        load_pretrained_backbone(model, tmp_path / "missing")


def test_pretrained_means_the_shipped_file_of_the_same_body(body_file, tmp_path):
    assert backbone_weights_path(TEACHING) is None
    with pytest.raises(ValueError, match="no pretrained weights"):
        shipped_weights(TEACHING.backbone, tmp_path)
    for suffix in (".npz", ".json"):
        (tmp_path / ("teaching" + suffix)).write_bytes(body_file.with_suffix(suffix).read_bytes())
    assert shipped_weights(TEACHING.backbone, tmp_path) == tmp_path / "teaching"
    assert backbone_weights_path(replace(TEACHING, backbone_init="pretrained"), tmp_path) == tmp_path / "teaching"
    with pytest.raises(ValueError, match="no pretrained weights"):
        shipped_weights(replace(TEACHING.backbone, layers=(1, 1, 3, 1)), tmp_path)
    assert backbone_weights_path(replace(TEACHING, backbone_init="some/file")) == Path("some/file")


def _one_step(cfg):
    model = MaskRCNN(cfg, seed=0)
    model.train()
    params = list(model.parameters())
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    images, targets = scene_batch([0, 1])
    opt = SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)
    opt.zero_grad()
    total_loss(model(images, targets)).backward()
    opt.step()
    return model, before


@pytest.mark.parametrize("freeze_at", [1, 2])
def test_frozen_layers_do_not_move_and_the_others_do(freeze_at):
    cfg = with_fields(TEACHING, freeze_at=freeze_at, min_size=(64,), max_size=64)
    model, before = _one_step(cfg)
    frozen = {id(p) for m in frozen_modules(model, freeze_at) for p in m.parameters()}
    assert len(frozen) == (3 if freeze_at == 1 else 3 + len(list(model.backbone.body.layer1.parameters())))
    moved = 0
    for name, p in model.named_parameters():
        same = np.array_equal(p.data, before[name])
        if id(p) in frozen:
            assert same and p.grad is None and not p.requires_grad, name
        else:
            moved += not same
    assert moved > 0.9 * (len(before) - len(frozen))
    assert "backbone.body.layer2.0.conv1.weight" in before and not np.array_equal(
        dict(model.named_parameters())["backbone.body.layer2.0.conv1.weight"].data,
        before["backbone.body.layer2.0.conv1.weight"])


def test_freeze_at_is_checked():
    with pytest.raises(ValueError, match="freeze_at"):
        with_fields(TEACHING, freeze_at=6)
    with pytest.raises(ValueError, match="freeze_at"):
        with_fields(C4, freeze_at=5)       # C4's body has three stages
    with pytest.raises(ValueError, match="backbone_init"):
        with_fields(TEACHING, backbone_init="")
