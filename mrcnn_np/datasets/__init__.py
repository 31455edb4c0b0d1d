"""Data: the synthetic shapes generator and the COCO-format reader.

    shapes   random_scene, ShapesConfig, generate_shapes (PNG + COCO JSON)
    coco     CocoDataset (COCO JSON + image folder -> training targets), encode_mask
"""

from mrcnn_np.datasets.coco import CocoDataset, DatasetError, encode_mask, segmentation_to_mask
from mrcnn_np.datasets.shapes import (
    CATEGORY_IDS, ShapesConfig, format_statistics, generate_shapes, random_scene,
)

__all__ = [
    "CATEGORY_IDS", "CocoDataset", "DatasetError", "ShapesConfig", "encode_mask", "format_statistics",
    "generate_shapes", "random_scene", "segmentation_to_mask",
]
