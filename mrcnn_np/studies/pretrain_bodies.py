"""The backbone bodies that ``python -m mrcnn_np pretrain --body NAME`` knows, by name.

Every preset's body under the preset's name (``teaching`` is also the body of the
teaching_keypoints preset and of the C4 and C5 models of the ablation tables: C4 runs its
first three stages as the backbone and its fourth as the box head, ``detection/pretrained.py``),
plus ``teaching_deeper``: the deeper body of the depth ablation (``ablation_backbone``,
three times the res4 blocks). The paper-size bodies (r50 ...) are accepted but far too slow
to pretrain on a CPU.
"""

from __future__ import annotations

from dataclasses import replace

from mrcnn_np.detection.config import PRESETS
from mrcnn_np.studies.ablation_backbone import DEEPER_LAYERS

BODIES = {**{name: cfg.backbone for name, cfg in PRESETS.items()},
          "teaching_deeper": replace(PRESETS["teaching"].backbone, layers=DEEPER_LAYERS)}


def body_config(name: str):
    """The ``BackboneConfig`` named ``name``; ValueError listing the names otherwise."""
    if name not in BODIES:
        raise ValueError(f"unknown body {name!r}; choose from {sorted(BODIES)}")
    return BODIES[name]


__all__ = ["BODIES", "body_config"]
