"""Data: the synthetic shapes generator and the COCO-format reader.

    shapes     random_scene, ShapesConfig, generate_shapes (PNG + COCO JSON)
    coco       CocoDataset (COCO JSON + image folder -> training targets), encode_mask
    validate   check_coco: every malformed-annotation case refused, dropped or kept (one table)
    images     read_rgb: image files of any mode (16-bit, palette, alpha, ...) as 8-bit RGB
    keypoints  stick-figure scenes with named joints (COCO keypoint JSON)
    pretrain_shapes  a 24-class classification set, made in memory by index, for pre-training
    output_dir claim_output_dir: generators never overwrite a data set they did not make
"""

from mrcnn_np.datasets.coco import CocoDataset, DatasetError, encode_mask, segmentation_to_mask
from mrcnn_np.datasets.images import read_rgb
from mrcnn_np.datasets.shapes import (
    CATEGORY_IDS, ShapesConfig, format_statistics, generate_shapes, random_scene,
)
from mrcnn_np.datasets.validate import check_coco

__all__ = [
    "CATEGORY_IDS", "CocoDataset", "DatasetError", "ShapesConfig", "check_coco", "encode_mask", "format_statistics",
    "generate_shapes", "random_scene", "read_rgb", "segmentation_to_mask",
]
