"""The kernel table, the .cu sources and the shipped files agree; cupy stays optional."""

import re
from pathlib import Path

import numpy as np
import pytest

import mrcnn_np.gpu as gpu
from mrcnn_np.gpu import launch, table

ROOT = Path(__file__).resolve().parents[2]


def _c_signature(source: str, name: str):
    """Parameter types of ``extern "C" __global__ void name(...)`` in ``source``."""
    m = re.search(r'extern "C" __global__ void ' + name + r"\((.*?)\)\s*\{", source, re.S)
    assert m, f"{name} not found as an extern \"C\" __global__ entry point"
    params = re.sub(r"//[^\n]*", "", m.group(1))      # drop comments
    out = []
    for p in params.split(","):
        words = p.replace("*", " * ").split()
        out.append(" ".join(words[:-1]).replace(" *", "*"))  # drop the parameter name
    return out


@pytest.mark.parametrize("name", sorted(table.KERNELS))
def test_table_matches_kernel_source(name):
    spec = table.KERNELS[name]
    got = _c_signature(table.read_source(spec.file), name)
    want = [table.C_TYPES[t] for _, t in spec.args]
    assert got == want


def test_every_kernel_file_is_in_the_table_and_found():
    d = table.kernel_dir()
    on_disk = sorted(p.name for p in d.glob("*.cu"))
    assert on_disk == table.SOURCE_FILES
    assert (d / table.SHIM_HEADER).is_file()
    # the package directory (what a wheel ships) sees the same files as kernels/
    pkg = Path(gpu.__file__).parent / "kernels"
    assert sorted(p.name for p in pkg.glob("*.cu")) == table.SOURCE_FILES


def test_package_data_covers_the_kernels():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = cfg["tool"]["setuptools"]["package-data"]["mrcnn_np.gpu"]
    assert "kernels/*.cu" in patterns and "kernels/*.h" in patterns


def test_scalar_arguments_are_cast_to_the_table_types():
    x = np.zeros((1, 1, 2, 2), np.float32)
    rois = np.zeros((1, 5), np.float32)
    out = np.zeros((1, 1, 1, 1), np.float32)
    am = np.zeros(1, np.int32)
    vals = launch.cast_args("roi_align_forward_kernel", dict(
        total=1, input=x, spatial_scale=0.5, channels=1, height=2, width=2, pooled_h=1,
        pooled_w=1, sampling_ratio=-1, aligned=True, use_max=0, rois=rois, output=out,
        argmax=am), np.float32)
    types = [type(v) for v in vals]
    assert types[0] is np.int64 and types[2] is np.float32 and types[3] is np.int32
    assert types[9] is np.int32 and vals[9] == 1          # aligned=True -> int32 1
    with pytest.raises(ValueError, match="input must be float32"):
        launch.cast_args("roi_align_forward_kernel", dict(
            total=1, input=x.astype(np.float64), spatial_scale=0.5, channels=1, height=2,
            width=2, pooled_h=1, pooled_w=1, sampling_ratio=-1, aligned=1, use_max=0,
            rois=rois, output=out, argmax=am), np.float32)
    with pytest.raises(TypeError, match="kernel table"):
        launch.cast_args("roi_align_forward_kernel", dict(total=1), np.float32)


def test_grid_size_is_capped_and_positive():
    assert launch.grid_size(1, 256) == 1
    assert launch.grid_size(257, 256) == 2
    assert launch.grid_size(10**12, 256) == launch.MAX_GRID


def test_cupy_is_optional():
    try:
        import cupy  # noqa: F401
        pytest.skip("cupy is installed; the missing-cupy message cannot be tested")
    except ImportError:
        pass
    with pytest.raises(ImportError, match=r"pip install mrcnn_np\[gpu\]"):
        gpu.cupy_or_raise()
    assert gpu.gpu_available() is False
