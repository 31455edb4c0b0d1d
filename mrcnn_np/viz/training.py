"""Training curves and detection errors (false positives, misses)."""

from __future__ import annotations

import numpy as np

from ._common import new_ax
from .instances import instance_colours


def plot_losses(log, ax=None, names=None, window: int = 10, title: str | None = None):
    """Loss curves from ``engine.train.read_losses``: each component faint, its moving average solid.

    log: {column: (T,) array} with "iteration" and the loss columns; names: columns to draw
    (default: the five losses and "total"); window: moving-average length (1: none).
    """
    ax = new_ax(ax, figsize=(7, 4))
    names = names or [k for k in ("loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask", "total")
                      if k in log]
    it = np.asarray(log["iteration"])
    colours = instance_colours(len(names))
    for colour, name in zip(colours, names):
        y = np.asarray(log[name], np.float64)
        if window > 1 and len(y) >= window:
            ax.plot(it, y, color=colour, alpha=0.25, lw=0.8)
            smooth = np.convolve(y, np.ones(window) / window, mode="valid")
            ax.plot(it[window - 1:], smooth, color=colour, lw=1.8, label=name)
        else:  # too short to smooth: the raw values, solid
            ax.plot(it, y, color=colour, lw=1.5, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def draw_errors(image, boxes, labels, hit, gt_boxes, gt_labels, missed, class_names=None, scores=None, ax=None,
                title: str | None = None):
    """Detections that hit an object (green), false positives (red, dashed) and missed
    objects (yellow, dotted) on one image. hit: (D,) bool; missed: (G,) bool (see
    ``engine.predict.match_to_ground_truth``).

    Errors cluster: a duplicate and the hit it duplicates share a corner, so labels written
    at the boxes would cover each other. The labels go in a column to the right of the
    image instead, in the top-to-bottom order of their boxes, evenly spaced (the font
    shrinks when there are many), each joined to its box's top-right corner by a thin line.
    """
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    ax = new_ax(ax)
    img = np.asarray(image)
    ax.imshow(img / 255.0 if img.dtype == np.uint8 else img, interpolation="nearest")

    def name(lab):
        lab = int(lab)
        return class_names[lab] if class_names is not None and 0 <= lab < len(class_names) else str(lab)

    items = [(b, "lime", "-", f"{name(l)}" + (f" {float(s):.2f}" if scores is not None else ""))
             for b, l, s, h in zip(boxes, labels, scores if scores is not None else [None] * len(boxes), hit) if h]
    items += [(b, "red", "--", f"FP {name(l)}" + (f" {float(s):.2f}" if scores is not None else ""))
              for b, l, s, h in zip(boxes, labels, scores if scores is not None else [None] * len(boxes), hit)
              if not h]
    items += [(b, "yellow", ":", f"miss {name(l)}") for b, l, m in zip(gt_boxes, gt_labels, missed) if m]
    for box, colour, ls, _ in items:
        x1, y1, x2, y2 = (float(v) for v in box)
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.5,
                               linestyle=ls))
    if items:
        # a label is about 1.2 * fontsize + 2 pt tall (text + its box's padding); n of them
        # must fit in the axes' height, with room to spare for tight_layout shrinking it
        height_pt = ax.get_position().height * ax.figure.get_figheight() * 72
        size = float(np.clip((0.7 * height_pt / len(items) - 2) / 1.2, 3, 6))
        order = sorted(range(len(items)), key=lambda k: (float(items[k][0][1]), float(items[k][0][0])))
        for slot, k in enumerate(order):
            box, colour, _, tag = items[k]
            ax.annotate(tag, xy=(float(box[2]) - 0.5, float(box[1]) - 0.5), xycoords="data",
                        xytext=(1.03, 1 - (slot + 0.5) / len(items)), textcoords="axes fraction",
                        fontsize=size, va="center", ha="left", color="black", annotation_clip=False,
                        bbox=dict(facecolor=colour, alpha=0.7, pad=1, edgecolor="none"),
                        arrowprops=dict(arrowstyle="-", color=colour, lw=0.6, alpha=0.7))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax
