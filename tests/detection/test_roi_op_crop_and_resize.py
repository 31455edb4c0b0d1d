"""roi_heads.roi_op = "crop_and_resize" (TensorFlow's op, as matterport's Keras Mask R-CNN pooled):
the config accepts it, the model pools with it directly at the heads' sizes, and one training step
runs with every parameter receiving a gradient, for the FPN and the one-level C4 layouts."""

import numpy as np
import pytest

from mrcnn_np.autodiff.optim import SGD
from mrcnn_np.detection.config import preset, with_fields
from mrcnn_np.detection.mask_rcnn import LOSS_NAMES, MaskRCNN, total_loss
from tests.model_checks import assert_loss_trains_every_parameter, scene_batch

TINY = with_fields(preset("teaching"), num_classes=6, **{"rpn.pre_nms_top_n_train": 200,
                                                       "rpn.post_nms_top_n_train": 100,
                                                       "roi_heads.batch_size_per_image": 32})
C4 = {"architecture": "c4", "mask_head.resolution": 14, "rpn.anchor_sizes": ((8, 16, 32, 64),)}


def test_config_accepts_crop_and_resize_without_aggregation():
    cfg = with_fields(TINY, roi_op="crop_and_resize")
    assert cfg.roi_heads.roi_op == "crop_and_resize" and cfg.roi_heads.aggregation is None
    with pytest.raises(ValueError, match="aggregation must be None"):
        with_fields(TINY, roi_op="crop_and_resize", aggregation="avg")
    with pytest.raises(ValueError, match="'crop_and_resize'"):
        with_fields(TINY, roi_op="crop_resize")


@pytest.mark.parametrize("layout", [{}, C4], ids=["fpn", "c4"])
def test_trains_one_step_with_crop_and_resize(layout):
    cfg = with_fields(TINY, roi_op="crop_and_resize", **layout)
    imgs, tgts = scene_batch([0, 1])
    model = MaskRCNN(cfg, seed=0)
    out, inter = model(imgs, tgts, return_intermediates=True)
    assert set(LOSS_NAMES) <= set(out) and out["num_pos_rois"] > 0
    m = cfg.mask_head.resolution
    assert inter["mask_logits"].shape[1:] == (6, m, m)
    assert_loss_trains_every_parameter(model, out)
    # the option reaches the pooler: the same seed and batch with RoIAlign give other losses
    align = MaskRCNN(with_fields(TINY, **layout), seed=0)(imgs, tgts)
    assert float(total_loss(out).data) != float(total_loss(align).data)
    # and an optimiser step on those gradients gives a finite loss again
    params = [p for _, p in model.named_parameters()]
    SGD(params, lr=0.01, momentum=0.9).step()
    assert np.isfinite(total_loss(model(imgs, tgts)).data)
