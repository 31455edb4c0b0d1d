"""Convolution speed: mrcnn_np (im2col + GEMM, numba) against torch on the CPU.

Same process, same inputs, alternating blocks of calls (see ``compare_blocks``). Two sections:
ResNet-50 layer shapes at 800x1088 (batch 1) and the teaching model's small shapes
(batch 4, 32-64 channels, 32x32 to 8x8 maps). Forward = conv output; backward = input,
weight and bias gradients from a given output gradient. Ratios > 1 mean we are slower.

    python -m bench.bench_conv            # torch.set_num_threads(2)
    python -m bench.bench_conv --quick    # fewer repeats
"""

from __future__ import annotations

import os

# torch's OpenMP threads otherwise keep spinning after each call and steal the 2 cores
# from NumPy's BLAS and numba threads that run next; set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from bench.common import machine_report, print_table  # noqa: E402

from mrcnn_np.autodiff.conv import conv2d_backward, conv2d_forward  # noqa: E402

# name, N, C, H, W, O, k, stride, pad, groups
LARGE = [
    ("stem 7x7/2 3->64", 1, 3, 800, 1088, 64, 7, 2, 3, 1),
    ("3x3 64->64", 1, 64, 200, 272, 64, 3, 1, 1, 1),
    ("1x1 256->64", 1, 256, 200, 272, 64, 1, 1, 0, 1),
    ("3x3 g32 256->256", 1, 256, 100, 136, 256, 3, 1, 1, 32),
]
SMALL = [
    ("3x3 32->32 @32", 4, 32, 32, 32, 32, 3, 1, 1, 1),
    ("3x3 64->64 @16", 4, 64, 16, 16, 64, 3, 1, 1, 1),
    ("3x3/2 32->64 @32", 4, 32, 32, 32, 64, 3, 2, 1, 1),
    ("1x1 64->64 @16", 4, 64, 16, 16, 64, 1, 1, 0, 1),
    ("3x3 64->64 @8", 4, 64, 8, 8, 64, 3, 1, 1, 1),
]


def compare_blocks(fns: dict, repeat: int, blocks: int = 5) -> dict:
    """Time per callable: the median over alternating blocks of each block's fastest call.

    Not interleaved call by call: torch's OpenMP pool and NumPy's OpenBLAS pool both spin
    for a while after each call, and alternating single calls between two spinning pools on
    2 cores makes every call wait for the other pool (small layers then take ~100 ms on
    both sides). Blocks (with a warm-up call each) let the other pool fall asleep first,
    while alternation still spreads bursts of machine load over both sides. The machine is
    shared, so a block's minimum is the least disturbed measurement of that block.
    """
    times = {k: [] for k in fns}
    for _ in range(blocks):
        for k, fn in fns.items():
            fn()
            block = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                block.append(time.perf_counter() - t0)
            times[k].append(min(block))
    return {k: statistics.median(v) for k, v in times.items()}


def run(section, repeat):
    import torch
    rows = []
    rng = np.random.default_rng(0)
    for name, N, C, H, W, O, k, s, p, g in section:
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = (rng.standard_normal((O, C // g, k, k)) * 0.05).astype(np.float32)
        b = rng.standard_normal(O).astype(np.float32)
        out, cache = conv2d_forward(x, w, b, s, p, 1, g)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        tdout = torch.from_numpy(dout)

        def ours_fwd():
            conv2d_forward(x, w, b, s, p, 1, g)

        def ours_bwd():
            conv2d_backward(dout, cache)

        def torch_fwd():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, s, p, 1, g)

        tout = torch.nn.functional.conv2d(tx, tw, tb, s, p, 1, g)

        def torch_bwd():
            torch.autograd.grad(tout, (tx, tw, tb), tdout, retain_graph=True)

        t = compare_blocks({"ours_fwd": ours_fwd, "torch_fwd": torch_fwd}, repeat=repeat)
        tb_ = compare_blocks({"ours_bwd": ours_bwd, "torch_bwd": torch_bwd}, repeat=repeat)
        rows.append({"layer": name, "ours fwd ms": 1e3 * t["ours_fwd"], "torch fwd ms": 1e3 * t["torch_fwd"],
                     "fwd ratio": t["ours_fwd"] / t["torch_fwd"],
                     "ours bwd ms": 1e3 * tb_["ours_bwd"], "torch bwd ms": 1e3 * tb_["torch_bwd"],
                     "bwd ratio": tb_["ours_bwd"] / tb_["torch_bwd"]})
    cols = ["layer", "ours fwd ms", "torch fwd ms", "fwd ratio", "ours bwd ms", "torch bwd ms", "bwd ratio"]
    print_table(rows, cols)
    f = statistics.median(r["fwd ratio"] for r in rows)
    bw = statistics.median(r["bwd ratio"] for r in rows)
    print(f"median ratio: forward {f:.2f}x, backward {bw:.2f}x")
    return f, bw


def main():
    import torch
    torch.set_num_threads(2)
    quick = "--quick" in sys.argv
    print(machine_report())
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print("\nResNet-50 layers at 800x1088, batch 1 (targets: forward <= 2x, backward <= 2.5x torch)")
    run(LARGE, 1 if quick else 2)
    print("\nTeaching-model shapes, batch 4")
    run(SMALL, 5 if quick else 15)


if __name__ == "__main__":
    main()
