"""GPU benchmark: our CUDA kernels (CuPy) against torchvision / cuDNN on the same GPU.

    python -m bench.bench_gpu

Times, on one GPU and the same inputs, interleaved round by round:
  * RoIAlign forward and backward (Mask R-CNN box-head size: 512 RoIs, 256 channels,
    7x7 bins, sampling_ratio 2, on a 1/4-scale FPN level) -- kernels/roi_align.cu vs
    torchvision.ops.roi_align;
  * a 3x3 convolution forward and backward (ResNet stage 2 size) -- im2col.cu + cuBLAS
    GEMM (+ col2im.cu) vs torch.nn.functional.conv2d (cuDNN).
Without a CUDA GPU, CuPy or torch with CUDA it prints why and exits 0 (nothing to measure:
the CPU host shim is for checking the kernels, not for speed).
"""

from __future__ import annotations

import sys

import numpy as np

from bench.common import compare, print_table


def _skip_reason() -> str | None:
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() == 0:
            return "CuPy sees no CUDA device"
    except ImportError:
        return "CuPy is not installed (pip install mrcnn_np[gpu])"
    except Exception as e:  # driver / runtime errors
        return f"CUDA is not usable: {e}"
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError:
        return "torch/torchvision are not installed (pip install mrcnn_np[reference])"
    if not torch.cuda.is_available():
        return "torch was built without CUDA or sees no GPU"
    return None


def main() -> int:
    reason = _skip_reason()
    if reason is not None:
        print(f"bench_gpu: SKIPPED -- {reason}. Nothing to measure without a GPU.")
        return 0

    import cupy as cp
    import torch
    import torch.nn.functional as F
    import torchvision

    from mrcnn_np import gpu

    def synced(fn):
        def run():
            fn()
            cp.cuda.get_current_stream().synchronize()
            torch.cuda.synchronize()
        return run

    rng = np.random.default_rng(0)
    print(f"GPU: {torch.cuda.get_device_name()}  cupy {cp.__version__}  torch {torch.__version__}")
    rows = []

    # ---- RoIAlign: box head of an FPN level with stride 4
    x = rng.standard_normal((2, 256, 200, 272)).astype(np.float32)
    xy = rng.uniform(0, 700, (512, 2))
    wh = rng.uniform(8, 300, (512, 2))
    rois = np.concatenate([rng.integers(0, 2, (512, 1)), xy, xy + wh], 1).astype(np.float32)
    g = rng.standard_normal((512, 256, 7, 7)).astype(np.float32)
    xc, rc, gc = cp.asarray(x), cp.asarray(rois), cp.asarray(g)
    xt, rt, gt = (torch.from_numpy(a).cuda() for a in (x, rois, g))
    ours_out = cp.asnumpy(gpu.roi_align(xc, rc, 7, 0.25, 2))
    ref_out = torchvision.ops.roi_align(xt, rt, 7, 0.25, 2).cpu().numpy()
    err = float(np.abs(ours_out - ref_out).max())

    def tv_backward():
        xg = xt.detach().requires_grad_(True)
        torchvision.ops.roi_align(xg, rt, 7, 0.25, 2).backward(gt)

    t = compare({"ours": synced(lambda: gpu.roi_align(xc, rc, 7, 0.25, 2)),
                 "torchvision": synced(lambda: torchvision.ops.roi_align(xt, rt, 7, 0.25, 2))})
    rows.append(dict(op="roi_align fwd 512x256x7x7", ours_ms=1e3 * t["ours"],
                     torch_ms=1e3 * t["torchvision"], ratio=t["ours"] / t["torchvision"],
                     max_abs_err=err))
    t = compare({"ours": synced(lambda: gpu.roi_align_backward(gc, rc, x.shape, 7, 0.25, 2)),
                 "torchvision": synced(tv_backward)})   # torch's time includes its forward
    rows.append(dict(op="roi_align bwd (torch: fwd+bwd)", ours_ms=1e3 * t["ours"],
                     torch_ms=1e3 * t["torchvision"], ratio=t["ours"] / t["torchvision"]))

    # ---- 3x3 convolution, ResNet stage-2 size
    x = rng.standard_normal((4, 64, 112, 112)).astype(np.float32)
    w = (0.05 * rng.standard_normal((64, 64, 3, 3))).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    xc, wc, bc = cp.asarray(x), cp.asarray(w), cp.asarray(b)
    xt, wt, bt = (torch.from_numpy(a).cuda() for a in (x, w, b))
    err = float(np.abs(cp.asnumpy(gpu.conv2d_forward(xc, wc, bc, 1, 1))
                       - F.conv2d(xt, wt, bt, 1, 1).cpu().numpy()).max())
    gc = cp.asarray(rng.standard_normal((4, 64, 112, 112)).astype(np.float32))
    gt = torch.as_tensor(cp.asnumpy(gc)).cuda()

    def torch_conv_backward():
        xg, wg = xt.detach().requires_grad_(True), wt.detach().requires_grad_(True)
        F.conv2d(xg, wg, bt, 1, 1).backward(gt)

    t = compare({"ours": synced(lambda: gpu.conv2d_forward(xc, wc, bc, 1, 1)),
                 "torch": synced(lambda: F.conv2d(xt, wt, bt, 1, 1))})
    rows.append(dict(op="conv3x3 fwd 4x64x112x112", ours_ms=1e3 * t["ours"],
                     torch_ms=1e3 * t["torch"], ratio=t["ours"] / t["torch"], max_abs_err=err))
    t = compare({"ours": synced(lambda: gpu.conv2d_backward(gc, xc, wc, 1, 1)),
                 "torch": synced(torch_conv_backward)})
    rows.append(dict(op="conv3x3 bwd (torch: fwd+bwd)", ours_ms=1e3 * t["ours"],
                     torch_ms=1e3 * t["torch"], ratio=t["ours"] / t["torch"]))

    print_table(rows, ["op", "ours_ms", "torch_ms", "ratio", "max_abs_err"])
    print("ratio = ours / torch (median of 7 interleaved runs); < 1 means ours is faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
