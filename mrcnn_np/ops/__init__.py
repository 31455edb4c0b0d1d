"""Generic, torchvision-compatible ops: boxes, NMS, RoI pooling, masks.

Signatures follow ``torchvision.ops`` so that a user can swap one for the other and a
test can compare the two directly. This package knows nothing of Mask R-CNN itself.
"""

# --- which twin runs: impl="reference" | "numpy" | "numba" | "cupy" (ops/dispatch.py) ---
from .dispatch import IMPLS, resolve_impl  # noqa: E402,F401

# --- geometry: boxes, box coding, NMS (ops/boxes.py, ops/nms.py) ---
from .boxes import (BoxCoder, box_area, box_convert, box_iou, clip_boxes_to_image,  # noqa: E402,F401
                    remove_small_boxes)
from .nms import batched_nms, nms  # noqa: E402,F401

# --- RoI ops: RoIPool, RoIWarp, RoIAlign (ops/roi_*.py), TF's crop_and_resize ---
from .crop_and_resize import (crop_and_resize, crop_and_resize_backward,  # noqa: E402,F401
                              crop_and_resize_tf)
from .roi_align import roi_align, roi_align_backward  # noqa: E402,F401
from .roi_pool import roi_pool, roi_pool_backward  # noqa: E402,F401
from .roi_warp import quantize_rois, roi_warp, roi_warp_backward  # noqa: E402,F401

# --- masks: mask targets and pasting (ops/masks.py) ---
from .masks import masks_to_boxes, paste_masks_in_image, project_masks_on_boxes  # noqa: E402,F401
