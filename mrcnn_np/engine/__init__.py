"""Evaluation (COCO AP through pycocotools), a classical baseline, and the training loop.

    evaluate    evaluate_coco(predictions, dataset): bbox / segm AP, AR, per-class AP
    baseline    run_baseline(dataset): a non-learned segmenter (the "before" picture)
    data        BatchLoader: shuffled, flipped batches in the model's input format
    train       TrainConfig, train(model_cfg, cfg, train_set, val_set, resume=...), read_losses
    checkpoint  save_checkpoint / read_checkpoint (npz + JSON, no pickle), load_weights
    predict     predict_files: drawings + COCO-format JSON for image files
"""

from mrcnn_np.engine.baseline import baseline_predict, run_baseline
from mrcnn_np.engine.checkpoint import latest_checkpoint, load_weights, read_checkpoint, save_checkpoint
from mrcnn_np.engine.data import BatchLoader, hflip, to_model_image
from mrcnn_np.engine.evaluate import STAT_NAMES, evaluate_coco, format_table, predictions_to_coco
from mrcnn_np.engine.predict import predict_files
from mrcnn_np.engine.train import (TrainConfig, TrainingDiverged, TrainResult, evaluate_model, predict_dataset,
                                   read_losses, run_digest, train)

__all__ = ["STAT_NAMES", "BatchLoader", "TrainConfig", "TrainResult", "TrainingDiverged", "baseline_predict",
           "evaluate_coco", "evaluate_model", "format_table", "hflip", "latest_checkpoint", "load_weights",
           "predict_dataset", "predict_files", "predictions_to_coco", "read_checkpoint", "read_losses",
           "run_baseline", "run_digest", "save_checkpoint", "to_model_image", "train"]
