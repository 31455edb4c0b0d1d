"""Whole-model benchmarks, ours against torchvision in one run on the same inputs.

1. R50-FPN Mask R-CNN inference on one 800 x 1066 image: torchvision's
   ``maskrcnn_resnet50_fpn`` (random weights, eval, 2 threads) and ours with the same
   weights. Target: ours at most 2x torchvision's time, peak memory at most 4 GB. Each
   side runs in its own subprocess so that its peak resident memory can be read alone.
2. The ``teaching`` preset: forward + backward time of one training step on a batch of
   four 128 x 128 shapes images.

    python -m bench.bench_model            # both parts
    python -m bench.bench_model --quick    # fewer repeats
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

H, W = 800, 1066


def _image():
    import numpy as np
    from mrcnn_np.datasets.shapes import random_scene
    from mrcnn_np.detection.transform import resize_image
    from mrcnn_np.engine.data import to_model_image
    img = to_model_image(random_scene(0, 256)["image"])
    return np.clip(resize_image(img, (H, W)), 0, 1).astype(np.float32)


def _tv_model():
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    torch.manual_seed(0)
    return maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()


def child(side: str, repeat: int) -> None:
    """Run one side's inference ``repeat`` times; print JSON with times and peak RSS."""
    import resource

    import torch

    from bench.common import timings
    torch.set_num_threads(2)
    img = _image()
    tv = _tv_model()
    times = []
    if side == "torchvision":
        x = [torch.from_numpy(img)]
        with torch.no_grad():
            times = timings(lambda: tv(x), repeat + 1, warmup=0)
            n = len(tv(x)[0]["boxes"])
    else:
        from mrcnn_np.detection.convert import convert_state_dict, torchvision_config
        from mrcnn_np.detection.mask_rcnn import MaskRCNN
        model = MaskRCNN(torchvision_config(frozen_bn_eps=1e-5))
        model.load_state_dict(convert_state_dict(tv.state_dict()))
        del tv
        times = timings(lambda: model.predict([img]), repeat + 1, warmup=0)
        n = len(model.predict([img])[0]["boxes"])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times[1:], "first": times[0], "peak_mb": peak_mb, "detections": n}))


def run_child(side, repeat):
    out = subprocess.run([sys.executable, "-m", "bench.bench_model", "--child", side, "--repeat", str(repeat)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def teaching_step(repeat):
    import statistics

    from bench.common import timed
    from mrcnn_np.datasets.shapes import random_scene
    from mrcnn_np.detection.config import preset, with_fields
    from mrcnn_np.detection.mask_rcnn import MaskRCNN, total_loss
    from mrcnn_np.engine.data import to_model_image
    model = MaskRCNN(with_fields(preset("teaching"), num_classes=6), seed=0)
    imgs, tgts = [], []
    for i in range(4):
        s = random_scene(i, 128)
        imgs.append(to_model_image(s["image"]))
        tgts.append({"boxes": s["boxes"], "labels": s["labels"], "masks": s["masks"]})

    def backward(loss):
        loss.backward()
        model.zero_grad()

    fwd, bwd = [], []
    for i in range(repeat + 2):
        loss, t_fwd = timed(lambda: total_loss(model(imgs, tgts)))
        _, t_bwd = timed(backward, loss)
        if i >= 2:                       # the first steps compile numba kernels
            fwd.append(t_fwd)
            bwd.append(t_bwd)
    return statistics.median(fwd), statistics.median(bwd), model.num_parameters()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return
    from bench.common import machine_report
    repeat = 1 if args.quick else args.repeat
    import statistics
    print(machine_report())
    print(f"\n== R50-FPN Mask R-CNN inference, one {H}x{W} image (random weights) ==")
    res = {side: run_child(side, repeat) for side in ("torchvision", "mrcnn_np")}
    for side, r in res.items():
        print(f"{side:12s} median {statistics.median(r['times']):7.3f} s  (first call {r['first']:.3f} s)  "
              f"peak RSS {r['peak_mb']:7.0f} MB  detections {r['detections']}")
    ratio = statistics.median(res["mrcnn_np"]["times"]) / statistics.median(res["torchvision"]["times"])
    print(f"time ratio ours / torchvision: {ratio:.2f}  (target <= 2)")
    print(f"our peak memory: {res['mrcnn_np']['peak_mb'] / 1024:.2f} GB  (target <= 4 GB)")

    print("\n== teaching preset: one training step, batch of 4 128x128 images ==")
    f, b, n = teaching_step(3 if args.quick else 10)
    print(f"parameters {n:,}; forward {f * 1000:.0f} ms, backward {b * 1000:.0f} ms, "
          f"step {(f + b) * 1000:.0f} ms (median)")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
