"""Configuration: frozen dataclasses, passed as values, and the named presets.

Every ablation knob of the paper is a plain field: ``roi_heads.roi_op`` ("roipool" |
"roiwarp" | "roialign", and TensorFlow's "crop_and_resize" beside them) and
``roi_heads.aggregation`` (Table 2c/d), ``mask_head.loss``
("sigmoid" | "softmax", Table 2b), ``mask_head.class_agnostic``, ``mask_head.kind``
("fcn" | "mlp", Table 2e), ``architecture`` ("fpn" | "c4" | "c5", Table 2a/d) and
``backbone.layers`` (depth), plus ``mask_on`` and ``keypoint_on`` (§5) for the branches.
The model reads its config once, when it is built (``mask_rcnn.build_rpn``,
``build_roi_heads``); every module and function below it receives the numbers it needs,
never the whole config.

Presets (``PRESETS[name]`` or :func:`preset`):
    r50_fpn / r101_fpn / x101_fpn   torchvision-compatible, the paper's sizes (COCO: 91 classes)
    r50_c4                          the paper's C4 model: RPN and RoI pooling on res4 (stride 16),
                                    res5 as the RoI head, 14 x 14 masks
    teaching                        a small GroupNorm ResNet-FPN for 128-px images that trains
                                    from scratch on a laptop CPU in minutes
    teaching_keypoints              teaching + the keypoint branch (§5) for the synthetic stick
                                    figures (2 classes, 13 keypoints, mask branch on)
Use ``dataclasses.replace`` to change a field, e.g.
``replace(preset("teaching"), num_classes=6)`` or
``with_fields(cfg, roi_op="roipool")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from .backbone import RESNET50, RESNET101, RESNEXT101_32X8D, BackboneConfig
from .transform import IMAGENET_MEAN, IMAGENET_STD

FPN_ANCHOR_SIZES = ((32,), (64,), (128,), (256,), (512,))


@dataclass(frozen=True)
class TransformConfig:
    min_size: tuple = (800,)          # training picks one at random; inference uses the last
    max_size: int = 1333
    image_mean: tuple = IMAGENET_MEAN
    image_std: tuple = IMAGENET_STD
    size_divisible: int = 32


@dataclass(frozen=True)
class RPNConfig:
    anchor_sizes: tuple = FPN_ANCHOR_SIZES      # one tuple per level (C4: one level)
    aspect_ratios: tuple = (0.5, 1.0, 2.0)      # height / width, the same on every level
    pre_nms_top_n_train: int = 2000             # per level
    pre_nms_top_n_test: int = 1000
    post_nms_top_n_train: int = 2000            # per image
    post_nms_top_n_test: int = 1000
    nms_thresh: float = 0.7
    fg_iou_thresh: float = 0.7
    bg_iou_thresh: float = 0.3
    batch_size_per_image: int = 256
    positive_fraction: float = 0.5
    score_thresh: float = 0.0


@dataclass(frozen=True)
class RoIHeadsConfig:
    roi_op: str = "roialign"          # "roialign" | "roiwarp" | "roipool" | "crop_and_resize" (Table 2c)
    aggregation: str | None = None    # "avg" | "max"; None: avg for RoIAlign, max otherwise (crop_and_resize: None only)
    aligned: bool = False             # torchvision's detection models use the legacy False
    sampling_ratio: int = 2
    box_pool_size: int = 7            # FPN / C5 box head input (C4: res5 reads mask_head.pool_size)
    representation_size: int = 1024
    box_conv_layers: tuple = ()       # () : the paper's 2-fc head; else 3x3 convs then one fc (ConvFCHead)
    box_norm: str | None = None       # norm of those convs: None or "gn"
    fg_iou_thresh: float = 0.5
    bg_iou_thresh: float = 0.5
    batch_size_per_image: int = 512   # paper: 512 (FPN) / 64 (C4) RoIs per image
    positive_fraction: float = 0.25   # 1:3
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_img: int = 100


@dataclass(frozen=True)
class MaskHeadConfig:
    kind: str = "fcn"                 # "fcn" | "mlp"                       (Table 2e)
    pool_size: int = 14
    conv_layers: tuple = (256, 256, 256, 256)
    dim_reduced: int = 256
    mlp_hidden: tuple = (1024, 1024)
    resolution: int = 28              # FCN: 2 * pool_size (the deconvolution doubles it)
    loss: str = "sigmoid"             # "sigmoid" | "softmax"               (Table 2b)
    class_agnostic: bool = False
    norm: str | None = None           # None (paper) or "gn" (training from scratch)


@dataclass(frozen=True)
class KeypointHeadConfig:
    """The keypoint branch (paper §5; used when ``MaskRCNNConfig.keypoint_on``).

    Field names carry a ``keypoint_`` prefix so ``with_fields(cfg, conv_layers=...)`` stays
    unambiguous (it means the mask head). The heatmaps are ``4 * keypoint_pool_size`` wide
    (14 -> deconv 28 -> 2x bilinear 56).
    """

    num_keypoints: int = 17                    # COCO person keypoints
    keypoint_pool_size: int = 14               # RoIAlign output size
    keypoint_layers: tuple = (512,) * 8        # 3x3 convs of the head (the paper: eight of 512)
    keypoint_norm: str | None = None           # None (paper) or "gn" (training from scratch)

    @property
    def heatmap_size(self) -> int:
        return 4 * self.keypoint_pool_size


@dataclass(frozen=True)
class MaskRCNNConfig:
    num_classes: int = 91             # including background (COCO ids as torchvision)
    architecture: str = "fpn"         # "fpn" | "c4" (Table 2a) | "c5" (Table 2d: RPN and RoIs on res5,
                                      # stride 32, with the FPN-style heads)
    backbone: BackboneConfig = RESNET50
    fpn_channels: int = 256
    transform: TransformConfig = field(default_factory=TransformConfig)
    rpn: RPNConfig = field(default_factory=RPNConfig)
    roi_heads: RoIHeadsConfig = field(default_factory=RoIHeadsConfig)
    mask_head: MaskHeadConfig = field(default_factory=MaskHeadConfig)
    mask_on: bool = True
    keypoint_on: bool = False         # the keypoint branch of §5 (with mask_on: trained jointly, Table 4)
    keypoint_head: KeypointHeadConfig = field(default_factory=KeypointHeadConfig)
    # Where the backbone body starts (detection/pretrained.py): "scratch" (random init, the
    # default), "pretrained" (the body file shipped in mrcnn_np/weights/ for this body config)
    # or the path of a body file written by ``python -m mrcnn_np pretrain``. Read by the
    # training loop when a run starts; building a model never reads a file.
    backbone_init: str = "scratch"
    # Body layers kept fixed in training (Detectron's FREEZE_AT): 0 none, 1 the stem,
    # 2 the stem and res2 (the paper's fine-tuning setting), k the stem and k - 1 stages.
    freeze_at: int = 0

    def __post_init__(self):
        if isinstance(self.keypoint_head, dict):  # read back from JSON (asdict): lists -> tuples
            object.__setattr__(self, "keypoint_head", KeypointHeadConfig(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in self.keypoint_head.items()}))
        kh = self.keypoint_head
        if kh.num_keypoints < 1 or kh.keypoint_pool_size < 1 or not kh.keypoint_layers:
            raise ValueError(f"keypoint_head needs num_keypoints >= 1, keypoint_pool_size >= 1 and at least "
                             f"one conv layer, got {kh}")
        if kh.keypoint_norm not in (None, "gn"):
            raise ValueError(f"keypoint_head.keypoint_norm must be None or 'gn', got {kh.keypoint_norm!r}")
        if self.architecture not in ("fpn", "c4", "c5"):
            raise ValueError(f"architecture must be 'fpn', 'c4' or 'c5', got {self.architecture!r}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes counts the background and must be >= 2, got {self.num_classes}")
        if self.roi_heads.roi_op not in ("roialign", "roiwarp", "roipool", "crop_and_resize"):
            raise ValueError(f"roi_op must be 'roialign', 'roiwarp', 'roipool' or 'crop_and_resize', "
                             f"got {self.roi_heads.roi_op!r}")
        if self.roi_heads.roi_op == "crop_and_resize" and self.roi_heads.aggregation is not None:
            raise ValueError("roi_heads.aggregation must be None with roi_op='crop_and_resize' (one sample "
                             f"per output cell, nothing to aggregate), got {self.roi_heads.aggregation!r}")
        if self.mask_head.kind not in ("fcn", "mlp"):
            raise ValueError(f"mask_head.kind must be 'fcn' or 'mlp', got {self.mask_head.kind!r}")
        if self.mask_head.loss not in ("sigmoid", "softmax"):
            raise ValueError(f"mask_head.loss must be 'sigmoid' or 'softmax', got {self.mask_head.loss!r}")
        if not isinstance(self.backbone_init, str) or not self.backbone_init:
            raise ValueError(f"backbone_init must be 'scratch', 'pretrained' or a path, got {self.backbone_init!r}")
        body_stages = 3 if self.architecture == "c4" else len(self.backbone.layers)
        if isinstance(self.freeze_at, bool) or not isinstance(self.freeze_at, int) \
                or not 0 <= self.freeze_at <= body_stages + 1:
            raise ValueError(f"freeze_at must be an integer in 0..{body_stages + 1} (the stem and the "
                             f"{body_stages} stages of the body), got {self.freeze_at!r}")
        if self.mask_head.loss == "softmax" and self.mask_head.class_agnostic:
            raise ValueError("the softmax mask loss needs per-class masks (class_agnostic=False)")


def _c4(backbone):
    return MaskRCNNConfig(
        architecture="c4", backbone=backbone,
        rpn=RPNConfig(anchor_sizes=((32, 64, 128, 256, 512),), pre_nms_top_n_train=12000,
                      pre_nms_top_n_test=6000, post_nms_top_n_train=2000, post_nms_top_n_test=1000),
        roi_heads=RoIHeadsConfig(batch_size_per_image=64),
        mask_head=MaskHeadConfig(resolution=14))


TEACHING = MaskRCNNConfig(
    num_classes=6,
    backbone=BackboneConfig(block="basic", layers=(1, 1, 1, 1), width=16, stem_channels=16,
                            stem_kernel=3, norm="gn", gn_groups=8),
    fpn_channels=64,
    transform=TransformConfig(min_size=(128,), max_size=128),
    rpn=RPNConfig(anchor_sizes=((8,), (16,), (32,), (64,), (128,)), pre_nms_top_n_train=600,
                  pre_nms_top_n_test=300, post_nms_top_n_train=300, post_nms_top_n_test=150),
    roi_heads=RoIHeadsConfig(representation_size=256, batch_size_per_image=64, detections_per_img=50),
    # The mask branch runs on every positive RoI at 14 x 14 and dominated the step at 64
    # channels (38-45 % of it, bench/profile_train_step.py); at 32 the step is ~40 % faster,
    # and sampling 64 RoIs per image (not 128) makes RoI pooling and the box head cheaper.
    mask_head=MaskHeadConfig(conv_layers=(32, 32, 32, 32), dim_reduced=32, mlp_hidden=(128, 128), norm="gn"),
)

# The teaching model with a keypoint branch for the stick figures of datasets/keypoints.py
# (one class, 13 keypoints); the mask branch stays on (joint training, Table 4). It keeps
# the teaching preset's earlier heads (64-channel mask convs for thin limbs, 128 RoIs per
# image), with which results/keypoints_table4 was made.
TEACHING_KEYPOINTS = replace(
    TEACHING, num_classes=2, keypoint_on=True,
    roi_heads=replace(TEACHING.roi_heads, batch_size_per_image=128),
    mask_head=replace(TEACHING.mask_head, conv_layers=(64, 64, 64, 64), dim_reduced=64, mlp_hidden=(256, 256)),
    keypoint_head=KeypointHeadConfig(num_keypoints=13, keypoint_layers=(64,) * 8, keypoint_norm="gn"))

PRESETS = {
    "teaching": TEACHING,
    "teaching_keypoints": TEACHING_KEYPOINTS,
    "r50_fpn": MaskRCNNConfig(backbone=RESNET50),
    "r101_fpn": MaskRCNNConfig(backbone=RESNET101),
    "x101_fpn": MaskRCNNConfig(backbone=RESNEXT101_32X8D),
    "r50_c4": _c4(RESNET50),
}


def preset(name: str) -> MaskRCNNConfig:
    """The named preset (see the module docstring)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]


def with_fields(cfg: MaskRCNNConfig, **changes) -> MaskRCNNConfig:
    """Change fields anywhere in the config by name, e.g. ``roi_op="roipool"``,
    ``loss="softmax"`` (mask head), ``num_classes=6``. A name that exists in two
    sub-configs must be written as ``"sub.name"`` (e.g. ``"rpn.nms_thresh"``)."""
    subs = {f.name: getattr(cfg, f.name) for f in fields(cfg)
            if hasattr(getattr(cfg, f.name), "__dataclass_fields__")}
    top, nested = {}, {}
    for key, value in changes.items():
        if "." in key:
            sub, name = key.split(".", 1)
            if sub not in subs or name not in subs[sub].__dataclass_fields__:
                raise ValueError(f"no config field {key!r}")
            nested.setdefault(sub, {})[name] = value
            continue
        if key in cfg.__dataclass_fields__ and key not in subs:
            top[key] = value
            continue
        owners = [s for s, obj in subs.items() if key in obj.__dataclass_fields__]
        if len(owners) != 1:
            raise ValueError(f"config field {key!r} is {'ambiguous: ' + str(owners) if owners else 'unknown'}"
                             f"; write it as 'sub.{key}'")
        nested.setdefault(owners[0], {})[key] = value
    for sub, vals in nested.items():
        top[sub] = replace(subs[sub], **vals)
    return replace(cfg, **top)
