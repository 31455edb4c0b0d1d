"""The host shim itself: caching, the grid loop, grid-stride loops, atomicAdd across threads."""

import numpy as np
import pytest

from mrcnn_np import gpu
from mrcnn_np.gpu import launch, shim

from ._helpers import needs_compiler

pytestmark = needs_compiler


def test_compiled_library_is_cached_by_content():
    p1 = shim.library_path("roi_pool.cu", np.float32)
    mtime = p1.stat().st_mtime_ns
    p2 = shim.library_path("roi_pool.cu", np.float32)
    assert p1 == p2 and p2.stat().st_mtime_ns == mtime       # not rebuilt
    assert shim.library_path("roi_pool.cu", np.float64) != p1  # one library per dtype


def test_launchers_are_generated_from_the_table():
    src = shim.launcher_source("roi_align.cu")
    assert 'extern "C" void shim_roi_align_forward_kernel(' in src
    assert 'extern "C" void shim_roi_align_backward_kernel(' in src
    assert "im2col" not in src


def test_grid_stride_loop_covers_everything_with_a_tiny_grid(rng):
    """A grid far smaller than the output: each thread must loop over several elements."""
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    want = gpu.im2col(x, 3, 1, 1, 1)                      # normal launch
    cols = np.full_like(want, np.nan)
    args = launch.cast_args("im2col_kernel", dict(
        total=cols.size, x=x, channels=3, height=6, width=7, kernel_h=3, kernel_w=3,
        stride_h=1, stride_w=1, pad_h=1, pad_w=1, dilation_h=1, dilation_w=1, row_begin=0,
        out_h=6, out_w=7, cols=cols), np.float32)
    shim.run("im2col_kernel", np.float32, grid=3, block=5, values=args)  # 15 threads
    np.testing.assert_array_equal(cols, want)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_atomic_add_is_exact_across_host_threads(threads):
    """Many bins send their gradient to the same pixel; blocks run on several host threads.

    With float64 and integer gradients every sum is exact, so a lost update shows.
    """
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2, 1] = 1.0                                  # the max of every bin that sees it
    rois = np.tile(np.array([[0, 0, 0, 3, 3]], np.float64), (300, 1))
    out, am = gpu.roi_pool(x, rois, 2, return_argmax=True)
    g = np.ones(out.shape)
    args = launch.cast_args("roi_pool_backward_kernel", dict(
        total=g.size, grad_output=g, channels=1, height=4, width=4, pooled_h=2, pooled_w=2,
        rois=rois, argmax=am, grad_input=(gi := np.zeros(x.shape))), np.float64)
    shim.run("roi_pool_backward_kernel", np.float64, grid=64, block=4, values=args,
             n_threads=threads)
    # the pixel is the max of the bin (1, 0) of each RoI (rows 2..3, cols 0..1)
    assert gi[0, 0, 2, 1] == 300.0 and gi.sum() == g.size


def test_numpy_input_never_needs_cupy():
    x = np.ones((1, 1, 3, 3), np.float32)
    out = gpu.roi_align(x, np.array([[0, 0, 0, 2, 2]], np.float32), 2, sampling_ratio=2)
    assert isinstance(out, np.ndarray) and np.allclose(out, 1.0)


def test_syncthreads_is_a_readable_compile_error(tmp_path, monkeypatch):
    """The shim runs a block's threads one after the other, so it cannot honour a barrier:
    a kernel that calls __syncthreads must fail to compile, saying why."""
    from mrcnn_np.gpu import table
    src = table.kernel_dir()
    for f in (*table.SOURCE_FILES, table.SHIM_HEADER):
        (tmp_path / f).write_text((src / f).read_text())
    with open(tmp_path / "roi_pool.cu", "a") as fh:
        fh.write('\nextern "C" __global__ void needs_barrier(float* x) { x[0] = 1; __syncthreads(); }\n')
    monkeypatch.setenv("MRCNN_NP_KERNELS_DIR", str(tmp_path))
    monkeypatch.setenv("MRCNN_NP_SHIM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="SHIM_DOES_NOT_EMULATE_syncthreads") as e:
        shim.library_path("roi_pool.cu", np.float32)
    assert str(tmp_path / "roi_pool.cu") in str(e.value)   # #line: messages name the real file
