"""The model's intermediates: feature maps per level, heat maps, box sets, mask targets."""

from __future__ import annotations

import numpy as np

from ._common import as_image, box_patch, new_ax


def draw_level_maps(maps, names=None, image_size=None, axes=None, cmap="viridis", size: float = 2.4):
    """One panel per feature level: each map (h_l, w_l) drawn over the same image extent.

    maps: list of 2-D arrays (e.g. the channel mean of each FPN level); names: one title
    per map; image_size: (H, W) of the padded input, so every level covers the same area
    and the coarser grids show as bigger cells (default: each map in its own pixels).
    Returns the Figure.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415

    if axes is None:
        _, axes = plt.subplots(1, len(maps), figsize=(size * len(maps), size), squeeze=False)
        axes = axes[0]
    for k, (m, ax) in enumerate(zip(maps, axes)):
        m = np.asarray(m, np.float64)
        extent = None if image_size is None else (0, image_size[1], image_size[0], 0)
        ax.imshow(m, cmap=cmap, extent=extent, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(names[k] if names is not None else f"{m.shape[0]}x{m.shape[1]}", fontsize=8)
    fig = axes[0].figure
    fig.tight_layout()
    return fig


def draw_heatmap(image, heat, ax=None, alpha=0.55, cmap="magma", vmin=None, vmax=None, title=None,
                 colorbar=True):
    """A coarse (h, w) map stretched over an (H, W, 3) image (e.g. RPN objectness of one level).

    Cell (i, j) of ``heat`` covers image pixels [j W/w, (j+1) W/w) x [i H/h, (i+1) H/h).
    """
    ax = new_ax(ax)
    img = as_image(image)
    h, w = img.shape[:2]
    ax.imshow(img)
    im = ax.imshow(np.asarray(heat, np.float64), cmap=cmap, alpha=alpha, extent=(0, w, h, 0),
                   vmin=vmin, vmax=vmax, interpolation="nearest")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def draw_box_sets(image, sets, ax=None, title=None, pad: float = 0.0, legend: bool = True):
    """Several groups of boxes over an image, one style per group, with a legend.

    sets: list of dicts with ``boxes`` (B, 4) [x1, y1, x2, y2] pixels and optional
    ``colour`` (one colour, or one per box), ``lw``, ``ls``, ``alpha``, ``label``.
    Groups are drawn in order (put the many faint ones first).
    """
    from matplotlib.lines import Line2D  # noqa: PLC0415

    ax = new_ax(ax)
    img = as_image(image)
    ax.imshow(img)
    handles = []
    for s in sets:
        boxes = np.asarray(s["boxes"], np.float64).reshape(-1, 4)
        colour = s.get("colour", "white")
        # one colour per box: an (B, 3|4) array, or a list of B colour names; else one colour
        per_box = (np.ndim(colour) == 2 or (isinstance(colour, (list, tuple)) and len(colour) == len(boxes)
                                            and all(isinstance(c, str) for c in colour)))
        colours = list(colour) if per_box else [colour] * len(boxes)
        lw, ls, alpha = s.get("lw", 1.0), s.get("ls", "-"), s.get("alpha", 1.0)
        for box, c in zip(boxes, colours):
            ax.add_patch(box_patch(box, c, lw=lw, ls=ls, alpha=alpha))
        if s.get("label"):
            c0 = colours[0] if len(colours) else colour
            handles.append(Line2D([], [], color=c0, lw=lw, ls=ls, label=f"{s['label']} ({len(boxes)})"))
    h, w = img.shape[:2]
    ax.set_xlim(-pad, w + pad)
    ax.set_ylim(h + pad, -pad)
    ax.set_xticks([])
    ax.set_yticks([])
    if legend and handles:
        ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def draw_mask_target(gt_mask, box, target, axes=None, title=None, margin=None):
    """A positive RoI's mask target: the GT mask with the RoI box, and the M x M target.

    gt_mask: (H, W) 0/1 mask of the matched instance; box: (4,) the RoI [x1, y1, x2, y2];
    target: (M, M) in [0, 1] (``project_masks_on_boxes``); margin: if given, zoom the
    first panel onto the box enlarged by ``margin`` times its larger side. Where that window
    reaches past the image, the area outside is hatched grey and labelled, so it cannot be
    read as mask pixels (white) or background (black). Returns the two Axes.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(5, 2.5))
    a, b = axes
    a.imshow(np.asarray(gt_mask), cmap="gray", vmin=0, vmax=1)
    a.add_patch(box_patch(box, "tab:red", lw=1.5))
    a.set_title(title or "GT mask + RoI", fontsize=8)
    if margin is not None:
        x1, y1, x2, y2 = (float(v) for v in box)
        d = margin * max(x2 - x1, y2 - y1)
        a.set_xlim(x1 - d, x2 + d)
        a.set_ylim(y2 + d, y1 - d)
        h, w = np.shape(gt_mask)
        # imshow covers [-0.5, w - 0.5] x [-0.5, h - 0.5]; anything beyond is not the image
        if x1 - d < -0.5 or y1 - d < -0.5 or x2 + d > w - 0.5 or y2 + d > h - 0.5:
            a.add_patch(Rectangle((x1 - d, y1 - d), x2 - x1 + 2 * d, y2 - y1 + 2 * d, facecolor="0.6",
                                  edgecolor="0.35", hatch="///", lw=0, zorder=-1))
            a.text(0.5, 0.02, "hatched: outside the image", transform=a.transAxes, ha="center", va="bottom",
                   fontsize=6, bbox=dict(facecolor="white", alpha=0.8, pad=1, lw=0))
    target = np.asarray(target)
    b.imshow(target, cmap="gray", vmin=0, vmax=1)
    b.set_title(f"{target.shape[0]}x{target.shape[1]} target", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return axes
