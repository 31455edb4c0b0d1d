"""Generic, torchvision-compatible ops: boxes, NMS, RoI pooling, masks.

Signatures follow ``torchvision.ops`` so that a user can swap one for the other and a
test can compare the two directly. This package knows nothing of Mask R-CNN itself.
"""

# --- geometry: boxes, box coding, NMS (ops/boxes.py, ops/nms.py) ---

# --- RoI ops: RoIPool, RoIWarp, RoIAlign (ops/roi_*.py) ---

# --- masks: mask targets and pasting (ops/masks.py) ---
