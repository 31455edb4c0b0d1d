"""Ablation table ``mask_loss`` (paper Table 2b): per-class sigmoid vs multinomial softmax, and class-agnostic masks."""

from mrcnn_np.datasets.shapes import ShapesConfig
from mrcnn_np.studies.ablation import paper, table
from mrcnn_np.studies.findings import Claim
from mrcnn_np.studies.runner import Variant

SOFTMAX = Variant("softmax (multinomial)", {"mask_head.loss": "softmax"}, paper((24.8, 44.1, 25.1)))
SIGMOID = Variant("sigmoid (per-class binary)", {"mask_head.loss": "sigmoid"}, paper((30.3, 51.2, 31.5)))
AGNOSTIC = Variant("sigmoid, class-agnostic", {"mask_head.loss": "sigmoid", "mask_head.class_agnostic": True},
                   paper((29.7, None, None)))
CLAIMS = (
    Claim("2b_sigmoid_vs_softmax", "2b", "per-class sigmoid beats the multinomial softmax", "better",
          (SIGMOID.label, SOFTMAX.label), also=("mask_AP75",)),
    Claim("2b_class_agnostic", "2b", "class-agnostic masks are nearly as good as per-class ones", "no_worse",
          (AGNOSTIC.label, SIGMOID.label)),
)

STUDY = table(
    "mask_loss", "Mask loss", "Table 2b (and the class-agnostic remark)", "ResNet-50-C4, COCO minival",
    ShapesConfig(min_objects=3, max_objects=8, min_size=16, max_size=56, overlap_prob=0.9, rotate=False),
    "Crowded scenes: 90 % of objects are placed on top of an earlier one, and classes are drawn "
    "independently, so most RoIs contain parts of an object of another class. The softmax loss then "
    "trains the other class's channel down on pixels that look like that class; the per-class sigmoid "
    "does not (the paper's 'decoupling'). Teaching FPN model (the loss does not depend on the backbone).",
    (SOFTMAX, SIGMOID, AGNOSTIC), claims=CLAIMS,
    # a class compares the two losses (the table's main finding) from the pretrained body in a few minutes a run
    workshop={}, workshop_variants=(SOFTMAX.label, SIGMOID.label))
