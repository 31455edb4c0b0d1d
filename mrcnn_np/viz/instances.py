"""Images with their instances: masks, boxes, class names and scores."""

from __future__ import annotations

import numpy as np

from ._common import new_ax


def instance_colours(n: int) -> np.ndarray:
    """(n, 3) float RGB in [0, 1]: distinct colours (tab10, then tab20) for n instances."""
    import matplotlib  # noqa: PLC0415

    table = np.concatenate([matplotlib.colormaps["tab10"].colors, matplotlib.colormaps["tab20"].colors])
    return np.asarray(table)[np.arange(n) % len(table), :3]


def overlay_masks(image, masks, alpha: float = 0.45) -> np.ndarray:
    """(H, W, 3) float image in [0, 1] with each of masks (N, H, W) tinted in its own colour.

    masks may be binary or probabilities (a pixel counts when > 0.5).
    """
    img = np.asarray(image)
    img = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64).copy()
    for colour, m in zip(instance_colours(len(masks)), np.asarray(masks)):
        on = m > 0.5
        img[on] = (1 - alpha) * img[on] + alpha * colour
    return np.clip(img, 0, 1)


def draw_instances(image, boxes=None, labels=None, masks=None, scores=None, class_names=None, ax=None,
                   alpha: float = 0.45, title: str | None = None):
    """Draw an image with its instances: tinted masks, box outlines, "name score" tags.

    image: (H, W, 3) uint8 or float in [0, 1]; boxes: (N, 4) [x1, y1, x2, y2] pixels;
    labels: (N,) ints indexing class_names (0 = background); masks: (N, H, W) binary or
    probabilities; scores: (N,) floats. Instance k has the same colour in mask and box.
    Returns the matplotlib Axes.
    """
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    ax = new_ax(ax)
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {img.shape}")
    n = max(len(a) for a in (boxes, labels, masks, scores) if a is not None) if any(
        a is not None for a in (boxes, labels, masks, scores)) else 0
    shown = overlay_masks(img, masks, alpha) if masks is not None and len(masks) else (
        img / 255.0 if img.dtype == np.uint8 else img)
    ax.imshow(shown, interpolation="nearest")
    colours = instance_colours(n)
    for k in range(n):
        if boxes is not None:
            x1, y1, x2, y2 = (float(v) for v in boxes[k])
            # pixel (i, j) covers [j, j+1): imshow puts its centre at j, so shift by -0.5
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                                   edgecolor=colours[k], linewidth=1.5))
        tag = []
        if labels is not None:
            lab = int(labels[k])
            tag.append(class_names[lab] if class_names is not None and 0 <= lab < len(class_names) else str(lab))
        if scores is not None:
            tag.append(f"{float(scores[k]):.2f}")
        if tag and boxes is not None:
            ax.text(float(boxes[k][0]) - 0.5, float(boxes[k][1]) - 1.5, " ".join(tag), fontsize=7, color="white",
                    bbox=dict(facecolor=colours[k], alpha=0.8, pad=1, edgecolor="none"))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def show_samples(samples, n: int = 6, cols: int = 3, class_names=None, titles=None, size: float = 3.0):
    """Grid of the first n samples drawn with ``draw_instances``; returns the Figure.

    samples: a data set (``ds[i]`` gives dicts) or a list of dicts with ``image`` and
    optional ``boxes``, ``labels``, ``masks``, ``scores``; class names come from
    ``class_names``, else the data set's / sample's ``class_names``.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415

    n = min(n, len(samples))
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    names = class_names or getattr(samples, "class_names", None)
    for k, ax in enumerate(axes.ravel()):
        if k >= n:
            ax.axis("off")
            continue
        s = samples[k]
        draw_instances(s["image"], s.get("boxes"), s.get("labels"), s.get("masks"), s.get("scores"),
                       names or s.get("class_names"), ax=ax, title=titles[k] if titles else None)
    fig.tight_layout()
    return fig
