"""Keypoints drawn as skeletons, and a keypoint's one-hot training target on a RoI's grid.

Mask R-CNN §5 predicts K keypoints per detected person. A pose is easiest to read as a
*skeleton*: the keypoints joined by the edges of a fixed graph (``skeleton``, 0-based pairs,
as ``CocoDataset.skeleton`` and ``datasets.keypoints.SKELETON``). COCO's visibility flags are
drawn too: v = 2 (labelled, visible) a filled dot, v = 1 (labelled but hidden) a hollow one,
v = 0 (not labelled) nothing, and an edge only between two labelled keypoints. Predicted
keypoints carry v = 1 everywhere (the model does not predict visibility); pass
``visibility=False`` to draw them all filled.

Coordinates are continuous pixels with pixel (i, j) covering [j, j+1) x [i, i+1), as the
boxes; ``imshow`` puts pixel j's centre at j, so everything is drawn shifted by -0.5.

Shapes::

    N instances, K keypoint types, S heatmap side (56)
    keypoints (N, K, 3) [x, y, v];  skeleton: pairs (a, b) of 0-based keypoint indices
    roi (4,) [x1, y1, x2, y2];  targets (K,) flat cell index iy * S + ix;  valid (K,) bool
"""

from __future__ import annotations

import numpy as np

from ._common import new_ax
from .instances import draw_instances, instance_colours


def _check(keypoints) -> np.ndarray:
    kp = np.asarray(keypoints, np.float64)
    if kp.ndim == 2 and kp.shape[1] == 3:      # one instance
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[2] != 3:
        raise ValueError(f"keypoints must have shape (N, K, 3) [x, y, visibility], got {kp.shape}")
    return kp


def draw_skeletons(keypoints, skeleton=None, ax=None, colours=None, visibility: bool = True, lw: float = 1.6,
                   size: float = 16.0):
    """Draw each instance's skeleton onto ``ax`` (an image already shown there, or none).

    keypoints: (N, K, 3) (or (K, 3) for one instance); skeleton: 0-based pairs (None: dots
    only); colours: (N, 3) RGB (default ``instance_colours``, the colours of ``draw_instances``);
    visibility: draw v = 1 hollow and skip v = 0 (True), or every keypoint filled (False,
    for predictions). Returns the Axes.
    """
    ax = new_ax(ax)
    kp = _check(keypoints)
    k = kp.shape[1]
    edges = [] if skeleton is None else [tuple(int(i) for i in e) for e in skeleton]
    bad = [e for e in edges if len(e) != 2 or not all(0 <= i < k for i in e)]
    if bad:
        raise ValueError(f"skeleton edges must be pairs of keypoint indices in 0..{k - 1}, got {bad[:3]}")
    colours = instance_colours(len(kp)) if colours is None else np.asarray(colours)
    for inst, colour in zip(kp, colours):
        v = inst[:, 2] if visibility else np.full(k, 2.0)
        x, y = inst[:, 0] - 0.5, inst[:, 1] - 0.5
        for a, b in edges:
            if v[a] > 0 and v[b] > 0:
                ax.plot([x[a], x[b]], [y[a], y[b]], "-", color=colour, lw=lw, alpha=0.9, solid_capstyle="round")
        shown, hidden = v == 2, v == 1
        ax.scatter(x[shown], y[shown], s=size, c=[colour], edgecolors="white", linewidths=0.6, zorder=3)
        ax.scatter(x[hidden], y[hidden], s=size, facecolors="none", edgecolors=[colour], linewidths=1.2, zorder=3)
    return ax


def draw_keypoints(image, keypoints, skeleton=None, boxes=None, masks=None, scores=None, ax=None,
                   visibility: bool = True, title: str | None = None):
    """An image with its instances' skeletons (and optional boxes, masks, scores via
    ``draw_instances``; instance k has one colour everywhere). Returns the Axes."""
    kp = _check(keypoints)
    ax = draw_instances(image, boxes, None, masks, scores, ax=ax, title=title)
    ax.autoscale(False)                           # dots near the border must not widen the view
    return draw_skeletons(kp, skeleton, ax, visibility=visibility)


def draw_keypoint_target(image, roi, keypoints, targets, valid, heatmap_size: int, names=None, axes=None,
                         title: str | None = None):
    """The one-hot target of §5 for one RoI: left the image with the RoI and its keypoints,
    right the RoI's S x S grid with each valid keypoint's single cell lit.

    roi: (4,) box; keypoints: (K, 3) the matched object's keypoints; targets, valid: (K,)
    from ``keypoints_to_heatmap`` (flat index iy * S + ix). Cells are coloured by keypoint
    index; a keypoint outside the RoI (or unlabelled) has no cell. Returns the two Axes.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    kp = _check(keypoints)[0]
    targets, valid = np.asarray(targets).reshape(-1), np.asarray(valid, bool).reshape(-1)
    k, s = len(kp), int(heatmap_size)
    if targets.shape != (k,) or valid.shape != (k,):
        raise ValueError(f"targets and valid must have one entry per keypoint ({k}), got {targets.shape}, "
                         f"{valid.shape}")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(8, 4))
    x1, y1, x2, y2 = (float(v) for v in roi)
    colours = plt.get_cmap("tab20")(np.arange(k) % 20)[:, :3]
    ax = axes[0]
    ax.imshow(np.asarray(image), interpolation="nearest")
    ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="yellow", lw=1.5))
    ax.autoscale(False)
    lab = kp[:, 2] > 0
    ax.scatter(kp[lab, 0] - 0.5, kp[lab, 1] - 0.5, s=18, c=colours[lab], edgecolors="white", linewidths=0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("RoI (yellow) and the matched object's keypoints", fontsize=9)
    grid = np.ones((s, s, 3))
    for j in np.nonzero(valid)[0]:
        grid[targets[j] // s, targets[j] % s] = colours[j]
    ax = axes[1]
    ax.imshow(grid, interpolation="nearest", extent=(0, s, s, 0))
    ax.set_xticks(np.arange(0, s + 1, 8))
    ax.set_yticks(np.arange(0, s + 1, 8))
    ax.grid(alpha=0.25, lw=0.5)
    for j in np.nonzero(valid)[0]:
        label = names[j] if names is not None else str(j)
        ax.annotate(label, (targets[j] % s + 0.5, targets[j] // s + 0.5), fontsize=6, color=colours[j],
                    xytext=(3, -3), textcoords="offset points")
    ax.set_title(title or f"targets: one lit cell of {s} x {s} per keypoint ({int(valid.sum())} valid)", fontsize=9)
    return axes


__all__ = ["draw_keypoint_target", "draw_keypoints", "draw_skeletons"]
