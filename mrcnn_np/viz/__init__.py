"""Matplotlib drawings used by the notebooks and the CLI.

Each function draws onto a matplotlib ``Axes`` passed in (or creates one) and returns it,
so a notebook can compose figures. Nothing here computes model results: callers pass
arrays produced by the package.

Modules: instances, geometry (anchors, matching, NMS), roi_ops, model (intermediates),
training (curves, errors), ablation (the tables of notebooks 12-16); every public function
is available as ``mrcnn_np.viz.NAME``.
"""

from .instances import instance_colours, overlay_masks, draw_instances, show_samples  # noqa: F401
from .geometry import draw_anchors, draw_matches, draw_nms_step  # noqa: F401
from .roi_ops import draw_roi_op, draw_feature_gradient  # noqa: F401
from .model import draw_level_maps, draw_heatmap, draw_box_sets, draw_mask_target  # noqa: F401
from .training import plot_losses, draw_errors  # noqa: F401
from .ablation import plot_ablation, compare_variants, format_comparison  # noqa: F401
from .keypoints import draw_skeletons, draw_keypoints, draw_keypoint_target  # noqa: F401

__all__ = ['instance_colours', 'overlay_masks', 'draw_instances', 'show_samples', 'draw_anchors', 'draw_matches', 'draw_nms_step', 'draw_roi_op', 'draw_feature_gradient', 'draw_level_maps', 'draw_heatmap', 'draw_box_sets', 'draw_mask_target', 'plot_losses', 'draw_errors', 'plot_ablation', 'compare_variants', 'format_comparison']
