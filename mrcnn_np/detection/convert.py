"""torchvision ``maskrcnn_resnet50_fpn`` weights -> mrcnn_np weights (``.npz`` + JSON).

Our parameter names are torchvision's (``backbone.body.layer1.0.conv1.weight``,
``rpn.head.conv.0.0.weight``, ``roi_heads.mask_predictor.conv5_mask.weight``, ...), so a
conversion only drops what we do not use (batch norm's ``num_batches_tracked``) and turns
tensors into float32 arrays. Weights are saved as an ``.npz`` (read back with
``allow_pickle=False``) plus a JSON file with the config, so nothing a user loads can run
code.

Using torchvision's COCO weights in NumPy (download the ``.pth`` elsewhere; this package
never downloads anything)::

    python -m mrcnn_np.detection.convert maskrcnn_resnet50_fpn_coco.pth out/r50_fpn
    # reads the .pth with torch (only this script needs torch), writes out/r50_fpn.npz/.json

    model = load_model("out/r50_fpn")            # MaskRCNN in NumPy
    detections = model.predict([image_chw_float_in_0_1])

torchvision's COCO_V1 detection weights use frozen batch norm with eps = 0.0
(docs/REFERENCE.md §12); ``convert_state_dict`` records that in the config.
Without torch here, export the state_dict to ``.npz`` on a machine that has torch::

    python -m mrcnn_np.detection.convert --export-npz weights.pth weights.npz

and convert that ``.npz`` (no torch needed) as above.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from dataclasses import asdict, replace

import numpy as np

from .backbone import BackboneConfig
from .config import (MaskHeadConfig, MaskRCNNConfig, RoIHeadsConfig, RPNConfig, TransformConfig, preset)

_SKIP_SUFFIXES = ("num_batches_tracked",)


def convert_state_dict(state) -> dict:
    """Mapping name -> array (torch tensors or arrays) -> our float32 arrays (names kept)."""
    out = {}
    for name, value in state.items():
        if name.endswith(_SKIP_SUFFIXES):
            continue
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        out[name] = arr.astype(np.float32)
    return out


def read_state_dict(path) -> dict:
    """A state_dict from a torch ``.pth`` (needs torch) or an exported ``.npz`` (no pickle)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    try:
        import torch  # noqa: PLC0415  (only the converter may import torch)
    except ImportError as e:
        raise RuntimeError(f"reading {path} needs torch; export it to .npz instead (see module doc)") from e
    state = torch.load(path, map_location="cpu", weights_only=True)   # tensors only, no code
    return state.get("model", state) if isinstance(state, dict) else state


def _config_to_json(cfg: MaskRCNNConfig) -> str:
    return json.dumps(asdict(cfg), indent=1)


def config_from_dict(d: dict) -> MaskRCNNConfig:
    """Inverse of ``dataclasses.asdict`` for MaskRCNNConfig (lists back to tuples)."""
    def tup(v):
        return tuple(tup(x) for x in v) if isinstance(v, list) else v
    sub = {"backbone": BackboneConfig, "transform": TransformConfig, "rpn": RPNConfig,
           "roi_heads": RoIHeadsConfig, "mask_head": MaskHeadConfig}
    kw = {}
    for k, v in d.items():
        if k in sub:
            kw[k] = sub[k](**{kk: tup(vv) for kk, vv in v.items()})
        else:
            kw[k] = tup(v)
    return MaskRCNNConfig(**kw)


def save_weights(model, path) -> None:
    """Write ``path.npz`` (arrays) and ``path.json`` (config), each atomically (temp + rename)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **{k: np.asarray(v) for k, v in model.state_dict().items()})
    os.replace(tmp, path.with_suffix(".npz"))
    tmp = path.with_name(path.name + ".tmp.json")
    tmp.write_text(_config_to_json(model.cfg))
    os.replace(tmp, path.with_suffix(".json"))


def load_model(path, seed: int = 0):
    """A MaskRCNN built from ``path.json`` with the arrays of ``path.npz``."""
    from .mask_rcnn import MaskRCNN  # noqa: PLC0415  (avoid an import cycle)
    path = pathlib.Path(path)
    for suffix in (".json", ".npz"):
        if not path.with_suffix(suffix).exists():
            raise FileNotFoundError(f"no such file: {path.with_suffix(suffix)}")
    try:
        cfg = config_from_dict(json.loads(path.with_suffix(".json").read_text()))
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{path.with_suffix('.json')}: not a mrcnn_np config ({e})") from e
    model = MaskRCNN(cfg, seed=seed)
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as f:
        model.load_state_dict({k: f[k] for k in f.files})
    return model.eval()


def torchvision_config(num_classes=91, frozen_bn_eps=0.0, **transform) -> MaskRCNNConfig:
    """The config matching torchvision's ``maskrcnn_resnet50_fpn`` (COCO_V1 weights: eps 0)."""
    cfg = preset("r50_fpn")
    cfg = replace(cfg, num_classes=num_classes, backbone=replace(cfg.backbone, frozen_bn_eps=frozen_bn_eps))
    if transform:
        cfg = replace(cfg, transform=replace(cfg.transform, **transform))
    return cfg


def export_npz(pth_path, npz_path) -> int:
    """Write a torch ``.pth`` state_dict as a plain ``.npz`` (needs torch); returns the array count."""
    state = convert_state_dict(read_state_dict(pth_path))
    np.savez(npz_path, **state)
    return len(state)


USAGE = ("usage: python -m mrcnn_np.detection.convert WEIGHTS.pth|WEIGHTS.npz OUT_PREFIX\n"
         "       python -m mrcnn_np.detection.convert --export-npz WEIGHTS.pth OUT.npz")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 3 and argv[0] == "--export-npz":
        n = export_npz(argv[1], argv[2])
        print(f"wrote {argv[2]} ({n} arrays)")
        return 0
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    from .mask_rcnn import MaskRCNN  # noqa: PLC0415
    try:
        state = convert_state_dict(read_state_dict(argv[0]))
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    model = MaskRCNN(torchvision_config())
    model.load_state_dict(state)
    save_weights(model, argv[1])
    print(f"wrote {argv[1]}.npz and {argv[1]}.json ({len(state)} arrays)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
