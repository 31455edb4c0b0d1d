"""Training-step speed of the ``teaching`` preset: ours against the same architecture
built from torchvision's modules, in one run, on the same batches and the same weights.

The torch model is torchvision's ``MaskRCNN`` with a GroupNorm ResNet body and FPN of the
teaching sizes, its anchor generator, heads and sampling settings set to the preset's
values; our initial weights are loaded into it by name (the names are torchvision's), so
both start from the same point. Each step is forward + backward + SGD update on a batch
of four 128 x 128 shapes images. Target (issue 22): ours at most 0.6x torch's time. It
also prints the step's FLOPs, the GFLOP/s each side achieves and a GEMM peak measured
in the same run.

    python -m bench.bench_train_step [--steps 20] [--threads 1]

``--threads`` sets numba's and the BLAS's threads for our side (1 avoids the stalls
that multi-threaded BLAS/numba suffer on a busy 2-core machine); ``--torch-threads`` the
same for torch (default 2).
"""

from __future__ import annotations

import argparse
import os
import pathlib
from collections import OrderedDict

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]

# numba's default threading layer here is OpenMP, the same libgomp torch runs on: once numba
# has set its thread count, torch's steps took 3-5 s instead of ~0.17 s (measured, one
# process, both on 1 thread). The workqueue layer shares nothing with torch. It must be
# chosen before numba starts its threads; our side runs serial kernels either way.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")


def torch_teaching_model(cfg):
    import torch
    from torch import nn
    from torchvision.models.detection import MaskRCNN as TvMaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.models.resnet import BasicBlock
    from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    b = cfg.backbone

    def gn(c):
        return nn.GroupNorm(min(b.gn_groups, c), c)

    class Body(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, b.stem_channels, b.stem_kernel, 2, (b.stem_kernel - 1) // 2, bias=False)
            self.bn1 = gn(b.stem_channels)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = b.stem_channels
            for s, n in enumerate(b.layers):
                planes, stride = b.width * 2**s, 1 if s == 0 else 2
                blocks = []
                for i in range(n):
                    st = stride if i == 0 else 1
                    down = None
                    if st != 1 or cin != planes:
                        down = nn.Sequential(nn.Conv2d(cin, planes, 1, st, bias=False), gn(planes))
                    blocks.append(BasicBlock(cin, planes, st, down, norm_layer=gn))
                    cin = planes
                setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            out = OrderedDict()
            for s in range(len(b.layers)):
                x = getattr(self, f"layer{s + 1}")(x)
                out[str(s)] = x
            return out

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = Body()
            self.fpn = FeaturePyramidNetwork(list(b.stage_channels()), cfg.fpn_channels, LastLevelMaxPool())
            self.out_channels = cfg.fpn_channels

        def forward(self, x):
            return self.fpn(self.body(x))

    r, rh, mh, c, k = cfg.rpn, cfg.roi_heads, cfg.mask_head, cfg.fpn_channels, cfg.num_classes
    names = ["0", "1", "2", "3"]
    return TvMaskRCNN(
        Backbone(), num_classes=None, min_size=cfg.transform.min_size, max_size=cfg.transform.max_size,
        rpn_anchor_generator=AnchorGenerator(r.anchor_sizes, (r.aspect_ratios,) * len(r.anchor_sizes)),
        rpn_pre_nms_top_n_train=r.pre_nms_top_n_train, rpn_pre_nms_top_n_test=r.pre_nms_top_n_test,
        rpn_post_nms_top_n_train=r.post_nms_top_n_train, rpn_post_nms_top_n_test=r.post_nms_top_n_test,
        box_roi_pool=MultiScaleRoIAlign(names, rh.box_pool_size, rh.sampling_ratio),
        box_head=TwoMLPHead(c * rh.box_pool_size ** 2, rh.representation_size),
        box_predictor=FastRCNNPredictor(rh.representation_size, k),
        box_batch_size_per_image=rh.batch_size_per_image, box_detections_per_img=rh.detections_per_img,
        mask_roi_pool=MultiScaleRoIAlign(names, mh.pool_size, rh.sampling_ratio),
        mask_head=MaskRCNNHeads(c, mh.conv_layers, 1, norm_layer=lambda ch: nn.GroupNorm(32, ch)),
        mask_predictor=MaskRCNNPredictor(mh.conv_layers[-1], mh.dim_reduced, k))


def batches(n, seed=0):
    from mrcnn_np.datasets.shapes import random_scene
    from mrcnn_np.engine.data import to_model_image
    out = []
    for b in range(n):
        imgs, tgts = [], []
        for i in range(4):
            s = random_scene(seed + 4 * b + i, 128)
            imgs.append(to_model_image(s["image"]))
            tgts.append({"boxes": s["boxes"], "labels": s["labels"], "masks": s["masks"]})
        out.append((imgs, tgts))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="numba + BLAS threads for our side")
    ap.add_argument("--torch-threads", type=int, default=2)
    args = ap.parse_args()

    import numba
    import torch
    from threadpoolctl import threadpool_limits

    from bench.common import blas_kernel, compare, gemm_gflops, machine_report
    from mrcnn_np.autodiff.optim import SGD
    from mrcnn_np.detection.config import preset, with_fields
    from mrcnn_np.detection.mask_rcnn import MaskRCNN, total_loss
    from mrcnn_np.memory import keep_freed_memory

    keep_freed_memory()           # as the training processes run (mrcnn_np.memory)
    print(machine_report())
    cfg = with_fields(preset("teaching"), num_classes=6)
    ours = MaskRCNN(cfg, seed=0)
    tv = torch_teaching_model(cfg)
    missing, unexpected = tv.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()},
                                             strict=False)
    print(f"torch model: {sum(p.numel() for p in tv.parameters()):,} parameters; ours "
          f"{ours.num_parameters():,}; weights copied by name (missing {len(missing)}, unexpected {len(unexpected)})")
    tv.train()
    torch.set_num_threads(args.torch_threads)
    opt_t = torch.optim.SGD(tv.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    opt_o = SGD(ours.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    data = batches(args.steps + 3)

    def step_torch(imgs, tgts):
        tt = [{k: torch.from_numpy(np.asarray(v)) for k, v in t.items()} for t in tgts]
        losses = tv([torch.from_numpy(i) for i in imgs], tt)
        loss = sum(losses.values())
        opt_t.zero_grad()
        loss.backward()
        opt_t.step()
        return float(loss.detach())

    def step_ours(imgs, tgts):
        out = ours(imgs, tgts)
        loss = total_loss(out)
        opt_o.zero_grad()
        loss.backward()
        opt_o.step()
        return float(loss.data)

    numba.set_num_threads(args.threads)
    with threadpool_limits(args.threads, "blas"):  # warm-up: numba compiles, allocator settles
        med = compare({"torch": step_torch, "mrcnn_np": step_ours}, repeat=args.steps, warmup=3, inputs=data)
    print(f"\nteaching preset, batch 4 x 128 x 128, forward + backward + SGD, median of {args.steps} steps")
    print(f"torch ({args.torch_threads} thread{'s' if args.torch_threads > 1 else ''})"
          f"{' ' * (20 - len(str(args.torch_threads)))}{med['torch'] * 1000:7.1f} ms/step")
    print(f"mrcnn_np ({args.threads} thread{'s' if args.threads > 1 else ''})"
          f"{' ' * (17 - len(str(args.threads)))}{med['mrcnn_np'] * 1000:7.1f} ms/step")
    print(f"ratio ours / torch: {med['mrcnn_np'] / med['torch']:.2f}  (target <= 0.6, issue 22)")

    # How far from the machine's limit: the step's matrix-product work (convolutions, fc
    # layers, forward and backward) counted by torch's FLOP counter on one more step of the
    # twin (same architecture and batch size; the RoI samples differ a little per batch),
    # against a GEMM measured now with our thread count.
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        step_torch(*data[-1])
    flops = counter.get_total_flops()
    with threadpool_limits(args.threads, "blas"):
        peak = gemm_gflops()
    print(f"\nwork per step: {flops / 1e9:.2f} GFLOP (matrix products, forward + backward, "
          f"torch.utils.flop_counter)")
    for name, sec in med.items():
        print(f"{name:<12} {flops / sec / 1e9:6.1f} GFLOP/s achieved")
    print(f"GEMM peak, 1024^3 float32 on {args.threads} thread(s), measured now: {peak:.1f} GFLOP/s "
          f"-> compute limit {flops / peak / 1e6:.1f} ms/step; BLAS kernel {blas_kernel()}")


if __name__ == "__main__":
    main()
