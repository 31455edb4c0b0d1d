"""Synthetic "shapes" scenes: a small instance-segmentation data set made on the fly.

Mask R-CNN needs images with several objects, their classes, boxes and pixel masks. A
real data set (COCO) is large; this module draws scenes of coloured shapes (circle,
square, triangle, star, hexagon) on a noisy gradient background, which is enough to
train and evaluate every stage of the model on a laptop CPU (paper §4 trains on COCO;
this is our stand-in).

Occlusion is done the way a camera sees it: objects are painted in order, a later
object hides the parts of earlier ones, hidden pixels are removed from the earlier
masks (no pixel belongs to two instances), and an object that is left with too little
visible area is removed from the scene altogether (it is not painted either, so every
foreground pixel of the image is annotated). "Too little" means fewer than
``ShapesConfig.min_visible_pixels`` pixels, or less than ``min_visible_fraction`` of
its unoccluded area.

Shapes:  H = W = image size,  N instances,  K classes (label 0 = background)
    image  (H, W, 3) uint8 RGB
    boxes  (N, 4) float32 [x1, y1, x2, y2], tight around the visible mask, x2 = last col + 1
    labels (N,) int64 in 1..K;  masks (N, H, W) uint8 0/1 (visible part)
    amodal_masks (N, H, W) uint8 0/1 (whole shape, hidden part included; not written to JSON)

``generate_shapes`` writes PNG images and COCO instance JSON (see data/README.md);
category ids are deliberately neither 0-based nor contiguous (circle = 2, square = 5,
...), so the reader's id mapping is exercised.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mrcnn_np.datasets.output_dir import claim_output_dir

# Bump when a change to the generator changes its images: ensure_shapes then regenerates old sets.
GENERATOR_VERSION = 2
# COCO category id of each shape: not starting at 0 or 1, not contiguous, on purpose.
CATEGORY_IDS = {"circle": 2, "square": 5, "triangle": 7, "star": 11, "hexagon": 13}
SHAPES = tuple(CATEGORY_IDS)
# Angles (rad) that stand each shape upright (vertices start at angle 0, on the +x axis; y points down).
UPRIGHT = {"circle": 0.0, "square": np.pi / 4, "triangle": -np.pi / 2, "star": -np.pi / 2, "hexagon": 0.0}


@dataclass(frozen=True)
class ShapesConfig:
    """How scenes are made. Sizes are in pixels; ``max_size=None`` means image_size // 2.

    min_objects, max_objects: objects drawn per image (uniform), before dropping hidden ones.
    min_size, max_size: object size = diameter of its circumscribed circle, drawn
        log-uniformly (small objects are as common as large ones on a log scale).
    overlap_prob: chance that a new object is placed on top of an earlier one (occlusion).
    classes: shape names, in label order (label k = classes[k - 1]).
    min_visible_pixels, min_visible_fraction: an object with fewer visible pixels, or a
        smaller visible fraction of its whole shape, is removed from the scene.
    noise_std: standard deviation of the Gaussian pixel noise (0..255 scale).
    rotate: shapes at a random angle (True), or all upright (False: a triangle or star points
        up, a square stands on its side), which makes telling the classes apart much easier.

    Ablation-style sets: ``ShapesConfig(min_size=4, max_size=16)`` (objects small relative
    to a stride-16 feature map), ``ShapesConfig(max_objects=10, overlap_prob=1.0)`` (many
    overlapping instances of different classes).
    """

    image_size: int = 128
    min_objects: int = 1
    max_objects: int = 6
    min_size: float = 8.0
    max_size: float | None = None
    overlap_prob: float = 0.3
    classes: tuple = SHAPES
    min_visible_pixels: int = 10
    min_visible_fraction: float = 0.2
    noise_std: float = 6.0
    rotate: bool = True

    def __post_init__(self):
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 0 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 1 <= self.min_size <= self.resolved_max_size:
            raise ValueError(f"need 1 <= min_size <= max_size, got {self.min_size}, {self.resolved_max_size}")
        if not 0.0 <= self.overlap_prob <= 1.0:
            raise ValueError(f"overlap_prob must be in [0, 1], got {self.overlap_prob}")
        unknown = [c for c in self.classes if c not in CATEGORY_IDS]
        if unknown or not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct names from {SHAPES}, got {self.classes}")
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def resolved_max_size(self) -> float:
        return float(self.image_size // 2 if self.max_size is None else self.max_size)

    @property
    def class_names(self) -> list:
        return ["background", *self.classes]


def shape_polygon(name: str, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """(V, 2) vertices [x, y] of a shape with circumradius ``radius``, rotated by ``angle`` rad."""
    if name == "circle":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        r = np.full_like(t, radius)
    elif name in ("square", "triangle", "hexagon"):
        n = {"square": 4, "triangle": 3, "hexagon": 6}[name]
        t = np.arange(n) * 2 * np.pi / n
        r = np.full(n, radius)
    elif name == "star":  # five points, inner radius 0.45 of the outer one
        t = np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, radius, 0.45 * radius)
    else:
        raise ValueError(f"unknown shape {name!r}; known: {SHAPES}")
    t = t + angle
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def rasterize(polygon: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool mask of a polygon (pixel (i, j) covers [j, j+1) x [i, i+1))."""
    canvas = Image.new("L", (size, size), 0)
    # PIL fills pixel centres at integer coordinates, ours are at +0.5: shift by -0.5.
    ImageDraw.Draw(canvas).polygon([(x - 0.5, y - 0.5) for x, y in polygon], fill=1)
    return np.asarray(canvas, dtype=bool)


def random_background(rng, size: int) -> np.ndarray:
    """(H, W, 3) float: a bilinear gradient between four random corner colours + soft blobs."""
    corners = rng.uniform(30, 225, size=(2, 2, 3))
    u = np.linspace(0, 1, size)[:, None, None]
    v = np.linspace(0, 1, size)[None, :, None]
    bg = ((1 - u) * (1 - v) * corners[0, 0] + (1 - u) * v * corners[0, 1]
          + u * (1 - v) * corners[1, 0] + u * v * corners[1, 1])
    t = np.arange(size, dtype=np.float64)
    for _ in range(3):  # low-contrast smooth texture: Gaussian blobs (separable, so an outer product)
        cx, cy = rng.uniform(0, size, 2)
        s = rng.uniform(0.15, 0.4) * size
        bump = np.outer(np.exp(-((t - cy) ** 2) / (2 * s * s)), np.exp(-((t - cx) ** 2) / (2 * s * s)))
        bg = bg + bump[..., None] * rng.uniform(-25, 25, 3)
    return bg


def contrasting_colour(rng, bg_colour: np.ndarray) -> np.ndarray:
    """A random colour at least 90 (RGB distance) away from the local background."""
    for _ in range(20):
        c = rng.uniform(0, 255, 3)
        if np.linalg.norm(c - bg_colour) > 90:
            break
    return c


def _place(rng, cfg: ShapesConfig, placed: list, radius: float):
    """Centre of a new object: on top of an earlier one with overlap_prob, else anywhere."""
    size = cfg.image_size
    if placed and rng.random() < cfg.overlap_prob:
        cx0, cy0, r0 = placed[rng.integers(len(placed))]
        d = (r0 + radius) * rng.uniform(0.3, 0.9)
        a = rng.uniform(0, 2 * np.pi)
        cx, cy = cx0 + d * np.cos(a), cy0 + d * np.sin(a)
    else:
        m = 0.5 * radius  # at most about half of the object outside the image
        cx, cy = rng.uniform(m, size - m, 2)
    return float(np.clip(cx, 0, size)), float(np.clip(cy, 0, size))


def random_scene(seed: int, size: int = 128, **options) -> dict:
    """One scene, deterministic for ``seed``; ``options`` are ``ShapesConfig`` fields.

    Returns a dict: image (H, W, 3) uint8, boxes (N, 4) float32 xyxy, labels (N,) int64
    1..K, masks (N, H, W) uint8, class_names (K+1 names, 0 = "background"), plus
    occluded (N,) bool (some of the object is hidden), amodal_masks (N, H, W) uint8 (each
    object's whole shape, hidden parts included) and n_dropped (objects removed because
    too little of them was visible).
    """
    cfg = options.pop("config", None)
    if cfg is None:
        cfg = ShapesConfig(image_size=size, **options)
    elif options:
        raise ValueError(f"pass either config= or ShapesConfig options, not both (got {sorted(options)})")
    size = cfg.image_size
    rng = np.random.default_rng(seed)
    bg = random_background(rng, size)
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    lo, hi = math.log(cfg.min_size), math.log(cfg.resolved_max_size)
    objects, placed = [], []  # objects in painting order (later ones on top)
    for _ in range(n):
        label = int(rng.integers(len(cfg.classes))) + 1
        radius = 0.5 * math.exp(rng.uniform(lo, hi))
        cx, cy = _place(rng, cfg, placed, radius)
        placed.append((cx, cy, radius))
        angle = rng.uniform(0, 2 * np.pi)  # drawn either way, so rotate=False changes nothing else
        name = cfg.classes[label - 1]
        poly = shape_polygon(name, cx, cy, radius, angle if cfg.rotate else UPRIGHT[name])
        full = rasterize(poly, size)
        colour = contrasting_colour(rng, bg[min(int(cy), size - 1), min(int(cx), size - 1)])
        objects.append(dict(label=label, full=full, colour=colour))
    noise = rng.normal(0.0, cfg.noise_std, size=(size, size, 3))

    # Paint in order; dropping a barely visible object uncovers what lay below it, so
    # repeat until every remaining object is visible enough (dropping only helps others).
    n_dropped = 0
    while True:
        owner = np.zeros((size, size), np.int32)  # 0 = background, k = objects[k-1]
        for k, obj in enumerate(objects, start=1):
            owner[obj["full"]] = k
        areas = np.bincount(owner.ravel(), minlength=len(objects) + 1)[1:]
        keep = [a >= cfg.min_visible_pixels and a >= cfg.min_visible_fraction * obj["full"].sum()
                for a, obj in zip(areas, objects)]
        if all(keep):
            break
        n_dropped += keep.count(False)
        objects = [o for o, kp in zip(objects, keep) if kp]

    image = bg.copy()
    masks = np.zeros((len(objects), size, size), np.uint8)
    boxes = np.zeros((len(objects), 4), np.float32)
    for k, obj in enumerate(objects):
        visible = owner == k + 1
        image[visible] = obj["colour"]
        masks[k] = visible
        ys, xs = np.nonzero(visible)
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    image = np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)
    return dict(
        image=image, boxes=boxes, masks=masks,
        labels=np.array([o["label"] for o in objects], np.int64).reshape(-1),
        class_names=cfg.class_names,
        occluded=np.array([masks[k].sum() < o["full"].sum() for k, o in enumerate(objects)], bool),
        amodal_masks=np.array([o["full"] for o in objects], np.uint8).reshape(-1, size, size),
        n_dropped=n_dropped,
    )


def scene_seed(seed: int, split: str, index: int) -> int:
    """Seed of image ``index`` of a split: independent of the set's size."""
    split_code = {"train": 0, "val": 1}.get(split, sum(map(ord, split)))
    return int(np.random.SeedSequence([seed, split_code, index]).generate_state(1)[0])


def scene_to_coco(scene: dict, image_id: int, file_name: str, first_ann_id: int, classes) -> tuple:
    """COCO ``images`` entry and ``annotations`` list (compressed RLE, str counts) of a scene."""
    from mrcnn_np.datasets.coco import encode_mask  # noqa: PLC0415 (avoid an import cycle)

    h, w = scene["image"].shape[:2]
    image = {"id": image_id, "file_name": file_name, "height": h, "width": w}
    anns = []
    for k, (box, label, mask) in enumerate(zip(scene["boxes"], scene["labels"], scene["masks"])):
        x1, y1, x2, y2 = (float(v) for v in box)
        anns.append({
            "id": first_ann_id + k, "image_id": image_id,
            "category_id": CATEGORY_IDS[classes[label - 1]],
            "segmentation": encode_mask(mask), "area": int(mask.sum()),
            "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0,
        })
    return image, anns


def generate_shapes(out, n_train: int = 2000, n_val: int = 200, size: int = 128, seed: int = 0,
                    config: ShapesConfig | None = None, progress: bool = True, overwrite: bool = False) -> dict:
    """Write ``out/{train,val}/*.png`` and ``out/annotations/{train,val}.json``.

    Also writes ``out/stats.json`` and ``out/params.json`` (the arguments, so a later run
    can reuse the set). A folder holding a data set the generator did not make is refused
    unless ``overwrite`` (``claim_output_dir``).
    Returns the statistics dict of ``shapes_statistics`` (see ``format_statistics``).
    """
    from tqdm import tqdm  # noqa: PLC0415

    cfg = config or ShapesConfig(image_size=size)
    if cfg.image_size != size:
        cfg = dataclasses.replace(cfg, image_size=size)
    out = Path(out)
    claim_output_dir(out, overwrite)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    categories = [{"id": CATEGORY_IDS[c], "name": c, "supercategory": "shape"} for c in cfg.classes]
    params = dict(train=n_train, val=n_val, size=size, seed=seed, config=config_to_dict(cfg),
                  generator_version=GENERATOR_VERSION)
    stats = {}
    for split, n in (("train", n_train), ("val", n_val)):
        (out / split).mkdir(exist_ok=True)
        images, anns, scenes_meta = [], [], []
        for i in tqdm(range(n), desc=f"shapes {split}", disable=not progress, leave=False):
            scene = random_scene(scene_seed(seed, split, i), config=cfg)
            name = f"{i:06d}.png"
            Image.fromarray(scene["image"]).save(out / split / name, compress_level=1)
            img, a = scene_to_coco(scene, i + 1, name, len(anns) + 1, cfg.classes)
            images.append(img)
            anns.extend(a)
            scenes_meta.append((scene["labels"], scene["masks"].sum((1, 2)), scene["occluded"], scene["n_dropped"]))
        info = {"description": "mrcnn_np synthetic shapes", "split": split, "params": params}
        with open(out / "annotations" / f"{split}.json", "w") as f:
            json.dump({"info": info, "images": images, "annotations": anns, "categories": categories}, f)
        stats[split] = shapes_statistics(scenes_meta, cfg.class_names)
    with open(out / "stats.json", "w") as f:
        json.dump(stats, f, indent=1)
    with open(out / "params.json", "w") as f:  # written last: marks a complete set
        json.dump(params, f, indent=1)
    return stats


def config_to_dict(cfg: ShapesConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["classes"] = list(d["classes"])
    return d


def shapes_statistics(scenes_meta, class_names) -> dict:
    """Counts from a list of (labels (N,), areas (N,), occluded (N,), n_dropped) per image."""
    labels = np.concatenate([m[0] for m in scenes_meta]) if scenes_meta else np.zeros(0, int)
    areas = np.concatenate([m[1] for m in scenes_meta]) if scenes_meta else np.zeros(0)
    occluded = np.concatenate([m[2] for m in scenes_meta]) if scenes_meta else np.zeros(0, bool)
    side = np.sqrt(areas)
    return {
        "images": len(scenes_meta),
        "instances": int(labels.size),
        "per_class": {name: int((labels == k).sum()) for k, name in enumerate(class_names) if k},
        # COCO's area ranges: small < 32^2 <= medium < 96^2 <= large
        "small": int((areas < 32 ** 2).sum()), "medium": int(((areas >= 32 ** 2) & (areas < 96 ** 2)).sum()),
        "large": int((areas >= 96 ** 2).sum()),
        "sqrt_area_percentiles": {f"p{p}": float(np.percentile(side, p)) if side.size else 0.0 for p in (5, 50, 95)},
        "occluded": int(occluded.sum()),
        "dropped": int(sum(m[3] for m in scenes_meta)),
    }


def format_statistics(stats: dict) -> str:
    """Readable multi-line summary of ``{split: shapes_statistics(...)}``."""
    lines = []
    for split, s in stats.items():
        pc = ", ".join(f"{k} {v}" for k, v in s["per_class"].items())
        p = s["sqrt_area_percentiles"]
        lines += [
            f"{split}: {s['images']} images, {s['instances']} instances ({pc})",
            f"  size sqrt(area) px: 5% {p['p5']:.1f}, median {p['p50']:.1f}, 95% {p['p95']:.1f}; "
            f"COCO ranges small {s['small']}, medium {s['medium']}, large {s['large']}",
            f"  occluded (partly hidden, kept) {s['occluded']}, dropped (too little visible) {s['dropped']}",
        ]
    return "\n".join(lines)


def ensure_shapes(out, n_train: int = 2000, n_val: int = 200, size: int = 128, seed: int = 0,
                  config: ShapesConfig | None = None, progress: bool = True):
    """Reuse ``out`` if its params.json records the same arguments, else (re)generate
    (only into an empty folder or one a generator made: ``claim_output_dir``).

    Returns (reused: bool, statistics as in ``generate_shapes``; read from stats.json if reused).
    """
    cfg = config or ShapesConfig(image_size=size)
    want = dict(train=n_train, val=n_val, size=size, seed=seed, config=config_to_dict(cfg),
                generator_version=GENERATOR_VERSION)
    out = Path(out)
    try:
        with open(out / "params.json") as f:
            have = json.load(f)
    except (OSError, ValueError):  # missing or unreadable: regenerate
        have = None
    files_ok = all((out / "annotations" / f"{s}.json").is_file() for s in ("train", "val"))
    if have == want and files_ok:
        try:
            with open(out / "stats.json") as f:
                return True, json.load(f)
        except (OSError, ValueError):
            pass
    return False, generate_shapes(out, n_train, n_val, size, seed, cfg, progress)
