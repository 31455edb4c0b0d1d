"""Where RoIPool, RoIWarp and RoIAlign sample a feature map, and their gradients."""

from __future__ import annotations

import numpy as np

from ._common import new_ax


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
    from ..ops.bilinear import as_pair, bilinear_interpolate_gradient, c_round  # noqa: PLC0415
    from ..ops.roi_align import roi_geometry, sample_coordinate  # noqa: PLC0415
    from ..ops.roi_pool import roi_pool_bins  # noqa: PLC0415

    ax = new_ax(ax, figsize=(5, 4))
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
    ax = new_ax(ax, figsize=(4, 3.5))
    grad = np.asarray(grad)
    lim = float(np.abs(grad).max()) or 1.0
    im = ax.imshow(grad, cmap="RdBu_r", vmin=-lim, vmax=lim)
    if roi is not None:
        _rect(ax, *(np.asarray(roi, np.float64) * spatial_scale), "k", ls="--", lw=1.0)
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title or "dL/dinput", fontsize=9)
    return ax
