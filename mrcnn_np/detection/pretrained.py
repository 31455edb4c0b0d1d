"""Pretrained backbone bodies: the classifier they are trained in, their files, loading, freezing.

The paper fine-tunes Mask R-CNN from an ImageNet-pretrained ResNet and keeps the first
layers fixed. Here a body is pretrained on ``datasets/pretrain_shapes.py`` as
``BodyClassifier`` (the detection model's ``ResNet`` body, global average pooling, one fc
layer; ``engine/pretrain.py`` trains it), and its weights are written as

    <prefix>.npz   the body's state dict (``conv1.weight``, ``layer1.0.conv1.weight``, ...)
                   and the classifier's ``fc.weight``, ``fc.bias`` (so the recorded top-1 can
                   be checked: ``load_classifier``), read with allow_pickle=False
    <prefix>.json  format, body_config (``BackboneConfig`` fields), classes, top-1, iterations,
                   seed, command, git commit, ...

A Mask R-CNN starts from them when ``MaskRCNNConfig.backbone_init`` is not "scratch":
"pretrained" means the file shipped in ``mrcnn_np/weights/`` whose body config equals the
model's (``shipped_weights``), anything else is the path of a body file. The training loop
(``engine/train.py``) loads them into a fresh model (``load_pretrained_backbone``); a model
built from a config never reads them, so saved weights and checkpoints load without them.
Where the body's arrays go depends on the architecture:

    fpn   backbone.body.<key>       every stage
    c5    backbone.<key>            every stage
    c4    backbone.<key>            stem, layer1..layer3;  layer4.* -> roi_heads.res5.*
                                    (res5 is the C4 model's box head, ``box_head.Res5Head``)

``MaskRCNNConfig.freeze_at`` keeps the first layers fixed during training, as Detectron's
``FREEZE_AT`` (torchvision's ``trainable_layers`` counts the other way): 0 freezes nothing,
1 the stem (conv1 and its norm), 2 the stem and layer1 (res2, the paper's setting), k the
stem and layer1..layer(k-1). ``freeze_backbone`` sets ``requires_grad = False`` on those
parameters: no gradient reaches them and SGD skips them (no update, no weight decay).

Shapes::

    N images, K classes;  BodyClassifier.forward((N, 3, S, S)) -> logits (N, K)
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from ..autodiff import functional as F
from ..autodiff import nn
from .._checks import file_pair
from .backbone import BackboneConfig, ResNet

BODY_FORMAT = "mrcnn_np-pretrained-body"
# Body files shipped with the package (``pip install`` includes them: pyproject.toml package-data).
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


class BodyClassifier(nn.Module):
    """A ResNet body (all its stages), global average pooling of its last map, one fc layer.

    ``cfg`` is the body's ``BackboneConfig`` (what a checkpoint records as its model config).
    """

    def __init__(self, cfg: BackboneConfig, num_classes: int, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.cfg = cfg
        self.body = ResNet(cfg, num_stages=len(cfg.layers), rng=rng)
        self.fc = nn.Linear(self.body.out_channels[-1], num_classes, rng=rng)

    def forward(self, x):
        return self.fc(F.mean(self.body(x)[-1], axis=(2, 3)))


def body_config_dict(cfg: BackboneConfig) -> dict:
    """A body config as JSON stores it (tuples become lists)."""
    return json.loads(json.dumps(asdict(cfg)))


def save_body(classifier: BodyClassifier, prefix, info: dict) -> Path:
    """Write ``prefix.npz`` (the body's state dict and the fc layer) and ``prefix.json``
    (``info`` + format and body config), each atomically; the JSON is written second, so it
    marks a complete pair."""
    import os  # noqa: PLC0415

    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    body = classifier.body
    arrays = {k: np.asarray(v) for k, v in body.state_dict().items()}
    arrays.update({f"fc.{k}": np.asarray(v) for k, v in classifier.fc.state_dict().items()})
    tmp = prefix.with_name(prefix.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, prefix.with_suffix(".npz"))
    doc = dict(info, format=BODY_FORMAT, body_config=body_config_dict(body.cfg), num_stages=body.num_stages)
    tmp = prefix.with_name(prefix.name + ".tmp.json")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, prefix.with_suffix(".json"))
    return prefix


def read_body(path) -> tuple:
    """(arrays {key: array}, info dict) of a body file (prefix, .npz or .json).
    ValueError naming the file when it is missing, unreadable or not a body file."""
    js, npz = file_pair(path, "pretrained body file")
    try:
        info = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{js}: not a pretrained body JSON ({e})") from None
    if not isinstance(info, dict) or info.get("format") != BODY_FORMAT or not isinstance(info.get("body_config"), dict):
        raise ValueError(f"{js}: not a pretrained body file (needs 'format': '{BODY_FORMAT}' and 'body_config')")
    try:
        with np.load(npz, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # noqa: BLE001 - zip, CRC, pickle refusal: all one "unreadable file"
        raise ValueError(f"{npz}: unreadable .npz ({type(e).__name__}: {e})") from None
    return arrays, info


def load_classifier(path) -> BodyClassifier:
    """The ``BodyClassifier`` saved at ``path`` (body and fc layer), in eval mode."""
    arrays, info = read_body(path)
    cfg = BackboneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in info["body_config"].items()})
    model = BodyClassifier(cfg, len(info.get("classes", [])) or arrays["fc.bias"].shape[0])
    try:
        model.load_state_dict({(k if k.startswith("fc.") else "body." + k): v for k, v in arrays.items()})
    except ValueError as e:
        raise ValueError(f"{path}: does not fit its body config ({e})") from None
    return model.eval()


def shipped_weights(cfg: BackboneConfig, folder=None) -> Path:
    """The prefix of the body file in ``folder`` (default: the package's weights/) pretrained
    for exactly this body config; ValueError when none is there."""
    folder = Path(WEIGHTS_DIR if folder is None else folder)
    want = body_config_dict(cfg)
    for js in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            info = json.loads(js.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(info, dict) and info.get("format") == BODY_FORMAT and info.get("body_config") == want:
            return js.with_suffix("")
    raise ValueError(f"{folder}: no pretrained weights for the body {want} are shipped; pretrain them "
                     f"(python -m mrcnn_np pretrain, docs/PRETRAINING.md) and pass their path")


def backbone_weights_path(model_cfg, folder=None):
    """The body file ``model_cfg.backbone_init`` names (a prefix Path), or None for "scratch"."""
    init = model_cfg.backbone_init
    if init == "scratch":
        return None
    if init == "pretrained":
        return shipped_weights(model_cfg.backbone, folder)
    return Path(init)


def body_keys(model) -> dict:
    """{body file key: the model's state-dict key} for a MaskRCNN (see the module docstring)."""
    arch = model.cfg.architecture
    own = model.state_dict()
    out = {}
    for key in own:
        if arch == "fpn" and key.startswith("backbone.body."):
            out[key[len("backbone.body."):]] = key
        elif arch in ("c4", "c5") and key.startswith("backbone."):
            out[key[len("backbone."):]] = key
        elif arch == "c4" and key.startswith("roi_heads.res5."):
            out["layer4." + key[len("roi_heads.res5."):]] = key
    return out


def load_pretrained_backbone(model, path) -> list:
    """Copy the body file at ``path`` into ``model``'s backbone body (the rest is untouched).

    Refuses, with one ValueError line naming the file and the first mismatch, a body config
    that differs from the model's, and a missing key or an array of another shape.
    Returns the model's state-dict keys that were loaded.
    """
    arrays, info = read_body(path)
    js = Path(path).with_suffix("") if Path(path).suffix in (".npz", ".json") else Path(path)
    js = js.with_suffix(".json")
    want = body_config_dict(model.cfg.backbone)
    have = info["body_config"]
    for f in fields(BackboneConfig):
        if have.get(f.name) != want.get(f.name):
            raise ValueError(f"{js}: the pretrained body does not fit the model: body_config.{f.name} is "
                             f"{have.get(f.name)!r} in the file, {want.get(f.name)!r} in the model")
    own = model.state_dict()
    targets = body_keys(model)
    for src, dst in targets.items():
        if src not in arrays:
            raise ValueError(f"{js.with_suffix('.npz')}: the pretrained body has no array {src!r} "
                             f"(the model's {dst}); {len(arrays)} arrays in the file")
        if tuple(arrays[src].shape) != tuple(own[dst].shape):
            raise ValueError(f"{js.with_suffix('.npz')}: {src} has shape {tuple(arrays[src].shape)} in the file "
                             f"but {tuple(own[dst].shape)} in the model ({dst})")
    model.load_state_dict({dst: arrays[src] for src, dst in targets.items()}, strict=False)
    return list(targets.values())


def frozen_modules(model, freeze_at: int) -> list:
    """The body modules that ``freeze_at`` keeps fixed (see the module docstring), in order."""
    body = model.backbone.body if model.cfg.architecture == "fpn" else model.backbone
    mods = [body.conv1, body.bn1] if freeze_at >= 1 else []
    for s in range(1, freeze_at):
        mods.append(getattr(body, f"layer{s}"))
    return mods


def freeze_backbone(model, freeze_at: int) -> None:
    """Keep the stem and the first ``freeze_at - 1`` stages of ``model``'s body fixed."""
    for m in frozen_modules(model, freeze_at):
        m.requires_grad_(False)


__all__ = ["BODY_FORMAT", "WEIGHTS_DIR", "BodyClassifier", "backbone_weights_path", "body_config_dict",
           "body_keys", "freeze_backbone", "frozen_modules", "load_classifier", "load_pretrained_backbone", "read_body",
           "save_body", "shipped_weights"]
