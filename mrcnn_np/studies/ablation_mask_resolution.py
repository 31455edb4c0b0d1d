"""Ablation table ``mask_resolution`` (beyond the paper): 14 x 14 vs 28 x 28 vs 56 x 56 masks."""

from mrcnn_np.datasets.shapes import ShapesConfig
from mrcnn_np.studies.ablation import table
from mrcnn_np.studies.runner import Variant

STUDY = table(
    "mask_resolution", "Mask resolution (not in the paper)", "beyond the paper (it uses 28 x 28 with FPN, "
    "14 x 14 with C4)", "—",
    ShapesConfig(min_objects=1, max_objects=4, min_size=32, max_size=96, overlap_prob=0.3, rotate=False),
    "Large objects (32-96 px): one cell of a 14 x 14 mask covers up to 7 px of a 96 px object, so coarse "
    "masks lose IoU at the strict thresholds (AP75). The FCN's deconvolution doubles its input, so the "
    "RoI features grow with the mask (pool 7, 14, 28).",
    (Variant("14 × 14 (pool 7)", {"mask_head.pool_size": 7, "mask_head.resolution": 14}),
     Variant("28 × 28 (pool 14)", {"mask_head.pool_size": 14, "mask_head.resolution": 28}),
     Variant("56 × 56 (pool 28)", {"mask_head.pool_size": 28, "mask_head.resolution": 56})),
    recipe=dict(iterations=1000))  # the 56 x 56 head makes the slowest step of all the tables
