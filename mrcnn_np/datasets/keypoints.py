"""Synthetic keypoint scenes: stick figures with 13 named joints, as COCO keypoint JSON.

Mask R-CNN §5 extends the model to human pose: K keypoint types per person, each
predicted as a one-hot m x m mask. COCO's person keypoints are large to download, so this
module draws a stand-in that keeps what makes the task a *keypoint* task:

* **Why stick figures** (rather than shapes with named corners): a figure has joints
  with fixed names and a fixed graph (the ``skeleton``), a pose that changes from image
  to image (so a keypoint is not a fixed offset inside the box), left and right limbs
  (so horizontal flipping must swap names: ``keypoint_flip_map``), and limbs that cross
  other figures (occlusion). A rotated square's corners have no natural names and no
  left/right, so they would exercise none of this.
* The figures face the viewer, like the people in most COCO photos: the figure's *left*
  side is on the image's right. Shoulders and hips are fixed on the torso's sides, so
  "left" is readable from the picture, and a mirrored figure is a figure whose left and
  right have changed places (which is what the flip map expresses).
* Visibility flags follow COCO: v = 2 labelled and visible, v = 1 labelled but hidden
  (covered by a figure or an unannotated occluder bar painted later), v = 0 not labelled
  (the joint lies outside the image; its x = y = 0). Training uses every v > 0 keypoint,
  evaluation (OKS) too; the model still has to guess where a hidden wrist is.

Figures are painted in order, later ones (and the occluder bars, painted last) hide
earlier ones; hidden pixels are removed from the earlier masks, boxes are tight around
the visible mask, and a figure left with too little visible area is removed (as in
``shapes.py``). Keypoints are continuous pixel coordinates with pixel (i, j) covering
[j, j+1) x [i, i+1), the same convention as the boxes, so no 0.5 shift is needed anywhere.

Shapes:  H = W = image size,  N figures,  K = 13 keypoints
    image (H, W, 3) uint8;  boxes (N, 4) float32 xyxy;  labels (N,) int64 (all 1)
    masks (N, H, W) uint8 (visible part);  keypoints (N, K, 3) float32 [x, y, v]

``generate_keypoints`` writes PNG images and COCO keypoint JSON (``keypoints`` as a flat
[x1, y1, v1, x2, ...] list, ``num_keypoints`` = labelled count; the category carries the
``keypoints`` names and the 1-based ``skeleton``) in the layout of data/README.md, so
``CocoDataset`` / ``engine.data.shapes_split`` read it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .output_dir import claim_output_dir
from .shapes import contrasting_colour, random_background, scene_seed

GENERATOR_VERSION = 1
KEYPOINT_NAMES = ("head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                  "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
# Edges between keypoints (0-based indices into KEYPOINT_NAMES); COCO's JSON uses 1-based.
SKELETON = ((0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (1, 7), (2, 8), (7, 8), (7, 9), (9, 11),
            (8, 10), (10, 12))
CATEGORY = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(KEYPOINT_NAMES),
            "skeleton": [[a + 1, b + 1] for a, b in SKELETON]}


@dataclass(frozen=True)
class KeypointsConfig:
    """How stick-figure scenes are made (sizes in pixels).

    min_figures, max_figures: figures per image (uniform) before dropping hidden ones.
    min_height, max_height: figure height (head top to the lower ankle when standing
        straight), log-uniform; ``max_height=None`` means 0.8 * image_size.
    overlap_prob: chance that a figure is placed across an earlier one (occlusion).
    occluder_prob, max_occluders: chance of unannotated bars painted over the figures
        (each image gets 1..max_occluders of them with that probability).
    min_visible_pixels, min_visible_fraction: a figure with fewer visible pixels, or a
        smaller visible fraction of its whole drawing, is removed from the scene.
    noise_std: Gaussian pixel noise (0..255 scale).
    """

    image_size: int = 128
    min_figures: int = 1
    max_figures: int = 4
    min_height: float = 40.0
    max_height: float | None = None
    overlap_prob: float = 0.4
    occluder_prob: float = 0.5
    max_occluders: int = 2
    min_visible_pixels: int = 40
    min_visible_fraction: float = 0.3
    noise_std: float = 6.0

    def __post_init__(self):
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32, got {self.image_size}")
        if not 0 <= self.min_figures <= self.max_figures:
            raise ValueError(f"need 0 <= min_figures <= max_figures, got {self.min_figures}, {self.max_figures}")
        if not 8 <= self.min_height <= self.resolved_max_height:
            raise ValueError(f"need 8 <= min_height <= max_height, got {self.min_height}, {self.resolved_max_height}")
        for name in ("overlap_prob", "occluder_prob", "min_visible_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_occluders < 0:
            raise ValueError(f"max_occluders must be >= 0, got {self.max_occluders}")

    @property
    def resolved_max_height(self) -> float:
        return float(0.8 * self.image_size if self.max_height is None else self.max_height)


def _rotate(v, angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def random_pose(rng, cx: float, cy: float, height: float) -> np.ndarray:
    """(13, 2) joint positions [x, y] of a figure of ``height`` centred near (cx, cy).

    Proportions are in units of the height; angles are measured from "straight down"
    (positive = towards the figure's left, i.e. the image's +x), so a limb hangs down at 0.
    """
    h = height
    lean = rng.uniform(-0.2, 0.2)                                  # torso tilt (rad)
    up = _rotate(np.array([0.0, -1.0]), lean)                      # pelvis -> neck direction
    side = np.array([-up[1], up[0]])                               # the figure's left (image +x)
    pelvis = np.array([cx, cy + 0.08 * h])
    neck = pelvis + 0.32 * h * up
    joints = np.zeros((13, 2))
    joints[0] = neck + 0.13 * h * _rotate(up, rng.uniform(-0.25, 0.25))           # head centre
    for sign, (sh, el, wr, hp, kn, an) in ((1, (1, 3, 5, 7, 9, 11)), (-1, (2, 4, 6, 8, 10, 12))):
        joints[sh] = neck + sign * 0.11 * h * side - 0.02 * h * up
        joints[hp] = pelvis + sign * 0.07 * h * side
        down = -up

        def towards(angle):          # unit vector at ``angle`` from "down", positive = image +x
            return _rotate(down, -angle)
        a_upper = sign * rng.uniform(-0.3, 2.6) + lean               # arms: from hanging to raised
        joints[el] = joints[sh] + 0.15 * h * towards(a_upper)
        joints[wr] = joints[el] + 0.14 * h * towards(a_upper + sign * rng.uniform(-0.3, 2.0))
        a_thigh = sign * rng.uniform(-0.15, 0.7) + lean              # legs: from crossed a little to apart
        joints[kn] = joints[hp] + 0.22 * h * towards(a_thigh)
        joints[an] = joints[kn] + 0.22 * h * towards(a_thigh - sign * rng.uniform(0.0, 0.9))
    return joints


def draw_figure(joints: np.ndarray, height: float, size: int) -> np.ndarray:
    """(size, size) bool mask of a stick figure: a head disc, a spine, thick limbs with
    round joints. Pixel (i, j) covers [j, j+1) x [i, i+1) (PIL's centres are shifted by -0.5)."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    limb = max(2.0, 0.055 * height)
    p = [(float(x) - 0.5, float(y) - 0.5) for x, y in joints]
    neck = ((p[1][0] + p[2][0]) / 2, (p[1][1] + p[2][1]) / 2)
    pelvis = ((p[7][0] + p[8][0]) / 2, (p[7][1] + p[8][1]) / 2)

    def disc(c, r):
        draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=1)
    draw.line([neck, pelvis], fill=1, width=int(round(1.6 * limb)))        # the spine is thicker
    draw.line([p[0], neck], fill=1, width=int(round(limb)))
    for a, b in SKELETON[2:]:
        draw.line([p[a], p[b]], fill=1, width=int(round(limb)))
    for q in p[1:]:
        disc(q, limb / 2)
    disc(p[0], 0.09 * height)                                              # the head
    return np.asarray(canvas, dtype=bool)


def _occluder(rng, size: int, figures: list) -> np.ndarray:
    """(size, size) bool: an axis-aligned bar across a random figure (or anywhere)."""
    if figures:
        cx, cy, h = figures[rng.integers(len(figures))]
        cx, cy = cx + rng.uniform(-0.3, 0.3) * h, cy + rng.uniform(-0.4, 0.4) * h
    else:
        cx, cy = rng.uniform(0, size, 2)
    long_side, short_side = rng.uniform(0.2, 0.5) * size, rng.uniform(6, 14)
    w, h = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    return (np.abs(xs - cx) < w / 2) & (np.abs(ys - cy) < h / 2)


def random_keypoint_scene(seed: int, size: int = 128, **options) -> dict:
    """One stick-figure scene, deterministic for ``seed``; ``options`` are ``KeypointsConfig`` fields.

    Returns a dict: image (H, W, 3) uint8, boxes (N, 4) float32, labels (N,) int64 (1),
    masks (N, H, W) uint8 (visible part), keypoints (N, 13, 3) float32 [x, y, v],
    class_names ["background", "person"], keypoint_names, skeleton (0-based pairs),
    occluder_mask (H, W) bool and n_dropped (figures removed because too little was visible).
    """
    cfg = options.pop("config", None)
    if cfg is None:
        cfg = KeypointsConfig(image_size=size, **options)
    elif options:
        raise ValueError(f"pass either config= or KeypointsConfig options, not both (got {sorted(options)})")
    size = cfg.image_size
    rng = np.random.default_rng(seed)
    bg = random_background(rng, size)
    n = int(rng.integers(cfg.min_figures, cfg.max_figures + 1))
    lo, hi = math.log(cfg.min_height), math.log(cfg.resolved_max_height)
    figures, placed = [], []
    for _ in range(n):
        height = math.exp(rng.uniform(lo, hi))
        if placed and rng.random() < cfg.overlap_prob:       # across an earlier figure
            cx0, cy0, h0 = placed[rng.integers(len(placed))]
            cx, cy = cx0 + rng.uniform(-0.35, 0.35) * (h0 + height) / 2, cy0 + rng.uniform(-0.2, 0.2) * h0
        else:
            cx, cy = rng.uniform(0.15 * size, 0.85 * size), rng.uniform(0.3 * height, size - 0.3 * height)
        placed.append((cx, cy, height))
        joints = random_pose(rng, cx, cy, height)
        colour = contrasting_colour(rng, bg[int(np.clip(cy, 0, size - 1)), int(np.clip(cx, 0, size - 1))])
        figures.append(dict(joints=joints, full=draw_figure(joints, height, size), colour=colour))
    occluders = []
    if cfg.max_occluders and rng.random() < cfg.occluder_prob:
        for _ in range(int(rng.integers(1, cfg.max_occluders + 1))):
            occluders.append(dict(full=_occluder(rng, size, placed), colour=rng.uniform(0, 255, 3)))
    noise = rng.normal(0.0, cfg.noise_std, size=(size, size, 3))

    # Paint figures in order, then the bars; drop barely visible figures until all are visible enough.
    n_dropped = 0
    while True:
        owner = np.zeros((size, size), np.int32)          # 0 background, k figure k, > N a bar
        for k, obj in enumerate(figures + occluders, start=1):
            owner[obj["full"]] = k
        areas = np.bincount(owner.ravel(), minlength=len(figures) + len(occluders) + 1)[1:len(figures) + 1]
        keep = [a >= cfg.min_visible_pixels and a >= cfg.min_visible_fraction * f["full"].sum()
                for a, f in zip(areas, figures)]
        if all(keep):
            break
        n_dropped += keep.count(False)
        figures = [f for f, kp in zip(figures, keep) if kp]

    image = bg.copy()
    for k, obj in enumerate(figures + occluders, start=1):
        image[owner == k] = obj["colour"]
    image = np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)
    masks = np.zeros((len(figures), size, size), np.uint8)
    boxes = np.zeros((len(figures), 4), np.float32)
    keypoints = np.zeros((len(figures), len(KEYPOINT_NAMES), 3), np.float32)
    for k, fig in enumerate(figures):
        masks[k] = owner == k + 1
        ys, xs = np.nonzero(masks[k])
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        for j, (x, y) in enumerate(np.round(fig["joints"], 2)):   # the JSON's precision, decided first
            if not (0 <= x < size and 0 <= y < size):
                continue                                   # outside the image: not labelled (v = 0)
            visible = owner[int(y), int(x)] == k + 1       # else a later figure or bar covers the joint
            keypoints[k, j] = (x, y, 2 if visible else 1)
    return dict(
        image=image, boxes=boxes, masks=masks, keypoints=keypoints,
        labels=np.ones(len(figures), np.int64), class_names=["background", "person"],
        keypoint_names=list(KEYPOINT_NAMES), skeleton=[list(e) for e in SKELETON],
        occluder_mask=owner > len(figures), n_dropped=n_dropped,
    )


# ---------------------------------------------------------------- COCO keypoint JSON
def scene_to_coco_keypoints(scene: dict, image_id: int, file_name: str, first_ann_id: int) -> tuple:
    """COCO ``images`` entry and ``annotations`` (with keypoints) of a scene."""
    from mrcnn_np.datasets.coco import encode_mask  # noqa: PLC0415 (avoid an import cycle)

    h, w = scene["image"].shape[:2]
    image = {"id": image_id, "file_name": file_name, "height": h, "width": w}
    anns = []
    for k, (box, mask, kp) in enumerate(zip(scene["boxes"], scene["masks"], scene["keypoints"])):
        x1, y1, x2, y2 = (float(v) for v in box)
        anns.append({
            "id": first_ann_id + k, "image_id": image_id, "category_id": CATEGORY["id"],
            "segmentation": encode_mask(mask), "area": int(mask.sum()),
            "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0,
            "keypoints": [float(v) if i % 3 < 2 else int(v) for i, v in enumerate(kp.reshape(-1))],
            "num_keypoints": int((kp[:, 2] > 0).sum()),
        })
    return image, anns


def keypoint_statistics(keypoints_per_image, n_dropped_per_image) -> dict:
    """Counts of figures and of keypoints by visibility from a list of (N_i, K, 3) arrays."""
    kp = (np.concatenate(keypoints_per_image) if keypoints_per_image
          else np.zeros((0, len(KEYPOINT_NAMES), 3), np.float32))
    v = kp[..., 2]
    return {"images": len(keypoints_per_image), "figures": int(len(kp)),
            "keypoints_visible": int((v == 2).sum()), "keypoints_hidden": int((v == 1).sum()),
            "keypoints_unlabelled": int((v == 0).sum()), "dropped": int(sum(n_dropped_per_image))}


def format_keypoint_statistics(stats: dict) -> str:
    return "\n".join(f"{split}: {s['images']} images, {s['figures']} figures; keypoints visible "
                     f"{s['keypoints_visible']}, hidden (v=1) {s['keypoints_hidden']}, outside the image "
                     f"(v=0) {s['keypoints_unlabelled']}; {s['dropped']} figures dropped (too little visible)"
                     for split, s in stats.items())


def generate_keypoints(out, n_train: int = 1000, n_val: int = 100, size: int = 128, seed: int = 0,
                       config: KeypointsConfig | None = None, progress: bool = True, overwrite: bool = False) -> dict:
    """Write ``out/{train,val}/*.png``, ``out/annotations/{train,val}.json`` (COCO keypoints),
    ``out/stats.json`` and ``out/params.json`` (written last). Returns the statistics.
    A folder holding a data set a generator did not make is refused unless ``overwrite``
    (``output_dir.claim_output_dir``)."""
    from tqdm import tqdm  # noqa: PLC0415

    cfg = config or KeypointsConfig(image_size=size)
    if cfg.image_size != size:
        cfg = dataclasses.replace(cfg, image_size=size)
    out = Path(out)
    claim_output_dir(out, overwrite)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    params = dict(kind="keypoints", train=n_train, val=n_val, size=size, seed=seed, config=dataclasses.asdict(cfg),
                  generator_version=GENERATOR_VERSION)
    stats = {}
    for split, n in (("train", n_train), ("val", n_val)):
        (out / split).mkdir(exist_ok=True)
        images, anns, kps, dropped = [], [], [], []
        for i in tqdm(range(n), desc=f"keypoints {split}", disable=not progress, leave=False):
            scene = random_keypoint_scene(scene_seed(seed, split, i), config=cfg)
            name = f"{i:06d}.png"
            Image.fromarray(scene["image"]).save(out / split / name, compress_level=1)
            img, a = scene_to_coco_keypoints(scene, i + 1, name, len(anns) + 1)
            images.append(img)
            anns.extend(a)
            kps.append(scene["keypoints"])
            dropped.append(scene["n_dropped"])
        info = {"description": "mrcnn_np synthetic stick figures (keypoints)", "split": split, "params": params}
        with open(out / "annotations" / f"{split}.json", "w") as f:
            json.dump({"info": info, "images": images, "annotations": anns, "categories": [CATEGORY]}, f)
        stats[split] = keypoint_statistics(kps, dropped)
    with open(out / "stats.json", "w") as f:
        json.dump(stats, f, indent=1)
    with open(out / "params.json", "w") as f:
        json.dump(params, f, indent=1)
    return stats


def ensure_keypoints(out, n_train: int = 1000, n_val: int = 100, size: int = 128, seed: int = 0,
                     config: KeypointsConfig | None = None, progress: bool = True):
    """Reuse ``out`` if its params.json records the same arguments, else (re)generate.
    Returns (reused: bool, statistics)."""
    cfg = config or KeypointsConfig(image_size=size)
    want = dict(kind="keypoints", train=n_train, val=n_val, size=size, seed=seed,
                config=json.loads(json.dumps(dataclasses.asdict(cfg))), generator_version=GENERATOR_VERSION)
    out = Path(out)
    try:
        have = json.loads((out / "params.json").read_text())
    except (OSError, ValueError):
        have = None
    if have == want and all((out / "annotations" / f"{s}.json").is_file() for s in ("train", "val")):
        try:
            return True, json.loads((out / "stats.json").read_text())
        except (OSError, ValueError):
            pass
    return False, generate_keypoints(out, n_train, n_val, size, seed, cfg, progress)
