"""The kernel table: every CUDA entry point, its source file and its argument types.

This table is the single description of each kernel's signature. Both launchers read it:
the CuPy launcher (:mod:`mrcnn_np.gpu.launch`) casts Python scalars to the NumPy scalar
types it names, and the host shim (:mod:`mrcnn_np.gpu.shim`) generates its C++ launcher
wrappers and ``ctypes`` argument types from it. A kernel whose signature changes is edited
here once, so the two paths cannot drift apart; the tests compile every kernel through the
shim, so a mismatch between this table and a ``.cu`` file fails to compile.

Argument types (C spelling in the kernel, with ``scalar_t`` = float or double, chosen per
call from the input dtype):

    "i64"        const long long       flat sizes (element counts can exceed 2**31)
    "i32"        const int             shapes, flags
    "scalar"     const scalar_t        real-valued scalars (spatial_scale)
    "f64"        const double          a scalar that stays double (NMS's IoU threshold)
    "cptr"       const scalar_t*       read-only float array
    "ptr"        scalar_t*             written float array
    "cptr_i32"   const int*            read-only int32 array
    "ptr_i32"    int*                  written int32 array
    "ptr_u64"    unsigned long long*   written uint64 array (NMS bit masks)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

C_TYPES = {
    "i64": "const long long",
    "i32": "const int",
    "scalar": "const scalar_t",
    "f64": "const double",
    "cptr": "const scalar_t*",
    "ptr": "scalar_t*",
    "cptr_i32": "const int*",
    "ptr_i32": "int*",
    "ptr_u64": "unsigned long long*",
}
POINTER_TYPES = ("cptr", "ptr", "cptr_i32", "ptr_i32", "ptr_u64")


@dataclass(frozen=True)
class KernelSpec:
    """One ``extern "C" __global__`` entry point.

    name: the C function name; file: its source in kernels/;
    args: ((argument name, type code), ...) in the C parameter order.
    """
    name: str
    file: str
    args: tuple


_SHAPE = (("channels", "i32"), ("height", "i32"), ("width", "i32"))
_CONV = (("kernel_h", "i32"), ("kernel_w", "i32"), ("stride_h", "i32"), ("stride_w", "i32"),
         ("pad_h", "i32"), ("pad_w", "i32"), ("dilation_h", "i32"), ("dilation_w", "i32"),
         ("row_begin", "i32"), ("out_h", "i32"), ("out_w", "i32"))
_POOLED = (("pooled_h", "i32"), ("pooled_w", "i32"))

KERNELS = {k.name: k for k in (
    KernelSpec("im2col_kernel", "im2col.cu",
               (("total", "i64"), ("x", "cptr"), *_SHAPE, *_CONV, ("cols", "ptr"))),
    KernelSpec("col2im_kernel", "col2im.cu",
               (("total", "i64"), ("cols", "cptr"), *_SHAPE, *_CONV, ("accumulate", "i32"),
                ("dx", "ptr"))),
    KernelSpec("roi_align_forward_kernel", "roi_align.cu",
               (("total", "i64"), ("input", "cptr"), ("spatial_scale", "scalar"), *_SHAPE,
                *_POOLED, ("sampling_ratio", "i32"), ("aligned", "i32"), ("use_max", "i32"),
                ("rois", "cptr"), ("output", "ptr"), ("argmax", "ptr_i32"))),
    KernelSpec("roi_align_backward_kernel", "roi_align.cu",
               (("total", "i64"), ("grad_output", "cptr"), ("spatial_scale", "scalar"),
                *_SHAPE, *_POOLED, ("sampling_ratio", "i32"), ("aligned", "i32"),
                ("use_max", "i32"), ("rois", "cptr"), ("argmax", "cptr_i32"),
                ("grad_input", "ptr"))),
    KernelSpec("roi_pool_forward_kernel", "roi_pool.cu",
               (("total", "i64"), ("input", "cptr"), ("spatial_scale", "scalar"), *_SHAPE,
                *_POOLED, ("rois", "cptr"), ("output", "ptr"), ("argmax", "ptr_i32"))),
    KernelSpec("roi_pool_backward_kernel", "roi_pool.cu",
               (("total", "i64"), ("grad_output", "cptr"), *_SHAPE, *_POOLED,
                ("rois", "cptr"), ("argmax", "cptr_i32"), ("grad_input", "ptr"))),
    KernelSpec("nms_mask_kernel", "nms.cu",
               (("total", "i64"), ("boxes", "cptr"), ("n_boxes", "i32"), ("col_blocks", "i32"),
                ("iou_threshold", "f64"), ("mask", "ptr_u64"))),
)}

SOURCE_FILES = sorted({k.file for k in KERNELS.values()})
SHIM_HEADER = "host_shim.h"


def kernel_dir() -> Path:
    """The directory holding the ``.cu`` files and ``host_shim.h``.

    Looked up in order: ``$MRCNN_NP_KERNELS_DIR``; ``mrcnn_np/gpu/kernels`` (in a checkout a
    symlink to the top-level ``kernels/``, in an installed wheel a real directory: the build
    copies the sources there, see ``[tool.setuptools.package-data]`` in pyproject.toml);
    the checkout's top-level ``kernels/`` (for checkouts where the symlink was not kept).
    """
    here = Path(__file__).resolve().parent
    env = os.environ.get("MRCNN_NP_KERNELS_DIR")
    candidates = [Path(env)] if env else []
    candidates += [here / "kernels", here.parents[1] / "kernels"]
    for d in candidates:
        if (d / "roi_align.cu").is_file():
            return d
    raise FileNotFoundError("CUDA kernel sources not found; looked in "
                            + ", ".join(str(d) for d in candidates))


def read_source(file: str) -> str:
    """Text of one kernel source file (or of host_shim.h)."""
    return (kernel_dir() / file).read_text()


def function_source(file: str, name: str) -> str:
    """The text of function ``name`` in kernel ``file``, from its comment block to its ``}``.

    For reading a kernel next to its Python twin (notebook 07); finds the first definition
    whose signature line contains ``name(`` and follows the braces to the matching close.
    """
    lines = read_source(file).splitlines()
    start = next(i for i, ln in enumerate(lines)
                 if f" {name}(" in ln and not ln.lstrip().startswith("//"))
    while start > 0 and lines[start - 1].lstrip().startswith("//"):
        start -= 1                      # include the comment that introduces the function
    depth, seen = 0, False
    for end in range(start, len(lines)):
        depth += lines[end].count("{") - lines[end].count("}")
        seen = seen or "{" in lines[end]
        if seen and depth == 0:
            return "\n".join(lines[start:end + 1])
    raise ValueError(f"unbalanced braces after {name} in {file}")
