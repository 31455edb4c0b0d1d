"""Small helpers shared by the drawing modules."""

from __future__ import annotations

import numpy as np


def new_ax(ax, figsize=(4, 4)):
    import matplotlib.pyplot as plt  # noqa: PLC0415 (imported on first drawing only)

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def as_image(image):
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {img.shape}")
    return img


def box_patch(box, colour, lw=1.0, ls="-", alpha=1.0):
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    x1, y1, x2, y2 = (float(v) for v in box)
    return Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, lw=lw, ls=ls, alpha=alpha)
