"""Ablation table ``multitask`` (paper Table 3): box AP of Faster R-CNN (no mask branch) against Mask R-CNN.

The paper's Table 3 puts Faster R-CNN with RoIAlign (box AP 37.3) beside the full Mask R-CNN
(38.2): the same model, the same RoIAlign, only the mask branch and its loss added, and the
*boxes* improve by 0.9, "solely due to the benefits of multi-task training". Here the two
variants are the teaching FPN model with ``mask_on=False`` (no mask head, loss_mask 0) and
with ``mask_on=True``, started like the paper's from a pretrained body (the shipped teaching
body, docs/PRETRAINING.md), and the table's claim is judged on box AP.
"""

from mrcnn_np.datasets.shapes import ShapesConfig
from mrcnn_np.studies.ablation import paper, table
from mrcnn_np.studies.findings import Claim
from mrcnn_np.studies.runner import Variant

# docs/PAPER_TABLES.md, Table 3 (COCO test-dev, ResNet-101-FPN): box AP / AP50 / AP75
BOX_ONLY = Variant("Faster R-CNN, RoIAlign (no mask branch)", {"mask_on": False},
                   paper((None, None, None), (37.3, 59.6, 40.3)))
WITH_MASKS = Variant("Mask R-CNN (box and mask branches)", {"mask_on": True},
                     paper((None, None, None), (38.2, 60.3, 41.7)))
CLAIMS = (Claim("3_mask_helps_boxes", "3", "adding the mask branch improves box AP (multi-task training)", "better",
                (WITH_MASKS.label, BOX_ONLY.label), metric="box_AP", also=("box_AP50", "box_AP75")),)

STUDY = table(
    "multitask", "Multi-task training", "Table 3", "ResNet-101-FPN, COCO test-dev (box AP)",
    ShapesConfig(min_objects=1, max_objects=6, min_size=12, max_size=56, overlap_prob=0.3, rotate=False),
    "Upright shapes of the five classes, 12-56 px, up to six per image with some overlap: a set on which the "
    "pretrained teaching model detects well within the budget, so a change of a point of box AP is measurable. "
    "A mask is a denser description of a shape than its box and label; if learning it shapes the shared "
    "features (the backbone, the FPN and the RoI features both branches read), the boxes and classes may "
    "improve, which is the paper's reading of its Table 3. Both variants start from the pretrained body.",
    (BOX_ONLY, WITH_MASKS), claims=CLAIMS, backbone_init="pretrained")
