"""Ablation table ``backbone`` (paper Table 2a): C4 vs FPN, at two depths."""

from mrcnn_np.datasets.shapes import ShapesConfig
from mrcnn_np.detection.config import preset
from mrcnn_np.studies.ablation import C4, paper, table
from mrcnn_np.studies.findings import Claim
from mrcnn_np.studies.runner import Variant

# Depth: ResNet-101 deepens res4 from 6 to 23 blocks; the deeper teaching net triples res4.
LAYERS = preset("teaching").backbone.layers
DEEPER_LAYERS = (*LAYERS[:2], 3 * LAYERS[2], *LAYERS[3:])
DEEPER = {"backbone.layers": DEEPER_LAYERS}

C4_SHALLOW = Variant(f"C4, layers {LAYERS}", dict(C4), paper((30.3, 51.2, 31.5)))
C4_DEEP = Variant(f"C4, layers {DEEPER_LAYERS}", {**C4, **DEEPER}, paper((32.7, 54.2, 34.3)))
FPN_SHALLOW = Variant(f"FPN, layers {LAYERS}", {}, paper((33.6, 55.2, 35.3)))
FPN_DEEP = Variant(f"FPN, layers {DEEPER_LAYERS}", dict(DEEPER), paper((35.4, 57.3, 37.5)))
RESNEXT = "ResNeXt FPN (grouped convolutions), equal depth"   # not in this table yet: its claim stays undecided
CLAIMS = (
    Claim("2a_fpn_vs_c4", "2a", "FPN beats C4 at equal depth", "better", (FPN_SHALLOW.label, C4_SHALLOW.label)),
    Claim("2a_deeper_c4", "2a", "deeper beats shallower (C4)", "better", (C4_DEEP.label, C4_SHALLOW.label)),
    Claim("2a_deeper_fpn", "2a", "deeper beats shallower (FPN)", "better", (FPN_DEEP.label, FPN_SHALLOW.label)),
    Claim("2a_resnext", "2a", "grouped convolutions (ResNeXt) beat plain ones at equal depth", "better",
          (RESNEXT, FPN_SHALLOW.label)),
)

STUDY = table(
    "backbone", "Backbone architecture and depth", "Table 2a", "ResNet-50/101, C4 and FPN, COCO minival",
    ShapesConfig(min_objects=1, max_objects=6, min_size=8, max_size=64, overlap_prob=0.3, rotate=False),
    "Object sizes over a factor 8 (8-64 px, log-uniform): the multi-scale setting FPN is made for; a "
    "single stride-16 C4 map must serve an 8 px star and a 64 px hexagon alike. Depth: the deeper "
    "net has three times the res4 blocks (as ResNet-101 deepens res4 from 6 to 23 blocks).",
    (C4_SHALLOW, C4_DEEP, FPN_SHALLOW, FPN_DEEP),
    recipe=dict(iterations=700), claims=CLAIMS)   # half the runs are C4 (slower steps): within the hour
