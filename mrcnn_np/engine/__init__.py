"""Evaluation (COCO AP through pycocotools), a classical baseline, and the training loop.

    evaluate    evaluate_coco(predictions, dataset): bbox / segm AP, AR, per-class AP
    baseline    run_baseline(dataset): a non-learned segmenter (the "before" picture)
    data        BatchLoader: shuffled, flipped batches in the model's input format
    train       TrainConfig, train(model_cfg, cfg, train_set, val_set, resume=...), run_digest
    run_folder  RunFolder: losses.csv, eval.json, checkpoints, final weights; read_losses
    resume      the state a checkpoint restores (falls back past an unreadable checkpoint)
    step        train_step: one SGD iteration; TrainingDiverged
    checkpoint  save_checkpoint / read_checkpoint (npz + JSON, no pickle), load_weights
    predict     predict_dataset, predict_files: drawings + COCO-format JSON for image files
    pretrain    PretrainConfig, pretrain(cfg): a backbone body on the synthetic classification set
"""

from mrcnn_np.engine.baseline import baseline_predict, run_baseline
from mrcnn_np.engine.checkpoint import (CheckpointError, latest_checkpoint, list_checkpoints, load_weights,
                                        read_checkpoint, save_checkpoint)
from mrcnn_np.engine.data import BatchLoader, hflip, to_model_image
from mrcnn_np.engine.evaluate import STAT_NAMES, evaluate_coco, evaluate_model, format_table, predictions_to_coco
from mrcnn_np.engine.predict import predict_dataset, predict_files
from mrcnn_np.engine.run_folder import COLUMNS, RunFolder, log_columns, read_losses
from mrcnn_np.engine.step import TrainingDiverged, train_step
from mrcnn_np.engine.train import TrainConfig, TrainResult, run_digest, train, train_config_from_dict

__all__ = ["COLUMNS", "STAT_NAMES", "BatchLoader", "CheckpointError", "RunFolder", "TrainConfig", "TrainResult",
           "TrainingDiverged", "baseline_predict", "evaluate_coco", "evaluate_model", "format_table", "hflip",
           "latest_checkpoint", "list_checkpoints", "load_weights", "log_columns", "predict_dataset",
           "predict_files", "predictions_to_coco", "read_checkpoint", "read_losses", "run_baseline",
           "run_digest", "save_checkpoint", "to_model_image", "train", "train_config_from_dict", "train_step"]
