"""Benchmark: mrcnn_np.ops.nms (numba) vs torchvision.ops.nms on the CPU.

Same process, same inputs, calls interleaved. "clustered" inputs imitate detector output:
jittered copies of boxes around random object centres (so NMS suppresses a good
fraction), random scores. "scattered" inputs (boxes of every size anywhere) are the
worst case for our spatial pruning and are reported too. Checks that the kept indices
are identical before timing.

    .venv/bin/python -m bench.bench_nms
"""

from __future__ import annotations

import sys

import numpy as np

from bench.common import compare, machine_report, print_table  # noqa: E402

from mrcnn_np.ops import nms  # noqa: E402


def clustered_boxes(n, rng, image=1000.0, per_object=20):
    """n boxes: n // per_object objects, each seen as jittered copies of its box."""
    objects = max(n // per_object, 1)
    centres = rng.uniform(0, image, (objects, 2))
    sizes = rng.uniform(20, 100, (objects, 2))
    k = rng.integers(0, objects, n)
    c = centres[k] + rng.normal(0, 8, (n, 2))
    wh = sizes[k] * rng.uniform(0.8, 1.2, (n, 2))
    boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1).astype(np.float32)
    return boxes, rng.random(n).astype(np.float32)


def scattered_boxes(n, rng, image=1000.0):
    """n boxes of every size (log-uniform 8..800 px) anywhere: little spatial locality,
    the hard case for our x-sweep pruning (a big box overlaps almost everything)."""
    xy = rng.uniform(0, image, (n, 2))
    wh = np.exp(rng.uniform(np.log(8), np.log(800), (n, 2)))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32), rng.random(n).astype(np.float32)


def main():
    import torch
    import torchvision
    torch.set_num_threads(1)  # torchvision's CPU nms is single-threaded; ours too
    rng = np.random.default_rng(0)
    nms(*clustered_boxes(100, rng), 0.5)  # compile (or load the cache) outside the timing
    rows = []
    cases = [("clustered", n, clustered_boxes) for n in (1000, 5000, 20000)]
    cases += [("scattered", n, scattered_boxes) for n in (5000, 20000)]
    for scene, n, make in cases:
        boxes, scores = make(n, rng)
        tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
        for thr in (0.7, 0.5):
            ours = nms(boxes, scores, thr)
            theirs = torchvision.ops.nms(tb, ts, thr).numpy()
            same = np.array_equal(ours, theirs)
            repeat = 7 if n < 20000 else 3
            t = compare({"ours": lambda: nms(boxes, scores, thr),
                         "tv": lambda: torchvision.ops.nms(tb, ts, thr)}, repeat=repeat)
            rows.append({"scene": scene, "boxes": n, "iou": thr, "kept": len(ours), "identical": same,
                         "numba ms": t["ours"] * 1e3, "torchvision ms": t["tv"] * 1e3,
                         "speed-up": t["tv"] / t["ours"]})
            if not same:
                print(f"MISMATCH at n={n}, iou={thr}", file=sys.stderr)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__} (1 thread)")
    print_table(rows, ["scene", "boxes", "iou", "kept", "identical", "numba ms", "torchvision ms", "speed-up"])
    print(machine_report())
    if not all(r["identical"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
