"""Keypoint head (paper §5): 2x bilinear upsampling op, heatmap targets, the m^2-way softmax
loss, heatmap decoding, flip maps; golden values from torchvision (tests/fixtures/keypoints.npz,
made by tests/fixtures/make_keypoints.py) and live comparisons (`reference`); the whole model
with ``keypoint_on`` (forward/backward, inference, config round trip, training log)."""

import dataclasses
import pathlib

import numpy as np
import pytest

from mrcnn_np.engine.data import to_model_image
from mrcnn_np.autodiff import F, Tensor, gradcheck, no_grad
from mrcnn_np.autodiff.upsample import bilinear_matrix, upsample_bilinear_forward
from mrcnn_np.detection.config import preset, with_fields
from mrcnn_np.detection.keypoint_head import (KeypointRCNNHeads, KeypointRCNNPredictor, flip_keypoints,
                                              heatmaps_to_keypoints, keypoint_flip_map, keypointrcnn_loss,
                                              keypoints_to_heatmap, resize_bicubic, resize_keypoints)
from mrcnn_np.detection.mask_rcnn import MaskRCNN, loss_names, total_loss
from tests.fixtures.make_keypoints import make_cases, torchvision_outputs

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "keypoints.npz"


@pytest.fixture(scope="module")
def golden():
    with np.load(FIXTURE, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _inputs(g):
    return {k[3:]: v for k, v in g.items() if k.startswith("in_")}


# ---------------------------------------------------------------- bilinear upsampling op
def test_bilinear_2x_hand_case():
    # 2x, align_corners=False: weights 0.75 / 0.25 between neighbours, borders copy the edge value
    x = np.array([0.0, 4.0], np.float32).reshape(1, 1, 1, 2)
    out, _ = upsample_bilinear_forward(x, scale_factor=2)
    np.testing.assert_array_equal(out[0, 0, 0], [0.0, 1.0, 3.0, 4.0])
    np.testing.assert_array_equal(out[0, 0, :, 0], [0.0, 0.0])          # one row -> two equal rows
    assert np.allclose(bilinear_matrix(3, 7).sum(axis=1), 1.0)           # rows are convex weights


@pytest.mark.parametrize("shape,kw", [
    ((2, 2, 3, 4), {"scale_factor": 2}), ((1, 2, 4, 3), {"size": (7, 5)}), ((1, 1, 5, 4), {"size": (3, 2)}),
    ((1, 1, 3, 4), {"scale_factor": 1.5}), ((1, 2, 3, 4), {"size": (6, 9), "align_corners": True})])
def test_upsample_bilinear_gradcheck(shape, kw):
    x = np.random.default_rng(0).normal(size=shape)
    gradcheck(lambda t: F.upsample_bilinear(t, **kw), [x])


def test_upsample_bilinear_equals_torch_golden(golden):
    x, dout = golden["in_up_x"], golden["in_up_dout"]
    t = Tensor(x, requires_grad=True)
    out = F.upsample_bilinear(t, scale_factor=2)
    out.backward(dout)
    np.testing.assert_allclose(out.data, golden["out_up_out"], atol=1e-6)
    np.testing.assert_allclose(t.grad, golden["out_up_dx"], atol=1e-5)
    out2, _ = upsample_bilinear_forward(x, size=tuple(golden["in_up_size_out_shape"]))
    np.testing.assert_allclose(out2, golden["out_up_size_out"], atol=1e-6)


def test_upsample_bad_input_is_named():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        upsample_bilinear_forward(np.zeros((3, 4), np.float32), scale_factor=2)
    with pytest.raises(ValueError, match="exactly one"):
        upsample_bilinear_forward(np.zeros((1, 1, 3, 4), np.float32), size=(2, 2), scale_factor=2)


# ---------------------------------------------------------------- targets
def test_keypoints_to_heatmap_reference_numbers():
    # docs/REFERENCE.md §14: RoI [10, 10, 66, 38], S = 56
    kp = np.array([[10, 10, 2], [66, 38, 1], [65.99, 37.99, 1], [9.99, 20, 1], [30, 20, 0], [38, 24, 2]],
                  np.float32)[:, None]
    targets, valid = keypoints_to_heatmap(kp, np.tile([10, 10, 66, 38], (6, 1)), 56)
    np.testing.assert_array_equal(valid[:, 0], [True, True, True, False, False, True])
    np.testing.assert_array_equal(targets[:, 0], [0, 3135, 3135, 0, 0, 28 * 56 + 28])


def test_keypoints_to_heatmap_equals_torchvision_golden(golden):
    targets, valid = keypoints_to_heatmap(golden["in_hm_keypoints"], golden["in_hm_rois"], int(golden["in_hm_size"]))
    np.testing.assert_array_equal(valid, golden["out_hm_valid"])
    np.testing.assert_array_equal(targets, golden["out_hm_targets"])
    assert 0 < valid.sum() < valid.size              # the case has both kinds


def _random_case(rng, n, k, lo, hi):
    xy = rng.uniform(0, 100, (n, 2))
    rois = np.concatenate([xy, xy + rng.uniform(lo, hi, (n, 2))], 1).astype(np.float32)
    kp = np.concatenate([rois[:, None, :2] + rng.uniform(0, 1, (n, k, 2)) * (rois[:, None, 2:] - rois[:, None, :2]),
                         np.full((n, k, 1), 2)], 2).astype(np.float32)
    return rois, kp


def test_encode_then_decode_returns_the_keypoint():
    rng = np.random.default_rng(3)
    s, n, k = 56, 60, 4
    # RoIs of at least S pixels: the decoder upsamples, so a one-hot map decodes to the output
    # pixel nearest the cell centre: within half a cell plus half a pixel of the keypoint
    rois, kp = _random_case(rng, n, k, 56, 150)
    targets, valid = keypoints_to_heatmap(kp, rois, s)
    assert valid.all()
    maps = np.zeros((n, k, s * s), np.float32)
    np.put_along_axis(maps, targets[..., None], 20.0, axis=2)              # one-hot logits
    dec, scores = heatmaps_to_keypoints(maps.reshape(n, k, s, s), rois)
    for axis, (a, b) in enumerate(((0, 2), (1, 3))):
        size = rois[:, b] - rois[:, a]
        bound = 0.5 * (size / s + size / np.ceil(size))
        assert (np.abs(dec[..., axis] - kp[..., axis]) <= bound[:, None] + 1e-4).all()
    assert (dec[..., 2] == 1).all() and (scores > 0).all()
    # smaller RoIs: the bicubic resize subsamples the map without smoothing (as torchvision), so
    # a one-hot peak can fall between samples; a smooth peak (what training produces) decodes
    # within one cell plus one pixel
    rois, kp = _random_case(rng, n, k, 8, 56)
    targets, _ = keypoints_to_heatmap(kp, rois, s)
    iy, ix = np.divmod(targets, s)
    grid = np.arange(s)
    blobs = np.exp(-((grid[None, None, :, None] - iy[..., None, None]) ** 2
                     + (grid[None, None, None, :] - ix[..., None, None]) ** 2) / (2 * 3.0 ** 2))
    dec, _ = heatmaps_to_keypoints(blobs.astype(np.float32), rois)
    for axis, (a, b) in enumerate(((0, 2), (1, 3))):
        size = rois[:, b] - rois[:, a]
        assert (np.abs(dec[..., axis] - kp[..., axis]) <= (size / s + size / np.ceil(size))[:, None] + 1e-4).all()
    # a 56 x 56 RoI at integer coordinates: one pixel per cell, decoding lands on the cell centre
    roi = np.array([[7, 9, 63, 65]], np.float32)
    t, _ = keypoints_to_heatmap(np.array([[[30.2, 41.9, 2]]], np.float32), roi, s)
    one_hot = np.zeros((1, 1, s * s), np.float32)
    one_hot[0, 0, t[0, 0]] = 1.0
    d, _ = heatmaps_to_keypoints(one_hot.reshape(1, 1, s, s), roi)
    np.testing.assert_allclose(d[0, 0, :2], [30.5, 41.5])


# ---------------------------------------------------------------- decoding
def test_heatmaps_to_keypoints_reference_example():
    maps = np.random.default_rng(0).uniform(-1, 0, (1, 2, 56, 56)).astype(np.float32)
    maps[0, 0, 3, 5] = 7.5                                  # docs/REFERENCE.md §14: peak at (iy=3, ix=5)
    maps[0, 1, 50, 10] = 2.0
    kp, scores = heatmaps_to_keypoints(maps, np.array([[0, 0, 56, 56]], np.float32))
    np.testing.assert_allclose(kp[0], [[5.5, 3.5, 1], [10.5, 50.5, 1]])
    np.testing.assert_allclose(scores[0], [7.5, 2.0])


def test_resize_bicubic_same_size_is_identity_and_constant_stays_constant():
    m = np.random.default_rng(0).normal(size=(2, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(resize_bicubic(m, (6, 5)), m, atol=1e-6)
    np.testing.assert_allclose(resize_bicubic(np.full((1, 4, 4), 3.0), (9, 7)), 3.0, atol=1e-12)


def test_heatmaps_to_keypoints_equals_torchvision_golden(golden):
    kp, scores = heatmaps_to_keypoints(golden["in_dec_maps"], golden["in_dec_rois"])
    np.testing.assert_allclose(kp, golden["out_dec_keypoints"], atol=1e-5)
    np.testing.assert_allclose(scores, golden["out_dec_scores"], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- loss
def _loss_case(g):
    c = _inputs(g)
    return ([c[f"loss_proposals_{i}"] for i in range(2)], [c[f"loss_gt_{i}"] for i in range(2)],
            [c[f"loss_idx_{i}"] for i in range(2)], c["loss_logits"])


def test_keypointrcnn_loss_equals_torchvision_golden(golden):
    props, gts, idxs, logits = _loss_case(golden)
    t = Tensor(logits, requires_grad=True)
    loss = keypointrcnn_loss(t, props, gts, idxs)
    loss.backward()
    np.testing.assert_allclose(loss.data, golden["out_loss"], rtol=1e-6)
    np.testing.assert_allclose(t.grad, golden["out_loss_grad"], atol=1e-7)
    assert loss.dtype == np.float32


def test_keypointrcnn_loss_gradcheck_and_invisible_keypoints_are_ignored():
    rng = np.random.default_rng(5)
    props = [np.array([[0, 0, 12, 12], [4, 2, 10, 14]], np.float32)]
    gt = np.array([[[3, 3, 2], [11, 1, 1], [5, 5, 0]], [[6, 7, 2], [20, 20, 2], [9, 12, 1]]], np.float32)
    idx = [np.array([0, 1])]
    logits = rng.normal(size=(2, 3, 6, 6))
    gradcheck(lambda x: keypointrcnn_loss(x, props, [gt], idx), [logits])
    t = Tensor(logits.copy(), requires_grad=True)
    keypointrcnn_loss(t, props, [gt], idx).backward()
    # (0, 2) has v = 0 and (1, 1) lies outside its RoI: their maps get no gradient
    assert np.abs(t.grad[0, 2]).max() == 0 and np.abs(t.grad[1, 1]).max() == 0
    assert np.abs(t.grad[0, 0]).max() > 0 and np.abs(t.grad[1, 2]).max() > 0     # v = 1 still trains


def test_keypointrcnn_loss_one_hot_value_and_no_valid_keypoint():
    # uniform logits: the loss is log(S^2) exactly
    props, idx = [np.array([[0, 0, 8, 8]], np.float32)], [np.array([0])]
    gt = np.array([[[1, 1, 2], [7, 7, 2]]], np.float32)
    loss = keypointrcnn_loss(Tensor(np.zeros((1, 2, 8, 8), np.float32)), props, [gt], idx)
    np.testing.assert_allclose(loss.data, np.log(64), rtol=1e-6)
    t = Tensor(np.ones((1, 2, 8, 8), np.float32), requires_grad=True)
    none = keypointrcnn_loss(t, props, [gt * np.array([1, 1, 0], np.float32)], idx)
    none.backward()
    assert float(none.data) == 0.0 and not t.grad.any()


def test_keypointrcnn_loss_bad_input_is_named():
    props, idx = [np.array([[0, 0, 8, 8]], np.float32)], [np.array([3])]
    gt = np.zeros((1, 2, 3), np.float32)
    with pytest.raises(ValueError, match="square"):
        keypointrcnn_loss(Tensor(np.zeros((1, 2, 8, 6), np.float32)), props, [gt], [np.array([0])])
    with pytest.raises(ValueError, match="matched_idxs"):
        keypointrcnn_loss(Tensor(np.zeros((1, 2, 8, 8), np.float32)), props, [gt], idx)
    with pytest.raises(ValueError, match="keypoint types"):
        keypointrcnn_loss(Tensor(np.zeros((1, 3, 8, 8), np.float32)), props, [gt], [np.array([0])])


# ---------------------------------------------------------------- flips, modules
def test_keypoint_flip_map_and_flip():
    names = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
    fm = keypoint_flip_map(names)
    np.testing.assert_array_equal(fm, [0, 2, 1, 4, 3])
    with pytest.raises(ValueError, match="mirror twin"):
        keypoint_flip_map(["head", "left_hand"])
    kp = np.array([[[5, 1, 2], [10, 2, 2], [2, 3, 1], [0, 0, 0], [7, 9, 2]]], np.float32)
    f = flip_keypoints(kp, 20, fm)
    np.testing.assert_array_equal(f[0], [[15, 1, 2], [18, 3, 1], [10, 2, 2], [13, 9, 2], [0, 0, 0]])
    np.testing.assert_array_equal(flip_keypoints(f, 20, fm), kp)          # flipping twice is the identity


def test_resize_keypoints_scales_x_and_y_separately():
    kp = np.array([[[10, 20, 2]]], np.float32)
    np.testing.assert_allclose(resize_keypoints(kp, (100, 50), (200, 150)), [[[30, 40, 2]]])


def test_keypoint_modules_names_and_shapes():
    heads = KeypointRCNNHeads(8, (16, 16, 12), rng=np.random.default_rng(0))
    names = [n for n, _ in heads.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]     # torchvision's
    pred = KeypointRCNNPredictor(12, 5, rng=np.random.default_rng(0))
    assert [n for n, _ in pred.named_parameters()] == ["kps_score_lowres.weight", "kps_score_lowres.bias"]
    x = Tensor(np.random.default_rng(1).normal(size=(3, 8, 14, 14)).astype(np.float32))
    assert pred(heads(x)).shape == (3, 5, 56, 56)                         # 14 -> 28 -> 56


# ---------------------------------------------------------------- live torchvision comparisons
@pytest.mark.reference
def test_keypoint_functions_equal_torchvision_live():
    c = make_cases()
    want = torchvision_outputs(c)
    t, v = keypoints_to_heatmap(c["hm_keypoints"], c["hm_rois"], int(c["hm_size"]))
    np.testing.assert_array_equal(t, want["hm_targets"])
    np.testing.assert_array_equal(v, want["hm_valid"])
    logits = Tensor(c["loss_logits"], requires_grad=True)
    loss = keypointrcnn_loss(logits, [c[f"loss_proposals_{i}"] for i in range(2)],
                             [c[f"loss_gt_{i}"] for i in range(2)], [c[f"loss_idx_{i}"] for i in range(2)])
    loss.backward()
    np.testing.assert_allclose(loss.data, want["loss"], rtol=1e-6)
    np.testing.assert_allclose(logits.grad, want["loss_grad"], atol=1e-7)
    kp, scores = heatmaps_to_keypoints(c["dec_maps"], c["dec_rois"])
    np.testing.assert_allclose(kp, want["dec_keypoints"], atol=1e-5)
    np.testing.assert_allclose(scores, want["dec_scores"], rtol=1e-5, atol=1e-5)


@pytest.mark.reference
def test_keypoint_head_modules_equal_torchvision_live():
    import torch
    from torchvision.models.detection.keypoint_rcnn import (KeypointRCNNHeads as TvHeads,
                                                            KeypointRCNNPredictor as TvPred)

    torch.manual_seed(0)
    tv_heads, tv_pred = TvHeads(6, (10, 10)), TvPred(10, 4)
    heads, pred = KeypointRCNNHeads(6, (10, 10)), KeypointRCNNPredictor(10, 4)
    heads.load_state_dict({k: v.detach().numpy() for k, v in tv_heads.state_dict().items()})
    pred.load_state_dict({k: v.detach().numpy() for k, v in tv_pred.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(3, 6, 7, 7)).astype(np.float32)
    out_t = tv_pred(tv_heads(torch.from_numpy(x)))
    out = pred(heads(Tensor(x)))
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    dout = np.random.default_rng(1).normal(size=out.shape).astype(np.float32)
    out.backward(dout)
    out_t.backward(torch.from_numpy(dout))
    for mod, tv in ((heads, tv_heads), (pred, tv_pred)):
        tvp = dict(tv.named_parameters())
        for name, p in mod.named_parameters():
            np.testing.assert_allclose(p.grad, tvp[name].grad.numpy(), rtol=1e-3, atol=1e-4, err_msg=name)


# ---------------------------------------------------------------- the model with keypoint_on
TINY_KP = with_fields(preset("teaching_keypoints"), **{"rpn.pre_nms_top_n_train": 200, "rpn.post_nms_top_n_train": 100,
                                                      "roi_heads.batch_size_per_image": 32,
                                                      "keypoint_head.keypoint_layers": (16, 16)})


def _kp_batch(seeds, size=96):
    from mrcnn_np.datasets.keypoints import random_keypoint_scene

    imgs, tgts = [], []
    for s in seeds:
        sc = random_keypoint_scene(s, size)
        imgs.append(to_model_image(sc["image"]))
        tgts.append({k: sc[k] for k in ("boxes", "labels", "masks", "keypoints")})
    return imgs, tgts


def test_teaching_keypoints_preset_matches_the_stick_figures():
    from mrcnn_np.datasets.keypoints import KEYPOINT_NAMES

    cfg = preset("teaching_keypoints")
    assert cfg.keypoint_on and cfg.mask_on and cfg.num_classes == 2
    assert cfg.keypoint_head.num_keypoints == len(KEYPOINT_NAMES) and cfg.keypoint_head.heatmap_size == 56
    assert not preset("teaching").keypoint_on
    assert loss_names(cfg)[-1] == "loss_keypoint" and "loss_keypoint" not in loss_names(preset("teaching"))


@pytest.mark.parametrize("mask_on", [True, False])
def test_model_with_keypoints_trains_and_predicts(mask_on):
    model = MaskRCNN(with_fields(TINY_KP, mask_on=mask_on), seed=0)
    imgs, tgts = _kp_batch([0, 1])
    out, inter = model(imgs, tgts, return_intermediates=True)
    assert set(loss_names(model.cfg)) - {"loss_mask"} <= set(out) and ("loss_mask" in out) == mask_on
    assert inter["keypoint_logits"].shape == (out["num_pos_rois"], 13, 56, 56)
    np.testing.assert_allclose(float(total_loss(out).data),
                               sum(float(out[k].data) for k in loss_names(model.cfg) if k in out), rtol=1e-6)
    assert 0 < float(out["loss_keypoint"].data) < 1.2 * np.log(56 * 56)
    total_loss(out).backward()
    kp_grads = [p.grad for n, p in model.named_parameters() if "keypoint" in n]
    assert kp_grads and all(g is not None and np.isfinite(g).all() for g in kp_grads)
    assert all(np.abs(g).sum() > 0 for g in kp_grads)

    model = MaskRCNN(with_fields(TINY_KP, mask_on=mask_on, **{"roi_heads.score_thresh": 0.0}), seed=0)
    dets = model.predict(imgs)
    for d, im in zip(dets, imgs):
        n = len(d["boxes"])
        assert n > 0 and d["keypoints"].shape == (n, 13, 3) and d["keypoints_scores"].shape == (n, 13)
        # keypoints are decoded inside their box, in original-image pixels (96 px, the model works at 128)
        b = d["boxes"][:, None]
        assert ((d["keypoints"][..., 0] >= b[..., 0] - 1e-3) & (d["keypoints"][..., 0] <= b[..., 2] + 1e-3)).all()
        assert ((d["keypoints"][..., 1] >= b[..., 1] - 1e-3) & (d["keypoints"][..., 1] <= b[..., 3] + 1e-3)).all()
        assert (d["keypoints"][..., :2] <= im.shape[-1]).all()


def test_model_keypoint_targets_are_checked():
    model = MaskRCNN(TINY_KP, seed=0)
    imgs, tgts = _kp_batch([0])
    with pytest.raises(ValueError, match="no 'keypoints'"):
        model(imgs, [{k: v for k, v in tgts[0].items() if k != "keypoints"}])
    with pytest.raises(ValueError, match="keypoint types"):
        model(imgs, [dict(tgts[0], keypoints=tgts[0]["keypoints"][:, :5])])


def test_keypoint_config_survives_the_json_round_trip(tmp_path):
    from mrcnn_np.detection.convert import load_model, save_weights

    model = MaskRCNN(TINY_KP, seed=0)
    save_weights(model, tmp_path / "kp")
    loaded = load_model(tmp_path / "kp")
    assert loaded.cfg == model.cfg and dataclasses.is_dataclass(loaded.cfg.keypoint_head)
    imgs, _ = _kp_batch([2])
    with no_grad():
        a, b = model.predict(imgs)[0], loaded.predict(imgs)[0]
    np.testing.assert_array_equal(a["keypoints"], b["keypoints"])


def test_train_loop_logs_the_keypoint_loss(tmp_path):
    from mrcnn_np.datasets.keypoints import generate_keypoints
    from mrcnn_np.engine.data import shapes_split
    from mrcnn_np.engine.train import TrainConfig, log_columns, read_losses, train

    generate_keypoints(tmp_path / "data", 4, 1, size=96, progress=False)
    cfg = TrainConfig(iterations=2, batch_size=2, warmup_iters=1, checkpoint_every=0, log_every=0,
                      out_dir=str(tmp_path / "run"))
    train(TINY_KP, cfg, shapes_split(tmp_path / "data", "train"), progress=False, log=lambda *a: None)
    losses = read_losses(tmp_path / "run")
    assert tuple(losses) == log_columns(TINY_KP) and "loss_keypoint" in losses
    assert (losses["loss_keypoint"] > 0).all()
    np.testing.assert_allclose(losses["total"], sum(losses[k] for k in loss_names(TINY_KP)), rtol=1e-5)
