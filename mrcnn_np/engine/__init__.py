"""Evaluation (COCO AP through pycocotools) and, later, the training loop."""
