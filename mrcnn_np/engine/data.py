"""Feeding the training loop: images as float tensors, horizontal flips, shuffled batches.

Mask R-CNN §3.1 trains on mini-batches of images (2 per GPU) visited in a random order,
with horizontal flipping as the only augmentation (Detectron's default). The model itself
normalises, resizes and pads (``detection.transform``), so the loader only turns each
sample into the model's input format and flips it:

    image (H, W, 3) uint8  ->  (3, H, W) float32 in [0, 1]
    flip: image[..., ::-1]; masks[..., ::-1]; boxes x1' = W - x2, x2' = W - x1;
          keypoints x' = W - x with left/right names swapped (keypoint_flip_map, §5)

The order and the flips come from one ``np.random.Generator``. ``BatchLoader.state()``
returns everything needed to continue the stream exactly (the generator's
``bit_generator.state``, the epoch's order and the position in it), which a checkpoint
stores, so a resumed run sees the same batches as an uninterrupted one.

Shapes::

    N images per batch, G objects in an image
    image (3, H, W) float32;  target: boxes (G, 4) xyxy float32, labels (G,) int64 1..K-1,
    masks (G, H, W) uint8
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def to_model_image(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [0, 1] (the model's input format)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    out = image.transpose(2, 0, 1).astype(np.float32)
    if image.dtype == np.uint8:
        out /= 255.0
    return np.ascontiguousarray(out)


def hflip(image: np.ndarray, target: dict, keypoint_flip_map=None) -> tuple[np.ndarray, dict]:
    """Mirror a (3, H, W) image and its target left-right.

    A box [x1, y1, x2, y2] (pixel edges, no +1) becomes [W - x2, y1, W - x1, y2]: the
    column range [x1, x2) maps to [W - x2, W - x1). Keypoints (G, K, 3), if the target has
    them, need ``keypoint_flip_map`` (K,) (``detection.keypoint_head.keypoint_flip_map``):
    a mirrored left wrist is a right wrist.
    """
    w = image.shape[-1]
    boxes = np.asarray(target["boxes"], np.float32).copy()
    boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    flipped = dict(target, boxes=boxes)
    if "masks" in target:  # box-only targets (Faster R-CNN style) have none
        flipped["masks"] = np.ascontiguousarray(np.asarray(target["masks"])[..., ::-1])
    if "keypoints" in target:
        if keypoint_flip_map is None:
            raise ValueError("the target has keypoints: pass keypoint_flip_map (keypoint_flip_map(names); "
                             "an identity map if no keypoint has a left/right twin)")
        from mrcnn_np.detection.keypoint_head import flip_keypoints  # noqa: PLC0415
        flipped["keypoints"] = flip_keypoints(target["keypoints"], w, keypoint_flip_map)
    return np.ascontiguousarray(image[..., ::-1]), flipped


def sample_to_input(sample: dict) -> tuple[np.ndarray, dict]:
    """A ``CocoDataset`` item -> (image (3, H, W) float32, target dict for the model)."""
    image = to_model_image(sample["image"])
    target = {"boxes": np.asarray(sample["boxes"], np.float32).reshape(-1, 4),
              "labels": np.asarray(sample["labels"], np.int64).reshape(-1)}
    if "masks" in sample:  # box-only samples train box-only models (mask_on=False)
        target["masks"] = np.asarray(sample["masks"], np.uint8).reshape(-1, *image.shape[1:])
    if "keypoints" in sample:
        target["keypoints"] = np.asarray(sample["keypoints"], np.float32)
    return image, target


class BatchLoader:
    """Endless stream of training batches: a new shuffled order every epoch, random flips.

    dataset: anything with ``len`` and ``ds[i]`` -> CocoDataset-style dict.
    batch_size: images per batch; a batch that runs past the end of an epoch continues
    with the next epoch's order (the schedule counts iterations, not epochs).
    rng: np.random.Generator for the order and the flips (its state is part of ``state()``).
    flip_prob: probability of a horizontal flip per image.
    """

    def __init__(self, dataset, batch_size: int, rng: np.random.Generator, flip_prob: float = 0.5):
        if len(dataset) == 0:
            raise ValueError("the training set has no images")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        self.dataset, self.batch_size, self.rng, self.flip_prob = dataset, batch_size, rng, flip_prob
        self.epoch, self.order, self.pos = -1, np.zeros(0, np.int64), 0
        names = getattr(dataset, "keypoint_names", None)
        self.keypoint_flip_map = None
        if names:
            from mrcnn_np.detection.keypoint_head import keypoint_flip_map  # noqa: PLC0415
            self.keypoint_flip_map = keypoint_flip_map(names)

    def _next_index(self) -> int:
        if self.pos >= len(self.order):
            self.epoch += 1
            self.order = self.rng.permutation(len(self.dataset)).astype(np.int64)
            self.pos = 0
        i = int(self.order[self.pos])
        self.pos += 1
        return i

    def next_batch(self):
        """(images: list of (3, H, W) float32, targets: list of dicts, indices: list of int)."""
        images, targets, indices = [], [], []
        for _ in range(self.batch_size):
            i = self._next_index()
            image, target = sample_to_input(self.dataset[i])
            if self.rng.random() < self.flip_prob:  # drawn for every image, so the stream does not
                image, target = hflip(image, target, self.keypoint_flip_map)  # depend on flip_prob being 0 or 1
            images.append(image)
            targets.append(target)
            indices.append(i)
        return images, targets, indices

    def state(self) -> dict:
        """JSON-able position in the stream (the order array goes in as a list)."""
        return {"rng": self.rng.bit_generator.state, "epoch": self.epoch, "order": self.order.tolist(),
                "pos": self.pos}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self.order = np.asarray(state["order"], np.int64)
        if len(self.order) and (len(self.order) != len(self.dataset) or self.pos > len(self.order)):
            raise ValueError(f"loader state is for a data set of {len(self.order)} images, "
                             f"this one has {len(self.dataset)}")


def read_image_file(path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an image file; a clear ValueError if it is missing or not an image.

    16-bit, palette, alpha, CMYK and 1-bit files and EXIF orientation (not applied) are
    handled as ``datasets.images`` documents.
    """
    from mrcnn_np.datasets.images import read_rgb  # noqa: PLC0415

    return read_rgb(path, unreadable="not a readable image")


def shapes_split(data_dir, split: str):
    """The ``CocoDataset`` of one split of a shapes-layout folder (annotations/<split>.json, <split>/)."""
    from mrcnn_np.datasets.coco import CocoDataset  # noqa: PLC0415

    data_dir = Path(data_dir)
    ann = data_dir / "annotations" / f"{split}.json"
    if not ann.is_file():
        raise ValueError(f"{ann}: annotation file not found (expected the layout of data/README.md: "
                         f"{data_dir}/annotations/{split}.json and {data_dir}/{split}/; make one with "
                         f"python -m mrcnn_np data shapes --out {data_dir})")
    return CocoDataset(ann, data_dir / split)
