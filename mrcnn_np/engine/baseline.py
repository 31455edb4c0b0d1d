"""A classical, non-learned instance segmenter for the shapes set (the "before" picture).

Before Mask R-CNN, a pipeline for this task could be: model the background, mark the
pixels that differ from it, group them into connected regions, and name each region's
shape from hand-made geometric features. This module does exactly that:

1. background: a quadratic surface per colour channel, fitted by least squares and
   refitted on the pixels it explains well (objects are outliers);
2. foreground: colour distance to that surface above a threshold set from the noise level;
3. regions: 4-connected components, where two neighbours join only if their colours
   are close (so touching objects of different colours stay apart), by union-find;
4. shape: two rotation-invariant features, solidity = area / convex-hull area (a star is
   far from convex) and roundness = area / (pi * r_max^2) (r_max: farthest pixel from the
   centroid; a circle fills its circle, a triangle a small part of it), compared with the
   features of ideal shapes rendered at the same size (pixelation changes small shapes);
   score = softmax over the negative squared distances.

It fails where Mask R-CNN succeeds: touching objects of similar colour merge, occluded
shapes change their features, and nothing is learned from data. Shapes: H x W image.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from mrcnn_np.datasets.shapes import rasterize, shape_polygon


def fit_background(image: np.ndarray, iters: int = 3) -> np.ndarray:
    """(H, W, 3) float: robust least-squares quadratic surface per channel."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    x, y = xx.ravel() / w - 0.5, yy.ravel() / h - 0.5
    basis = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)  # (H*W, 6)
    pixels = image.reshape(-1, 3).astype(np.float64)
    basis, pixels = basis[::3], pixels[::3]  # a third of the pixels is plenty for 6 coefficients
    use = np.ones(len(pixels), bool)
    for _ in range(iters):
        a = basis[use]
        coef = np.linalg.solve(a.T @ a + 1e-6 * np.eye(6), a.T @ pixels[use])  # normal equations, 6x6
        resid = np.linalg.norm(pixels - basis @ coef, axis=1)
        # Keep the better-explained half-ish: objects are the large residuals.
        use = resid < max(np.median(resid) * 2.0, 1.0)
    full = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    return (full @ coef).reshape(h, w, 3)


def box_blur3(image: np.ndarray) -> np.ndarray:
    """3x3 mean filter with edge replication (takes the edge off the pixel noise)."""
    p = np.pad(image.astype(np.float32), ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = image.shape[:2]
    return sum(p[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


@njit(cache=True)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


@njit(cache=True)
def label_components(foreground, colours, colour_tol):
    """(H, W) int32 labels 1..n of 4-connected foreground regions (0 = background).

    foreground: (H, W) bool; colours: (H, W, 3) float; neighbours join when their colour
    distance is below colour_tol. Union-find over the pixels, then relabel in scan order.
    """
    h, w = foreground.shape
    parent = np.arange(h * w)
    for y in range(h):
        for x in range(w):
            if not foreground[y, x]:
                continue
            for dy, dx in ((0, 1), (1, 0)):
                yy, xx = y + dy, x + dx
                if yy < h and xx < w and foreground[yy, xx]:
                    d = 0.0
                    for c in range(3):
                        d += (colours[y, x, c] - colours[yy, xx, c]) ** 2
                    if d < colour_tol * colour_tol:
                        a, b = _find(parent, y * w + x), _find(parent, yy * w + xx)
                        if a != b:
                            parent[max(a, b)] = min(a, b)
    labels = np.zeros((h, w), np.int32)
    root_label = np.zeros(h * w, np.int32)
    n = 0
    for y in range(h):
        for x in range(w):
            if foreground[y, x]:
                r = _find(parent, y * w + x)
                if root_label[r] == 0:
                    n += 1
                    root_label[r] = n
                labels[y, x] = root_label[r]
    return labels


@njit(cache=True)
def _cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


@njit(cache=True)
def _hull_area(pts):
    """Shoelace area of the convex hull of (P, 2) points sorted by (x, y)."""
    n = len(pts)
    hull = np.empty((2 * n, 2))
    k = 0
    for i in range(n):  # lower hull, left to right
        while k >= 2 and _cross(hull[k - 2], hull[k - 1], pts[i]) <= 0:
            k -= 1
        hull[k] = pts[i]
        k += 1
    lower = k + 1
    for i in range(n - 2, -1, -1):  # upper hull, right to left
        while k >= lower and _cross(hull[k - 2], hull[k - 1], pts[i]) <= 0:
            k -= 1
        hull[k] = pts[i]
        k += 1
    area = 0.0
    for i in range(k - 1):  # hull[k-1] == hull[0]
        area += hull[i, 0] * hull[i + 1, 1] - hull[i + 1, 0] * hull[i, 1]
    return 0.5 * abs(area)


def convex_hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of (P, 2) integer points (Andrew's monotone chain + shoelace)."""
    points = np.asarray(points, np.int64)  # integer pixel corners
    # unique (x, y) pairs sorted by x then y, through a single integer key
    key = np.unique((points[:, 0] - points[:, 0].min()) * (1 << 20) + points[:, 1] - points[:, 1].min())
    pts = np.stack([key >> 20, key & ((1 << 20) - 1)], axis=1).astype(np.float64)
    return float(_hull_area(pts)) if len(pts) >= 3 else 0.0


def shape_features(mask: np.ndarray) -> np.ndarray:
    """[solidity, roundness, r_max] of a binary (H, W) mask (see the module docstring).

    r_max (pixels, from the centroid to the farthest pixel corner) is not a shape feature
    but tells which size of ideal shape to compare with: pixelation changes small shapes.
    """
    ys, xs = np.nonzero(mask)
    area = float(len(xs))
    # Hull of the pixels' outer corners: only boundary pixels can be hull vertices.
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    solidity = area / max(convex_hull_area(corners), 1.0)
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    r_max = np.sqrt(((corners[:, 0] - cx) ** 2 + (corners[:, 1] - cy) ** 2).max())
    return np.array([solidity, area / (np.pi * r_max ** 2), r_max])


@lru_cache(maxsize=None)
def prototype_features(name: str, r_max: float = 12.0) -> tuple:
    """Mean [solidity, roundness] of an ideal shape whose measured r_max is about ``r_max``,
    rendered at a few angles and sub-pixel positions (cached; call with r_max rounded)."""
    radius = max(r_max - 0.6, 2.0)  # the measured r_max reaches ~0.6 px beyond the outline
    feats = [shape_features(rasterize(shape_polygon(name, 40 + d, 40 + d, radius, a), 80))[:2]
             for a in (0.0, 0.3, 0.6, 0.9) for d in (0.0, 0.5)]
    return tuple(np.mean(feats, axis=0))


def baseline_predict(image: np.ndarray, class_names, min_area: int = 12, colour_tol: float = 40.0,
                     temperature: float = 0.05) -> dict:
    """Instances in one (H, W, 3) uint8 image: dict(boxes (N, 4) xyxy, labels (N,) 1..K,
    scores (N,), masks (N, H, W) uint8). ``class_names[0]`` is "background"."""
    smooth = box_blur3(image)
    bg = fit_background(smooth)
    dist = np.linalg.norm(smooth - bg, axis=2)
    noise = 1.4826 * np.median(np.abs(dist - np.median(dist)))  # robust spread of the background
    threshold = max(30.0, np.median(dist) + 6.0 * noise)
    # The blur spreads each object by a pixel; the raw colour must differ too, which trims that halo.
    raw_dist = np.linalg.norm(image - bg, axis=2)
    foreground = (dist > threshold) & (raw_dist > 0.5 * threshold)
    comp = label_components(foreground, image.astype(np.float32), colour_tol)
    boxes, labels, scores, masks = [], [], [], []
    sizes = np.bincount(comp.ravel())
    for k in np.flatnonzero(sizes[1:] >= min_area) + 1:  # tiny regions are noise or edge pixels
        mask = comp == k
        ys, xs = np.nonzero(mask)
        if len(xs) < 1.5 * (np.ptp(xs) + np.ptp(ys) + 2):  # a thin sliver (an edge), not an object
            continue
        *f, r_max = shape_features(mask)
        r_key = float(np.clip(np.round(2 * r_max) / 2, 3.0, 39.0))  # half-pixel steps, few cache entries
        protos = np.array([prototype_features(n, r_key) for n in class_names[1:]])  # (K, 2)
        logits = -np.sum((protos - f) ** 2, axis=1) / temperature
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        labels.append(int(prob.argmax()) + 1)
        scores.append(float(prob.max()))
        masks.append(mask.astype(np.uint8))
    h, w = image.shape[:2]
    return dict(boxes=np.array(boxes, np.float32).reshape(-1, 4), labels=np.array(labels, np.int64),
                scores=np.array(scores, np.float64), masks=np.array(masks, np.uint8).reshape(-1, h, w))


def run_baseline(dataset, progress: bool = False) -> list:
    """Predictions (one dict per image, with image_id) for every image of a CocoDataset."""
    from tqdm import tqdm  # noqa: PLC0415

    preds = []
    for i in tqdm(range(len(dataset)), desc="baseline", disable=not progress, leave=False):
        image = dataset.load_image(i)
        p = baseline_predict(image, dataset.class_names)
        p["image_id"] = dataset.image_ids[i]
        preds.append(p)
    return preds
