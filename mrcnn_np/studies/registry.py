"""Every study by name, each a short declarative module on the runner (``runner.Study``).

    demo                  python -m mrcnn_np demo (make demo): train the teaching preset, COCO AP, a figure
    roi, mask_loss, mask_head, backbone, mask_resolution, multitask
                          python -m mrcnn_np ablate TABLE: the paper's Tables 2 and 3 at teaching scale
    keypoints             python -m mrcnn_np keypoints: Table 4, keypoint-only vs keypoint & mask
    pretrain_effect_<s>   python -m mrcnn_np pretrain-effect S: scratch vs pretrained body, S in PRETRAIN_SETTINGS

A module holds one ``STUDY``, or several in a ``STUDIES`` dict keyed by name.

The study modules are imported on first use (a worker process imports only its own).
"""

from __future__ import annotations

import importlib

ABLATION_TABLES = ("roi", "mask_loss", "mask_head", "backbone", "mask_resolution", "multitask")
PRETRAIN_SETTINGS = ("demo", "rotated", "c4")
MODULES = {"demo": "mrcnn_np.studies.demo", **{t: f"mrcnn_np.studies.ablation_{t}" for t in ABLATION_TABLES},
           "keypoints": "mrcnn_np.studies.keypoints_table4",
           **{f"pretrain_effect_{s}": "mrcnn_np.studies.pretrain_effect" for s in PRETRAIN_SETTINGS}}


def get_study(name: str):
    """The ``Study`` called ``name``; a ValueError naming the choices for any other name."""
    if name not in MODULES:
        raise ValueError(f"unknown study {name!r}; choose from {list(MODULES)}")
    module = importlib.import_module(MODULES[name])
    return module.STUDIES[name] if hasattr(module, "STUDIES") else module.STUDY


def get_table(name: str):
    """One of the ablation tables (a ``Study``)."""
    if name not in ABLATION_TABLES:
        raise ValueError(f"unknown ablation table {name!r}; choose from {list(ABLATION_TABLES)}")
    return get_study(name)


__all__ = ["ABLATION_TABLES", "MODULES", "PRETRAIN_SETTINGS", "get_study", "get_table"]
