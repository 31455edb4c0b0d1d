"""RoIAlign's geometry: where each RoI's bins and sample points lie (docs/REFERENCE.md section 8.1).

Shared by the three RoIAlign implementations, RoIWarp (RoIAlign on a rounded box) and the
drawings. ``roi_geometry`` is the one-RoI form the loops read; ``roi_geometry_arrays`` the
same numbers for all RoIs at once; ``sample_axes`` / ``grid_groups`` the bilinear factors of
the samples and the RoIs grouped by grid size, for the NumPy twin.
"""

from __future__ import annotations

import numpy as np

from .bilinear import bilinear_axis

# An adaptive grid (ceil(roi / bins) samples per side) larger than this -- only possible
# when the RoI's coordinates come near the float limits (~3e38), or overflow to inf -- gets
# no samples: its bins read 0. Every twin, the CUDA kernel included, applies this rule
# (before, the float -> int conversion decided, differently in each twin).
GRID_MAX = 2**31 - 1


# An adaptive grid is ceil(roi / bins) samples per bin side: a finite but enormous RoI (say
# 1e9 pixels across) would take ~1e16 samples per bin, hours in every twin (torchvision's
# too). Beyond this many samples per bin the CPU twins refuse the RoI instead of hanging;
# realistic RoIs are far below it (a whole 1344-px image in 7 x 7 bins: ~37,000).
SAMPLES_PER_BIN_MAX = 2**22


def check_sample_budget(rois, dtype, spatial_scale, ph_, pw_, sampling_ratio, aligned):
    """Raise ValueError naming the first RoI whose adaptive grid exceeds SAMPLES_PER_BIN_MAX."""
    if sampling_ratio > 0 or not len(rois):
        return
    geo = roi_geometry_arrays(rois, dtype, spatial_scale, ph_, pw_, sampling_ratio, aligned)
    samples = np.maximum(geo[5], 0) * np.maximum(geo[6], 0)
    bad = np.flatnonzero(samples > SAMPLES_PER_BIN_MAX)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"rois[{i}]: adaptive sampling (sampling_ratio <= 0) would read {int(samples[i])} "
                         f"samples per bin (at most {SAMPLES_PER_BIN_MAX}); pass a positive sampling_ratio")


def roi_geometry(roi, t, spatial_scale, ph_, pw_, sampling_ratio, aligned):
    """One RoI's layout: (batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w), dtype ``t``."""
    offset = t(0.5) if aligned else t(0)
    s = t(spatial_scale)
    start_w, start_h = roi[1] * s - offset, roi[2] * s - offset
    roi_w, roi_h = (roi[3] * s - offset) - start_w, (roi[4] * s - offset) - start_h
    if not aligned:  # legacy: force malformed RoIs to 1 x 1
        roi_w, roi_h = max(roi_w, t(1)), max(roi_h, t(1))
    bin_h, bin_w = roi_h / t(ph_), roi_w / t(pw_)
    grid_h = sampling_ratio if sampling_ratio > 0 else adaptive_grid(roi_h / t(ph_))
    grid_w = sampling_ratio if sampling_ratio > 0 else adaptive_grid(roi_w / t(pw_))
    return int(roi[0]), start_h, start_w, bin_h, bin_w, grid_h, grid_w


def adaptive_grid(cells_per_bin):
    """ceil(cells_per_bin) samples per bin side, or 0 beyond GRID_MAX (or not finite)."""
    c = np.ceil(cells_per_bin)
    return int(c) if np.isfinite(c) and abs(c) <= GRID_MAX else 0


def sample_coordinate(start, p, bin_size, i, grid):
    """Coordinate of sample i of bin p: the centres of ``grid`` equal slices of the bin."""
    t = type(start)
    return start + t(p) * bin_size + t(i + 0.5) * bin_size / t(grid)


def roi_geometry_arrays(rois, dtype, spatial_scale, ph_, pw_, sampling_ratio, aligned):
    """:func:`roi_geometry` for all RoIs at once (arrays of length K), plus count (K,) dtype."""
    t = np.dtype(dtype).type
    offset = t(0.5) if aligned else t(0)
    s = t(spatial_scale)
    start_w, start_h = rois[:, 1] * s - offset, rois[:, 2] * s - offset
    roi_w, roi_h = (rois[:, 3] * s - offset) - start_w, (rois[:, 4] * s - offset) - start_h
    if not aligned:
        roi_w, roi_h = np.maximum(roi_w, t(1)), np.maximum(roi_h, t(1))
    bin_h, bin_w = roi_h / t(ph_), roi_w / t(pw_)
    k = len(rois)
    if sampling_ratio > 0:
        grid_h = np.full(k, sampling_ratio, np.int64)
        grid_w = np.full(k, sampling_ratio, np.int64)
    else:
        grid_h, grid_w = (np.ceil(v / t(p)) for v, p in ((roi_h, ph_), (roi_w, pw_)))
        grid_h, grid_w = (np.where(np.isfinite(v) & (np.abs(v) <= GRID_MAX), v, 0).astype(np.int64)
                          for v in (grid_h, grid_w))
    count = np.maximum(grid_h * grid_w, 1).astype(dtype)
    return (rois[:, 0].astype(np.int64), start_h, start_w, bin_h, bin_w, grid_h, grid_w, count)


def sample_axes(geo, idx, ph_, pw_, gh, gw, h, w):
    """Bilinear factors of the samples of RoIs ``idx`` (all with grid gh x gw), per axis.

    Returns y factors (each (k, PH, gh)) and x factors (each (k, PW, gw)).
    """
    _, start_h, start_w, bin_h, bin_w = (a[idx] for a in geo[:5])
    t = start_h.dtype.type
    pys, pxs = np.arange(ph_).astype(start_h.dtype), np.arange(pw_).astype(start_h.dtype)
    iys = (np.arange(gh) + 0.5).astype(start_h.dtype)
    ixs = (np.arange(gw) + 0.5).astype(start_h.dtype)
    ys = ((start_h[:, None, None] + pys[None, :, None] * bin_h[:, None, None])
          + iys[None, None, :] * bin_h[:, None, None] / t(gh))
    xs = ((start_w[:, None, None] + pxs[None, :, None] * bin_w[:, None, None])
          + ixs[None, None, :] * bin_w[:, None, None] / t(gw))
    return bilinear_axis(ys, h), bilinear_axis(xs, w)


def grid_groups(geo):
    """RoI indices grouped by their (grid_h, grid_w); RoIs without samples are left out."""
    gh, gw = geo[5], geo[6]
    ok = (gh > 0) & (gw > 0)
    pairs = np.unique(np.stack([gh[ok], gw[ok]], 1), axis=0) if ok.any() else []
    for a, b in pairs:
        yield int(a), int(b), np.nonzero(ok & (gh == a) & (gw == b))[0]
