"""Matplotlib drawings used by the notebooks and the CLI.

Each function draws onto a matplotlib ``Axes`` passed in (or creates one) and returns it,
so a notebook can compose figures. Nothing here computes model results: callers pass
arrays produced by the package.
"""

from __future__ import annotations

import numpy as np

# --- images, instances (boxes, masks, class names) ---

# --- anchors, matching, NMS ---

# --- RoI ops: RoIPool / RoIWarp / RoIAlign sampling grids ---
