"""Matplotlib drawings used by the notebooks and the CLI.

Each function draws onto a matplotlib ``Axes`` passed in (or creates one) and returns it,
so a notebook can compose figures. Nothing here computes model results: callers pass
arrays produced by the package.
"""

from __future__ import annotations

import numpy as np

# --- images, instances (boxes, masks, class names) ---


def _new_ax(ax, figsize=(4, 4)):
    import matplotlib.pyplot as plt  # noqa: PLC0415 (imported on first drawing only)

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


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

    ax = _new_ax(ax)
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


# --- anchors, matching, NMS ---


def _as_image(image):
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {img.shape}")
    return img


def _box_patch(box, colour, lw=1.0, ls="-", alpha=1.0):
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    x1, y1, x2, y2 = (float(v) for v in box)
    return Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, lw=lw, ls=ls, alpha=alpha)


def draw_anchors(image, anchors, ax=None, colours=None, centres=None, lw=1.0, alpha=0.9,
                 title: str | None = None, pad: float = 0.0):
    """Draw anchor boxes (outlines) over an image.

    image: (H, W, 3) uint8 or float in [0, 1]; anchors: (A, 4) [x1, y1, x2, y2] pixels;
    colours: one colour per anchor (default: cycles through tab10); centres: optional
    (P, 2) points (x, y) drawn as dots, e.g. every anchor centre of a level. ``pad``
    widens the view beyond the image, since anchors may cross the border.
    """
    ax = _new_ax(ax)
    img = _as_image(image)
    ax.imshow(img)
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 4)
    if colours is None:
        colours = instance_colours(len(anchors))
    for box, colour in zip(anchors, colours):
        ax.add_patch(_box_patch(box, colour, lw=lw, alpha=alpha))
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
                 title: str | None = None, pad: float = 0.0, seed: int = 0):
    """Anchors coloured by their Matcher code over an image with its GT boxes.

    anchors: (N, 4); matches: (N,) int codes (>= 0 positive, matched GT index; -1
    background; -2 ignored); gt_boxes: (M, 4). Positives are drawn in their GT's colour,
    ignored anchors dashed orange, and ``show_negatives`` randomly chosen negatives in
    faint grey (there are far too many to draw all). GT boxes are thick.
    """
    ax = _new_ax(ax)
    img = _as_image(image)
    ax.imshow(img)
    anchors = np.asarray(anchors, dtype=np.float64)
    matches = np.asarray(matches)
    colours = instance_colours(len(gt_boxes))
    neg = np.flatnonzero(matches == -1)
    if show_negatives and neg.size:
        pick = np.random.default_rng(seed).choice(neg, size=min(show_negatives, neg.size), replace=False)
        for box in anchors[pick]:
            ax.add_patch(_box_patch(box, "0.6", lw=0.5, alpha=0.5))
    for box in anchors[matches == -2]:
        ax.add_patch(_box_patch(box, "orange", lw=0.5, ls="--", alpha=0.35))
    for box, g in zip(anchors[matches >= 0], matches[matches >= 0]):
        ax.add_patch(_box_patch(box, colours[g], lw=0.9))
    for box, colour in zip(np.asarray(gt_boxes), colours):
        ax.add_patch(_box_patch(box, colour, lw=2.5))
    h, w = img.shape[:2]
    ax.set_xlim(-pad, w + pad)
    ax.set_ylim(h + pad, -pad)
    counts = f"{(matches >= 0).sum()} pos, {(matches == -2).sum()} ignored, {(matches == -1).sum()} neg"
    ax.set_title(f"{title}: {counts}" if title else counts, fontsize=9)
    return ax


def draw_nms_step(boxes, scores, kept, suppressed, current=None, image=None, ax=None,
                  title: str | None = None):
    """One moment of greedy NMS: kept boxes green, suppressed red dashed, the rest grey.

    boxes: (N, 4); scores: (N,); kept, suppressed: index arrays so far; current: the box
    just kept (drawn thick with its score). ``image`` is an optional backdrop.
    """
    ax = _new_ax(ax)
    boxes = np.asarray(boxes, dtype=np.float64)
    if image is not None:
        ax.imshow(_as_image(image))
    kept, suppressed = set(np.asarray(kept).tolist()), set(np.asarray(suppressed).tolist())
    for i, box in enumerate(boxes):
        if i in kept:
            ax.add_patch(_box_patch(box, "tab:green", lw=2.5 if i == current else 1.5))
        elif i in suppressed:
            ax.add_patch(_box_patch(box, "tab:red", lw=1.0, ls="--", alpha=0.7))
        else:
            ax.add_patch(_box_patch(box, "0.5", lw=0.8, alpha=0.8))
    if current is not None:
        ax.text(boxes[current, 0], boxes[current, 1], f"{float(scores[current]):.2f}", color="white",
                fontsize=7, va="bottom", bbox=dict(facecolor="tab:green", pad=1, lw=0))
    if image is None:
        lo, hi = boxes[:, :2].min(0) - 5, boxes[:, 2:].max(0) + 5
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(hi[1], lo[1])
        ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# --- RoI ops: RoIPool / RoIWarp / RoIAlign sampling grids ---


def _roi_grid(ax, h, w):
    """The feature grid: value (i, j) is the dot at (x=j, y=i); its cell spans +-0.5 around it."""
    for i in range(h + 1):
        ax.plot([-0.5, w - 0.5], [i - 0.5, i - 0.5], color="0.85", lw=0.6, zorder=0)
    for j in range(w + 1):
        ax.plot([j - 0.5, j - 0.5], [-0.5, h - 0.5], color="0.85", lw=0.6, zorder=0)
    yy, xx = np.mgrid[0:h, 0:w]
    ax.scatter(xx.ravel(), yy.ravel(), s=6, color="0.55", zorder=1)


def _rect(ax, x1, y1, x2, y2, colour, ls="-", lw=1.5, fill=None, alpha=1.0, label=None):
    from matplotlib.patches import Rectangle  # noqa: PLC0415
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=fill is not None,
                           facecolor=fill, edgecolor=colour if fill is None else "none",
                           ls=ls, lw=lw, alpha=alpha, label=label, zorder=2))


def draw_roi_op(op, roi, feature_shape=(8, 10), output_size=2, spatial_scale=1.0,
                sampling_ratio=2, aligned=False, ax=None, neighbours_of=(0, 0), title=None):
    """Draw how one RoI op reads a feature grid (Mask R-CNN Fig. 3 / Table 2c).

    op: "roipool" | "roiwarp" | "roialign". roi: (x1, y1, x2, y2) in image pixels (scaled
    by spatial_scale onto the grid). feature_shape: (H, W) of the grid drawn. The drawing
    uses the kernels' own frame: feature value (i, j) is the grey dot at (x=j, y=i).
      * roipool: the rounded RoI and its bins as the shaded cells each bin takes the max of;
      * roiwarp: the rounded RoI, its bins and the bilinear sample points;
      * roialign: the exact RoI (shifted by -0.5 cell when aligned, the unshifted one
        dashed), its bins, the sample points, and for bin ``neighbours_of`` = (ph, pw) the
        lines from each sample to the 4 grid values it blends.
    The exact RoI is always drawn dashed black for reference. Returns the Axes.
    """
    from .ops._bilinear import as_pair, bilinear_interpolate_gradient, c_round  # noqa: PLC0415
    from .ops.roi_align import roi_geometry, sample_coordinate  # noqa: PLC0415
    from .ops.roi_pool import roi_pool_bins  # noqa: PLC0415

    ax = _new_ax(ax, figsize=(5, 4))
    h, w = feature_shape
    ph_, pw_ = as_pair(output_size)
    s = float(spatial_scale)
    roi = np.asarray(roi, np.float64)
    _roi_grid(ax, h, w)
    _rect(ax, *(roi * s), "k", ls="--", lw=1.0)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
               "tab:pink", "tab:olive", "tab:cyan"]
    if op == "roipool":
        hs, he, ws, we = roi_pool_bins(np.array([[0, *roi]]), np.float64, s, ph_, pw_, h, w)
        q = c_round(roi * s)
        _rect(ax, q[0] - 0.5, q[1] - 0.5, q[2] + 0.5, q[3] + 0.5, "tab:red", lw=2)
        for ph in range(ph_):
            for pw in range(pw_):
                colour = colours[(ph * pw_ + pw) % len(colours)]
                _rect(ax, ws[0, pw] - 0.5, hs[0, ph] - 0.5, we[0, pw] - 0.5, he[0, ph] - 0.5,
                      None, fill=colour, alpha=0.25)
    elif op in ("roiwarp", "roialign"):
        if op == "roiwarp":
            box = c_round(roi * s)
            geo_roi, geo_scale, geo_aligned = np.array([0, *box]), 1.0, False
            _rect(ax, *box, "tab:red", lw=2)
        else:
            geo_roi, geo_scale, geo_aligned = np.array([0, *roi]), s, aligned
            off = 0.5 if aligned else 0.0
            _rect(ax, *(roi * s - off), "tab:blue", lw=2)
        _, y0, x0, bh, bw, gh, gw = roi_geometry(geo_roi, np.float64, geo_scale, ph_, pw_,
                                                 sampling_ratio, geo_aligned)
        for p in range(ph_ + 1):
            ax.plot([x0, x0 + pw_ * bw], [y0 + p * bh] * 2, color="tab:blue", lw=0.8)
        for p in range(pw_ + 1):
            ax.plot([x0 + p * bw] * 2, [y0, y0 + ph_ * bh], color="tab:blue", lw=0.8)
        for ph in range(ph_):
            for pw in range(pw_):
                for iy in range(gh):
                    for ix in range(gw):
                        y = sample_coordinate(y0, ph, bh, iy, gh)
                        x = sample_coordinate(x0, pw, bw, ix, gw)
                        ax.scatter([x], [y], s=14, color="tab:red", zorder=3)
                        if op == "roialign" and (ph, pw) == tuple(neighbours_of):
                            *_, xl, xh, yl, yh = bilinear_interpolate_gradient(h, w, y, x)
                            if yl >= 0:
                                for ny, nx in ((yl, xl), (yl, xh), (yh, xl), (yh, xh)):
                                    ax.plot([x, nx], [y, ny], color="tab:green", lw=0.7, zorder=2)
    else:
        raise ValueError(f"op must be 'roipool', 'roiwarp' or 'roialign', got {op!r}")
    ax.set_xlim(-1, w)
    ax.set_ylim(h, -1)
    ax.set_aspect("equal")
    ax.set_title(title or (op + (" (aligned)" if aligned and op == "roialign" else "")), fontsize=9)
    return ax


def draw_feature_gradient(grad, roi=None, spatial_scale=1.0, ax=None, title=None):
    """One (H, W) plane of dL/dinput (red +, blue -) with the RoI drawn in feature coordinates."""
    ax = _new_ax(ax, figsize=(4, 3.5))
    grad = np.asarray(grad)
    lim = float(np.abs(grad).max()) or 1.0
    im = ax.imshow(grad, cmap="RdBu_r", vmin=-lim, vmax=lim)
    if roi is not None:
        _rect(ax, *(np.asarray(roi, np.float64) * spatial_scale), "k", ls="--", lw=1.0)
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title or "dL/dinput", fontsize=9)
    return ax


# --- model: features, proposals, RoIs, mask targets ---


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
    ax = _new_ax(ax)
    img = _as_image(image)
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

    ax = _new_ax(ax)
    img = _as_image(image)
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
            ax.add_patch(_box_patch(box, c, lw=lw, ls=ls, alpha=alpha))
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
    first panel onto the box enlarged by ``margin`` times its larger side. Returns the two Axes.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(5, 2.5))
    a, b = axes
    a.imshow(np.asarray(gt_mask), cmap="gray", vmin=0, vmax=1)
    a.add_patch(_box_patch(box, "tab:red", lw=1.5))
    a.set_title(title or "GT mask + RoI", fontsize=8)
    if margin is not None:
        x1, y1, x2, y2 = (float(v) for v in box)
        d = margin * max(x2 - x1, y2 - y1)
        a.set_xlim(x1 - d, x2 + d)
        a.set_ylim(y2 + d, y1 - d)
    target = np.asarray(target)
    b.imshow(target, cmap="gray", vmin=0, vmax=1)
    b.set_title(f"{target.shape[0]}x{target.shape[1]} target", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return axes

# --- training curves, detection errors ---


def plot_losses(log, ax=None, names=None, window: int = 10, title: str | None = None):
    """Loss curves from ``engine.train.read_losses``: each component faint, its moving average solid.

    log: {column: (T,) array} with "iteration" and the loss columns; names: columns to draw
    (default: the five losses and "total"); window: moving-average length (1: none).
    """
    ax = _new_ax(ax, figsize=(7, 4))
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
    ``engine.predict.match_to_ground_truth``)."""
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    ax = _new_ax(ax)
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
    for box, colour, ls, tag in items:
        x1, y1, x2, y2 = (float(v) for v in box)
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.5,
                               linestyle=ls))
        ax.text(x1 - 0.5, y1 - 1.5, tag, fontsize=6, color="black",
                bbox=dict(facecolor=colour, alpha=0.7, pad=1, edgecolor="none"))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax
