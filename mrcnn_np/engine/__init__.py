"""Evaluation (COCO AP through pycocotools), a classical baseline and, later, the training loop.

    evaluate   evaluate_coco(predictions, dataset): bbox / segm AP, AR, per-class AP
    baseline   run_baseline(dataset): a non-learned segmenter; run_demo (python -m mrcnn_np demo)
"""

from mrcnn_np.engine.baseline import baseline_predict, run_baseline, run_demo
from mrcnn_np.engine.evaluate import STAT_NAMES, evaluate_coco, format_table, predictions_to_coco

__all__ = ["STAT_NAMES", "baseline_predict", "evaluate_coco", "format_table", "predictions_to_coco",
           "run_baseline", "run_demo"]
