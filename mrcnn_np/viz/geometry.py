"""Anchors, anchor matching and NMS steps drawn on an image."""

from __future__ import annotations

import numpy as np

from ._common import as_image, box_patch, new_ax
from .instances import instance_colours


def draw_anchors(image, anchors, ax=None, colours=None, centres=None, lw=1.0, alpha=0.9,
                 title: str | None = None, pad: float = 0.0):
    """Draw anchor boxes (outlines) over an image.

    image: (H, W, 3) uint8 or float in [0, 1]; anchors: (A, 4) [x1, y1, x2, y2] pixels;
    colours: one colour per anchor (default: cycles through tab10); centres: optional
    (P, 2) points (x, y) drawn as dots, e.g. every anchor centre of a level. ``pad``
    widens the view beyond the image, since anchors may cross the border.
    """
    ax = new_ax(ax)
    img = as_image(image)
    ax.imshow(img)
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 4)
    if colours is None:
        colours = instance_colours(len(anchors))
    for box, colour in zip(anchors, colours):
        ax.add_patch(box_patch(box, colour, lw=lw, alpha=alpha))
    if centres is not None:
        centres = np.asarray(centres).reshape(-1, 2)
        ax.plot(centres[:, 0], centres[:, 1], ".", ms=2, color="white", alpha=0.8)
    h, w = img.shape[:2]
    ax.set_xlim(-pad, w + pad)
    ax.set_ylim(h + pad, -pad)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def draw_matches(image, anchors, matches, gt_boxes, ax=None, show_negatives: int = 0,
                 title: str | None = None, pad: float = 0.0, seed: int = 0, show_ignored: int = 40):
    """Anchors coloured by their Matcher code over an image with its GT boxes.

    anchors: (N, 4); matches: (N,) int codes (>= 0 positive, matched GT index; -1
    background; -2 ignored); gt_boxes: (M, 4). Every positive is drawn, in its GT's colour.
    Ignored and negative anchors are far too many to draw all (hundreds overlap into a
    solid mesh that hides the positives), so only a random sample of each is drawn, faintly:
    ``show_ignored`` ignored ones (dashed orange) and ``show_negatives`` negatives (grey).
    GT boxes are thick. The legend gives every count, and how many of each were drawn.
    """
    from matplotlib.lines import Line2D  # noqa: PLC0415

    ax = new_ax(ax)
    img = as_image(image)
    ax.imshow(img)
    anchors = np.asarray(anchors, dtype=np.float64)
    matches = np.asarray(matches)
    colours = instance_colours(len(gt_boxes))
    rng = np.random.default_rng(seed)

    def sample(code, k):
        idx = np.flatnonzero(matches == code)
        return rng.choice(idx, size=min(k, idx.size), replace=False) if k and idx.size else idx[:0]

    neg, ign = sample(-1, show_negatives), sample(-2, show_ignored)
    for box in anchors[neg]:
        ax.add_patch(box_patch(box, "0.6", lw=0.5, alpha=0.5))
    for box in anchors[ign]:
        ax.add_patch(box_patch(box, "orange", lw=0.5, ls="--", alpha=0.5))
    for box, g in zip(anchors[matches >= 0], matches[matches >= 0]):
        ax.add_patch(box_patch(box, colours[g], lw=1.2))
    for box, colour in zip(np.asarray(gt_boxes), colours):
        ax.add_patch(box_patch(box, colour, lw=2.5))
    h, w = img.shape[:2]
    ax.set_xlim(-pad, w + pad)
    ax.set_ylim(h + pad, -pad)
    n_pos, n_ign, n_neg = int((matches >= 0).sum()), int((matches == -2).sum()), int((matches == -1).sum())
    pos_colour = colours[0] if len(colours) else "tab:blue"
    handles = [Line2D([], [], color=pos_colour, lw=1.2, label=f"positive: all {n_pos} (object's colour)"),
               Line2D([], [], color="orange", lw=0.8, ls="--", label=f"ignored: {len(ign)} drawn of {n_ign}"),
               Line2D([], [], color="0.6", lw=0.8, label=f"negative: {len(neg)} drawn of {n_neg}"),
               Line2D([], [], color="0.2", lw=2.5, label=f"GT boxes ({len(gt_boxes)})")]
    ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.85)
    counts = f"{n_pos} pos, {n_ign} ignored, {n_neg} neg"
    ax.set_title(f"{title}: {counts}" if title else counts, fontsize=9)
    return ax


def draw_nms_step(boxes, scores, kept, suppressed, current=None, image=None, ax=None,
                  title: str | None = None, classes=None):
    """One moment of greedy NMS: kept boxes solid, suppressed dashed, the rest grey.

    boxes: (N, 4); scores: (N,); kept, suppressed: index arrays so far; current: the box
    just kept (drawn thick with its score). ``image`` is an optional backdrop. Without
    ``classes`` kept boxes are green and suppressed ones red; with ``classes`` ((N,) ints,
    e.g. the ``idxs`` of ``batched_nms``) every box takes its class's colour, the line style
    still says kept / suppressed, and a legend names the classes.
    """
    from matplotlib.lines import Line2D  # noqa: PLC0415

    ax = new_ax(ax)
    boxes = np.asarray(boxes, dtype=np.float64)
    if image is not None:
        ax.imshow(as_image(image))
    kept, suppressed = set(np.asarray(kept).tolist()), set(np.asarray(suppressed).tolist())
    if classes is not None:
        classes = np.asarray(classes).reshape(-1)
        if len(classes) != len(boxes):
            raise ValueError(f"classes has {len(classes)} entries for {len(boxes)} boxes")
        names = np.unique(classes)
        palette = dict(zip(names.tolist(), instance_colours(len(names))))
    for i, box in enumerate(boxes):
        c = palette[classes[i].item()] if classes is not None else None
        if i in kept:
            ax.add_patch(box_patch(box, c if c is not None else "tab:green", lw=2.5 if i == current else 1.5))
        elif i in suppressed:
            ax.add_patch(box_patch(box, c if c is not None else "tab:red", lw=1.0, ls="--", alpha=0.7))
        else:
            ax.add_patch(box_patch(box, c if c is not None else "0.5", lw=0.8, alpha=0.8))
    if current is not None:
        ax.text(boxes[current, 0], boxes[current, 1], f"{float(scores[current]):.2f}", color="white",
                fontsize=7, va="bottom", bbox=dict(facecolor="tab:green", pad=1, lw=0))
    if classes is not None:
        handles = [Line2D([], [], color=palette[k], lw=2, label=f"class {k}") for k in palette]
        handles += [Line2D([], [], color="0.3", lw=1.5, label="kept"),
                    Line2D([], [], color="0.3", lw=1.0, ls="--", label="suppressed")]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    if image is None:
        lo, hi = boxes[:, :2].min(0) - 5, boxes[:, 2:].max(0) + 5
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(hi[1], lo[1])
        ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    return ax
