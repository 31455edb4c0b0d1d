"""Data: the synthetic shapes generator and the COCO-format reader."""
