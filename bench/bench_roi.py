"""Benchmark: RoIAlign / RoIPool / RoIWarp (numba) vs torchvision's CPU ops.

Set-up of an FPN P2 level: a 1 x 256 x 200 x 272 float32 map (stride 4 of an 800 x 1088
image, spatial_scale 0.25), 512 RoIs spread over the image with log-uniform sides of
16..400 px, 7 x 7 (box head) and 14 x 14 (mask head) outputs, sampling ratio 2. Same
process, same inputs, calls interleaved; outputs are checked to agree before timing.
torchvision's CPU RoI kernels are single-threaded; ours use all numba threads (the
"threads" column), so the ratio includes the parallel speed-up. torchvision has no
RoIWarp: its row is timed against torchvision's roi_align on the same (rounded) boxes.

    .venv/bin/python -m bench.bench_roi
"""

from __future__ import annotations

import numba
import numpy as np

from bench.common import compare, machine_report, print_table  # noqa: E402

from mrcnn_np.ops import (quantize_rois, roi_align, roi_align_backward, roi_pool,  # noqa: E402
                          roi_pool_backward, roi_warp)


def make_rois(k, rng, image=(1088, 800)):
    size = np.exp(rng.uniform(np.log(16), np.log(400), (k, 2)))
    centre = rng.uniform(0, image, (k, 2))
    lo = np.clip(centre - size / 2, 0, image)
    hi = np.clip(centre + size / 2, 0, image)
    return np.concatenate([np.zeros((k, 1)), lo, hi], axis=1).astype(np.float32)


def main():
    import torch
    import torchvision
    torch.set_num_threads(1)  # the CPU RoI kernels are single-threaded anyway
    ops = torch.ops.torchvision
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 256, 200, 272)).astype(np.float32)
    rois = make_rois(512, rng)
    xt, rt = torch.from_numpy(x), torch.from_numpy(rois)
    scale, sr = 0.25, 2
    # compile (or load the cache) outside the timing
    tiny = np.zeros((1, 1, 4, 4), np.float32)
    small_rois = np.array([[0, 0, 0, 2, 2]], np.float32)
    roi_align(tiny, small_rois, 2)
    roi_align_backward(np.zeros((1, 1, 2, 2), np.float32), small_rois, tiny.shape, 2)
    _, am = roi_pool(tiny, small_rois, 2, return_argmax=True)
    roi_pool_backward(np.zeros((1, 1, 2, 2), np.float32), small_rois, tiny.shape, 2, argmax=am)

    rows = []
    for p in (7, 14):
        g = rng.standard_normal((len(rois), 256, p, p)).astype(np.float32)
        gt = torch.from_numpy(g)
        cases = {}
        # RoIAlign forward / backward
        cases["roi_align fwd"] = (
            lambda: roi_align(x, rois, p, scale, sr),
            lambda: ops.roi_align(xt, rt, scale, p, p, sr, False).numpy())
        cases["roi_align bwd"] = (
            lambda: roi_align_backward(g, rois, x.shape, p, scale, sr),
            lambda: ops._roi_align_backward(gt, rt, scale, p, p, 1, 256, 200, 272, sr,
                                            False).numpy())
        # RoIPool forward / backward (argmax from the forward of each side)
        _, am_ours = roi_pool(x, rois, p, scale, return_argmax=True)
        _, am_tv = ops.roi_pool(xt, rt, scale, p, p)
        cases["roi_pool fwd"] = (
            lambda: roi_pool(x, rois, p, scale),
            lambda: ops.roi_pool(xt, rt, scale, p, p)[0].numpy())
        cases["roi_pool bwd"] = (
            lambda: roi_pool_backward(g, rois, x.shape, p, scale, argmax=am_ours),
            lambda: ops._roi_pool_backward(gt, rt, am_tv, scale, p, p, 1, 256, 200,
                                           272).numpy())
        q = torch.from_numpy(quantize_rois(rois, scale))
        cases["roi_warp fwd (avg)"] = (
            lambda: roi_warp(x, rois, p, scale, sr, aggregation="avg"),
            lambda: ops.roi_align(xt, q, 1.0, p, p, sr, False).numpy())
        for name, (ours, theirs) in cases.items():
            a, b = ours(), theirs()
            err = float(np.abs(a - b).max())
            t = compare({"ours": ours, "torchvision": theirs}, repeat=3, warmup=0)
            rows.append({"op": name, "output": f"{p}x{p}", "ours ms": 1e3 * t["ours"],
                         "torchvision ms": 1e3 * t["torchvision"],
                         "speed-up": t["torchvision"] / t["ours"], "max |diff|": f"{err:.1e}",
                         "threads": numba.get_num_threads()})
    print("RoI ops, 1x256x200x272 float32, 512 RoIs (16..400 px), spatial_scale 0.25, "
          "sampling_ratio 2")
    print_table(rows, ["op", "output", "ours ms", "torchvision ms", "speed-up", "max |diff|",
                       "threads"])
    print()
    print(machine_report())


if __name__ == "__main__":
    main()
