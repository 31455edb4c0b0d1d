"""Ablation table ``backbone`` (paper Table 2a): C4 vs FPN, at two depths."""

from mrcnn_np.datasets.shapes import ShapesConfig
from mrcnn_np.detection.config import preset
from mrcnn_np.studies.ablation import C4, paper, table
from mrcnn_np.studies.runner import Variant

# Depth: ResNet-101 deepens res4 from 6 to 23 blocks; the deeper teaching net triples res4.
LAYERS = preset("teaching").backbone.layers
DEEPER_LAYERS = (*LAYERS[:2], 3 * LAYERS[2], *LAYERS[3:])
DEEPER = {"backbone.layers": DEEPER_LAYERS}

STUDY = table(
    "backbone", "Backbone architecture and depth", "Table 2a", "ResNet-50/101, C4 and FPN, COCO minival",
    ShapesConfig(min_objects=1, max_objects=6, min_size=8, max_size=64, overlap_prob=0.3, rotate=False),
    "Object sizes over a factor 8 (8-64 px, log-uniform): the multi-scale setting FPN is made for; a "
    "single stride-16 C4 map must serve an 8 px star and a 64 px hexagon alike. Depth: the deeper "
    "net has three times the res4 blocks (as ResNet-101 deepens res4 from 6 to 23 blocks).",
    (Variant(f"C4, layers {LAYERS}", dict(C4), paper((30.3, 51.2, 31.5))),
     Variant(f"C4, layers {DEEPER_LAYERS}", {**C4, **DEEPER}, paper((32.7, 54.2, 34.3))),
     Variant(f"FPN, layers {LAYERS}", {}, paper((33.6, 55.2, 35.3))),
     Variant(f"FPN, layers {DEEPER_LAYERS}", dict(DEEPER), paper((35.4, 57.3, 37.5)))),
    recipe=dict(iterations=700))   # half the runs are C4 (slower steps): within the hour
