"""Weight conversion: a torchvision state_dict (.pth with torch, or an exported .npz without)
becomes our .npz + .json, and the converted model computes what torchvision computes."""

import json

import numpy as np
import pytest

from mrcnn_np.detection.config import preset, with_fields
from mrcnn_np.detection.convert import (config_from_dict, convert_state_dict, load_model, main,
                                        read_state_dict, save_weights)
from mrcnn_np.detection.mask_rcnn import MaskRCNN
from dataclasses import asdict


def test_config_json_round_trip():
    for name in ("teaching", "r50_fpn", "r50_c4", "x101_fpn"):
        cfg = with_fields(preset(name), roi_op="roiwarp", aggregation="avg")
        assert config_from_dict(json.loads(json.dumps(asdict(cfg)))) == cfg


def test_drops_bn_counters_and_casts():
    state = {"a.weight": np.ones((2, 2), np.float64), "bn.num_batches_tracked": np.array(3)}
    out = convert_state_dict(state)
    assert list(out) == ["a.weight"] and out["a.weight"].dtype == np.float32


def test_npz_state_dict_needs_no_torch(tmp_path):
    model = MaskRCNN(with_fields(preset("teaching"), num_classes=4), seed=1)
    np.savez(tmp_path / "sd.npz", **model.state_dict())
    state = read_state_dict(tmp_path / "sd.npz")
    again = MaskRCNN(with_fields(preset("teaching"), num_classes=4), seed=2)
    again.load_state_dict(state)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[k], v)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.pth"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no such file") and err.count("\n") == 1


def test_load_model_rejects_a_bad_config(tmp_path):
    model = MaskRCNN(with_fields(preset("teaching"), num_classes=4))
    save_weights(model, tmp_path / "w")
    (tmp_path / "w.json").write_text('{"num_classes": 4, "bogus": 1}')
    with pytest.raises(ValueError, match="not a mrcnn_np config"):
        load_model(tmp_path / "w")


@pytest.mark.reference
@pytest.mark.slow
def test_pth_to_numpy_model_matches_torchvision(tmp_path):
    """The documented user path: torch.save'd weights -> convert CLI -> load_model -> predict."""
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    tv = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=160, max_size=200,
                               box_score_thresh=0.0).eval()
    with torch.no_grad():
        tv.roi_heads.box_predictor.cls_score.weight.mul_(0.1)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    assert main(["--export-npz", str(tmp_path / "tv.pth"), str(tmp_path / "tv.npz")]) == 0
    assert main([str(tmp_path / "tv.npz"), str(tmp_path / "ours")]) == 0
    for big in ("tv.pth", "tv.npz"):    # ~170 MB each; pytest keeps the last three tmp folders
        (tmp_path / big).unlink()
    cfg = json.loads((tmp_path / "ours.json").read_text())
    assert cfg["num_classes"] == 91
    # BatchNorm2d of an unpretrained torchvision model has eps 1e-5; the COCO weights use 0
    model = load_model(tmp_path / "ours")
    model.cfg = None
    model = MaskRCNN(with_fields(config_from_dict(cfg), min_size=(160,), max_size=200,
                                 frozen_bn_eps=1e-5, **{"roi_heads.score_thresh": 0.0}))
    model.load_state_dict(read_state_dict(tmp_path / "ours.npz"))
    (tmp_path / "ours.npz").unlink()
    img = np.random.default_rng(0).uniform(size=(3, 120, 150)).astype(np.float32)
    with torch.no_grad():
        want = tv([torch.from_numpy(img)])[0]
    got = model.predict([img])[0]
    n = min(10, len(want["scores"]))
    assert n > 0
    np.testing.assert_allclose(got["scores"][:n], want["scores"][:n].numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(got["labels"][:n], want["labels"][:n].numpy())
