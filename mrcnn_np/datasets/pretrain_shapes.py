"""A synthetic classification set for pre-training a backbone: the ImageNet of the shapes world.

The paper fine-tunes every Mask R-CNN from an ImageNet-pretrained ResNet; "Rethinking
ImageNet Pre-training" (He, Girshick, Dollár 2019) found that this mainly speeds up
convergence. This set lets the teaching backbone learn edges, corners, curvature and
shape classes before it ever sees a detection scene. Each image holds one centred object
of one of ``len(CLASSES)`` classes (image ``i`` is of class ``i mod len(CLASSES)``), at a
random rotation, scale, colour and texture, on a random background, with small distractor
shapes (clutter) and sometimes a patch that hides part of the object (occlusion); the label
is the object's class.

How the classes relate to the detection classes (circle, square, triangle, star, hexagon of
``datasets/shapes.py``), as ImageNet overlaps COCO: ``polygon3`` is the triangle,
``polygon4`` the square (a regular 4-gon; the detection square is one too), ``polygon6``
the hexagon, ``star5`` the star (same inner radius 0.45) and ``disc`` the circle: all five
detection classes appear here, among 19 others that never appear in a detection scene
(other polygons and stars, rings, crosses, crescents, arrows, hearts, letter-like glyphs).

Images are made in memory, by index: image ``i`` of split ``s`` is a pure function of
``(seed, s, i)`` (``image_seed``), so nothing is written to disk and any batch can be
recomputed (a resumed pre-training run sees the same images). The generators are seeded
with ``SeedSequence([seed, PRETRAIN_TAG, split code, i])``, four words of entropy; a
detection scene's (shapes and stick figures) with one 32-bit integer (``shapes.scene_seed``),
one word, so no pre-training image reuses a detection image's random stream, and the train
and val splits differ in their third word (tests/datasets/test_pretrain_shapes.py checks
both over the seeds and sizes in use).

Shapes::

    B images, S = image size (64 px: the teaching model sees objects of 16-64 px)
    make_batch(...) -> images (B, S, S, 3) uint8 RGB, labels (B,) int64 in 0..len(CLASSES)-1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from mrcnn_np.datasets.shapes import contrasting_colour, random_background, shape_polygon

# Class names; label k is CLASSES[k] (no background class: every image holds one object).
CLASSES = (
    "polygon3", "polygon4", "polygon5", "polygon6", "polygon7", "polygon8",
    "star4", "star5", "star6", "star7", "star8",
    "disc", "ellipse", "ring", "square_frame", "cross", "crescent", "arrow",
    "heart", "semicircle", "bar", "l_glyph", "t_glyph", "chevron",
)
# The detection class each pre-training class is (None: not a detection class).
DETECTION_CLASS = {"polygon3": "triangle", "polygon4": "square", "polygon6": "hexagon", "star5": "star",
                   "disc": "circle"}
# Second entropy word of every pre-training generator; "PRET" in ASCII.
PRETRAIN_TAG = 0x50524554
SPLIT_CODES = {"train": 0, "val": 1}


@dataclass(frozen=True)
class PretrainShapesConfig:
    """How images are made. Sizes are in pixels.

    image_size: side of the square image. min_size, max_size: object diameter (circumscribed
    circle), as fractions of image_size, drawn log-uniformly. max_distractors: small clutter
    shapes per image (0..max, uniform), each at most ``distractor_size`` of the object.
    occlusion_prob: chance that a patch hides part of the object (at most ~30 % of it).
    texture_prob: chance that the object is textured (stripes or checks) instead of flat.
    noise_std: Gaussian pixel noise (0..255 scale).
    """

    image_size: int = 64
    min_size: float = 0.35
    max_size: float = 0.9
    max_distractors: int = 3
    distractor_size: float = 0.3
    occlusion_prob: float = 0.3
    texture_prob: float = 0.4
    noise_std: float = 6.0

    def __post_init__(self):
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")
        if not 0 < self.min_size <= self.max_size <= 1.5:
            raise ValueError(f"need 0 < min_size <= max_size <= 1.5, got {self.min_size}, {self.max_size}")
        for name in ("occlusion_prob", "texture_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_distractors < 0 or not 0 < self.distractor_size <= 1 or self.noise_std < 0:
            raise ValueError("need max_distractors >= 0, 0 < distractor_size <= 1, noise_std >= 0")


def image_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The seed sequence of image ``index`` of ``split`` (a pure function; see the module doc)."""
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {sorted(SPLIT_CODES)}, got {split!r}")
    if index < 0 or seed < 0:
        raise ValueError(f"seed and index must be >= 0, got {seed}, {index}")
    return np.random.SeedSequence([int(seed), PRETRAIN_TAG, SPLIT_CODES[split], int(index)])


def _regular(n, r, inner=None):
    """(2n or n, 2) vertices of a regular n-gon (or an n-pointed star with inner radius ``inner``)."""
    if inner is None:
        t = np.arange(n) * 2 * np.pi / n
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    t = np.arange(2 * n) * np.pi / n
    rr = np.where(np.arange(2 * n) % 2 == 0, r, inner * r)
    return np.stack([rr * np.cos(t), rr * np.sin(t)], 1)


def _arc(r, a0, a1, n=24, cx=0.0, cy=0.0):
    t = np.linspace(a0, a1, n)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _pts(*xy):
    return np.array(xy, np.float64).reshape(-1, 2)


def class_outline(name: str, r: float, rng) -> list:
    """The class's outline around the origin, circumradius about ``r``, upright: a list of
    (polygon (V, 2) [x, y], fill) pairs painted in order (fill False cuts a hole)."""
    if name.startswith("polygon"):
        return [(_regular(int(name[-1]), r), True)]
    if name.startswith("star"):
        n = int(name[-1])
        return [(_regular(n, r, 0.45 if n == 5 else rng.uniform(0.4, 0.55)), True)]
    if name == "disc":
        return [(shape_polygon("circle", 0.0, 0.0, r, 0.0), True)]
    if name == "ellipse":
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        return [(np.stack([r * np.cos(t), rng.uniform(0.35, 0.65) * r * np.sin(t)], 1), True)]
    if name == "ring":
        hole = shape_polygon("circle", 0, 0, rng.uniform(0.5, 0.7) * r, 0)
        return [(shape_polygon("circle", 0, 0, r, 0), True), (hole, False)]
    if name == "square_frame":
        return [(_regular(4, r), True), (_regular(4, rng.uniform(0.5, 0.7) * r), False)]
    if name == "cross":
        w = rng.uniform(0.22, 0.35) * r
        return [(_pts(-r, -w, r, -w, r, w, -r, w), True), (_pts(-w, -r, w, -r, w, r, -w, r), True)]
    if name == "crescent":
        return [(shape_polygon("circle", 0, 0, r, 0), True),
                (shape_polygon("circle", rng.uniform(0.35, 0.55) * r, 0, 0.85 * r, 0), False)]
    if name == "arrow":
        w, h = 0.22 * r, rng.uniform(0.45, 0.6) * r
        return [(_pts(-r, -w, 0.2 * r, -w, 0.2 * r, -h, r, 0, 0.2 * r, h, 0.2 * r, w, -r, w), True)]
    if name == "heart":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return [(np.stack([x, y + 2.5], 1) * (r / 17.0), True)]
    if name == "semicircle":
        return [(_arc(r, 0, np.pi, 25, cy=-0.4 * r), True)]
    if name == "bar":
        w = rng.uniform(0.2, 0.35) * r
        return [(_pts(-r, -w, r, -w, r, w, -r, w), True)]
    if name == "l_glyph":
        w = rng.uniform(0.25, 0.35) * 1.4 * r
        a = 0.7 * r
        return [(_pts(-a, -a, -a + w, -a, -a + w, a - w, a, a - w, a, a, -a, a), True)]
    if name == "t_glyph":
        w = rng.uniform(0.25, 0.35) * 1.4 * r
        a = 0.7 * r
        return [(_pts(-a, -a, a, -a, a, -a + w, w / 2, -a + w, w / 2, a, -w / 2, a, -w / 2, -a + w, -a, -a + w), True)]
    if name == "chevron":
        w = rng.uniform(0.3, 0.45) * r
        h = 0.8 * r
        return [(_pts(-r, -h, -r + w, -h, 0, h - 1.2 * w, r - w, -h, r, -h, 0, h), True)]
    raise ValueError(f"unknown class {name!r}; known: {CLASSES}")


def paint_mask(parts: list, cx: float, cy: float, angle: float, size: int) -> np.ndarray:
    """(size, size) bool mask of ``class_outline`` parts, rotated by ``angle`` and moved to (cx, cy)."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    c, s = math.cos(angle), math.sin(angle)
    for poly, fill in parts:
        x = cx + c * poly[:, 0] - s * poly[:, 1] - 0.5   # PIL fills pixel centres at integers: shift by -0.5
        y = cy + s * poly[:, 0] + c * poly[:, 1] - 0.5
        draw.polygon(list(zip(x.tolist(), y.tolist())), fill=1 if fill else 0)
    return np.asarray(canvas, dtype=bool)


def _texture(rng, size: int, colour: np.ndarray) -> np.ndarray:
    """(size, size, 3) fill of an object: flat, or stripes / checks of two colours."""
    kind = rng.integers(3)
    if kind == 0:
        return np.broadcast_to(colour, (size, size, 3))
    other = np.clip(colour + rng.uniform(-90, 90, 3), 0, 255)
    period = rng.uniform(3, 9)
    a = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size]
    u = (xx * math.cos(a) + yy * math.sin(a)) / period
    if kind == 1:
        sel = (np.floor(u) % 2).astype(bool)
    else:
        v = (-xx * math.sin(a) + yy * math.cos(a)) / period
        sel = ((np.floor(u) + np.floor(v)) % 2).astype(bool)
    return np.where(sel[..., None], other, colour)


def random_image(seq, label: int, cfg: PretrainShapesConfig = PretrainShapesConfig()) -> np.ndarray:
    """(S, S, 3) uint8: one object of class ``CLASSES[label]`` drawn from the seed sequence (or int) ``seq``."""
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label must be in 0..{len(CLASSES) - 1}, got {label}")
    rng = np.random.default_rng(seq)
    size = cfg.image_size
    image = random_background(rng, size)
    # Clutter first, so the object lies on top of it; the distractors are small and of any class.
    for _ in range(int(rng.integers(cfg.max_distractors + 1))):
        r = 0.5 * size * cfg.min_size * cfg.distractor_size * rng.uniform(1.0, 2.5)
        name = CLASSES[rng.integers(len(CLASSES))]
        mask = paint_mask(class_outline(name, r, rng), *rng.uniform(0, size, 2), rng.uniform(0, 2 * np.pi), size)
        image[mask] = rng.uniform(0, 255, 3)
    d = math.exp(rng.uniform(math.log(cfg.min_size), math.log(cfg.max_size))) * size
    r = 0.5 * d
    cx, cy = size / 2 + rng.uniform(-0.15, 0.15, 2) * size
    mask = paint_mask(class_outline(CLASSES[label], r, rng), cx, cy, rng.uniform(0, 2 * np.pi), size)
    colour = contrasting_colour(rng, image[min(int(cy), size - 1), min(int(cx), size - 1)])
    fill = _texture(rng, size, colour) if rng.random() < cfg.texture_prob else colour
    image[mask] = fill[mask] if np.ndim(fill) == 3 else fill
    if rng.random() < cfg.occlusion_prob:  # a patch in a random colour over the object's edge
        a = rng.uniform(0, 2 * np.pi)
        pr = rng.uniform(0.25, 0.45) * r
        px, py = cx + r * math.cos(a), cy + r * math.sin(a)
        patch = paint_mask([(_regular(int(rng.integers(3, 7)), pr), True)], px, py, rng.uniform(0, np.pi), size)
        image[patch] = rng.uniform(0, 255, 3)
    image = image + rng.normal(0.0, cfg.noise_std, size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def image_label(index: int) -> int:
    """The class of image ``index`` (of any split): ``index mod len(CLASSES)``, so every run of
    ``len(CLASSES)`` consecutive images holds each class once (a batch of 64 has 2-3 of each)."""
    return int(index) % len(CLASSES)


def make_batch(seed: int, split: str, indices, cfg: PretrainShapesConfig = PretrainShapesConfig()) -> tuple:
    """Images ``indices`` of ``split``: (images (B, S, S, 3) uint8, labels (B,) int64)."""
    indices = [int(i) for i in indices]
    images = np.empty((len(indices), cfg.image_size, cfg.image_size, 3), np.uint8)
    labels = np.array([image_label(i) for i in indices], np.int64)
    for k, i in enumerate(indices):
        images[k] = random_image(image_seed(seed, split, i), int(labels[k]), cfg)
    return images, labels


__all__ = ["CLASSES", "DETECTION_CLASS", "PRETRAIN_TAG", "PretrainShapesConfig", "class_outline", "image_label",
           "image_seed", "make_batch", "paint_mask", "random_image"]
