"""Ablation table ``roi`` (paper Table 2c/2d): RoIPool, RoIWarp and RoIAlign (max, avg) at strides 16 (C4) and 32 (C5).

Beside the paper's five operations, two rows per stride that the paper does not have:

- RoIAlign with ``aligned=True`` (the half-pixel shift of detectron2's ROIAlignV2): at fixed
  features notebook 04 measures that the paper's ``aligned=False`` samples half a cell off the
  box, which costs about as much as RoIPool's rounding; these rows ask whether training learns
  that offset away (then both RoIAligns score alike) or not.
- ``crop_and_resize`` (TensorFlow's op, which many re-implementations used as "RoIAlign";
  docs/REFERENCE.md §8.5): bilinear samples on a grid that spans the box corner to corner, one
  sample per bin, no averaging.

The first round of the table (``results/ablation_roi.json``, from scratch) predates these rows.
"""

from mrcnn_np.datasets.shapes import ShapesConfig
from mrcnn_np.studies.ablation import C4, C5, paper, table
from mrcnn_np.studies.findings import Claim
from mrcnn_np.studies.runner import Variant

OPS = (("RoIPool (max)", "roipool", "max"), ("RoIWarp (max)", "roiwarp", "max"), ("RoIWarp (avg)", "roiwarp", "avg"),
       ("RoIAlign (max)", "roialign", "max"), ("RoIAlign (avg)", "roialign", "avg"))
# docs/PAPER_TABLES.md: Table 2c (ResNet-50-C4, stride 16: masks only) and 2d (-C5, stride 32: masks and boxes)
PAPER_2C = {"roipool/max": (26.9, 48.8, 26.4), "roiwarp/max": (27.2, 49.2, 27.1), "roiwarp/avg": (27.1, 48.9, 27.1),
            "roialign/max": (30.2, 51.0, 31.8), "roialign/avg": (30.3, 51.2, 31.5)}
PAPER_2D = {"roipool/max": paper((23.6, 46.5, 21.6), (28.2, 52.7, 26.9)),
            "roialign/avg": paper((30.9, 51.8, 32.1), (34.0, 55.3, 36.4))}


def variants() -> tuple:
    out = []
    for arch, stride, numbers in ((C4, 16, {k: paper(v) for k, v in PAPER_2C.items()}), (C5, 32, PAPER_2D)):
        for label, op, agg in OPS:
            out.append(Variant(f"{label}, stride {stride}",
                               {**arch, "roi_heads.roi_op": op, "roi_heads.aggregation": agg},
                               numbers.get(f"{op}/{agg}", {}), group=f"stride {stride}"))
    for arch, stride in ((C4, 16), (C5, 32)):
        # after each stride's paper rows, so that the first-round report's variants keep their order
        i = max(k for k, v in enumerate(out) if v.group == f"stride {stride}") + 1
        out[i:i] = [Variant(f"RoIAlign (avg, aligned=True), stride {stride}",
                            {**arch, "roi_heads.roi_op": "roialign", "roi_heads.aggregation": "avg",
                             "roi_heads.aligned": True}, {}, group=f"stride {stride}"),
                    Variant(f"crop_and_resize, stride {stride}",
                            {**arch, "roi_heads.roi_op": "crop_and_resize", "roi_heads.aggregation": None}, {},
                            group=f"stride {stride}")]
    return tuple(out)


POOL16, WARP16, ALIGN_MAX16, ALIGN16 = ("RoIPool (max), stride 16", "RoIWarp (max), stride 16",
                                       "RoIAlign (max), stride 16", "RoIAlign (avg), stride 16")
POOL32, ALIGN32 = "RoIPool (max), stride 32", "RoIAlign (avg), stride 32"
CLAIMS = (
    Claim("2c_align_vs_pool", "2c", "RoIAlign beats RoIPool at stride 16, most at AP75", "better",
          (ALIGN16, POOL16), also=("mask_AP50", "mask_AP75")),
    Claim("2c_warp_vs_pool", "2c", "RoIWarp (bilinear, but quantised) is no better than RoIPool", "no_better",
          (WARP16, POOL16)),
    Claim("2c_max_vs_avg", "2c", "max and average inside RoIAlign are about equal", "similar", (ALIGN_MAX16, ALIGN16)),
    Claim("2d_gain_at_32", "2d", "RoIAlign's gain over RoIPool is larger at stride 32 than at 16", "larger_gain",
          (ALIGN16, POOL16, ALIGN32, POOL32), also=("mask_AP75",)),
)

STUDY = table(
    "roi", "RoI operation", "Table 2c/2d", "ResNet-50-C4 (stride 16) and -C5 (stride 32), COCO minival",
    ShapesConfig(min_objects=2, max_objects=6, min_size=24, max_size=64, overlap_prob=0.2, rotate=False,
                 classes=("star",)),
    "Stars 24-64 px across (log-uniform): 1.5-4 cells of the stride-16 map, 0.75-2 of the stride-32 one, so "
    "RoIPool's rounding of box edges to the feature grid (up to half a cell, 8 or 16 px) is large relative "
    "to the object, as for COCO's small objects, and larger at stride 32. One class: with the five shape classes "
    "the one-level models barely learn to classify within the budget (bench/probe_roi_design.py), which "
    "buries the effect; the table measures where boxes and masks land, which is what the rounding harms. Five-pointed stars, "
    "so the masks have corners to get right. Table 2d reports RoIPool and RoIAlign only; its RoIAlign "
    "stands beside our RoIAlign (avg).",
    variants(),
    # 30 runs, half of them C4 (the slowest step): 600 iterations keep the table within its hour
    recipe=dict(iterations=600), claims=CLAIMS)
