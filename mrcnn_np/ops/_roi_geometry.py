"""RoIAlign's geometry: where each RoI's bins and sample points lie (docs/REFERENCE.md section 8.1).

Shared by the three RoIAlign implementations, RoIWarp (RoIAlign on a rounded box) and the
drawings. ``roi_geometry`` is the one-RoI form the loops read; ``roi_geometry_arrays`` the
same numbers for all RoIs at once.
"""

from __future__ import annotations

import numpy as np


def roi_geometry(roi, t, spatial_scale, ph_, pw_, sampling_ratio, aligned):
    """One RoI's layout: (batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w), dtype ``t``."""
    offset = t(0.5) if aligned else t(0)
    s = t(spatial_scale)
    start_w, start_h = roi[1] * s - offset, roi[2] * s - offset
    roi_w, roi_h = (roi[3] * s - offset) - start_w, (roi[4] * s - offset) - start_h
    if not aligned:  # legacy: force malformed RoIs to 1 x 1
        roi_w, roi_h = max(roi_w, t(1)), max(roi_h, t(1))
    bin_h, bin_w = roi_h / t(ph_), roi_w / t(pw_)
    grid_h = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_h / t(ph_)))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_w / t(pw_)))
    return int(roi[0]), start_h, start_w, bin_h, bin_w, grid_h, grid_w


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
        grid_h = np.ceil(roi_h / t(ph_)).astype(np.int64)
        grid_w = np.ceil(roi_w / t(pw_)).astype(np.int64)
    count = np.maximum(grid_h * grid_w, 1).astype(dtype)
    return (rois[:, 0].astype(np.int64), start_h, start_w, bin_h, bin_w, grid_h, grid_w, count)
