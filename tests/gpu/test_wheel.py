"""The wheel ships the kernel sources where mrcnn_np.gpu looks for them."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mrcnn_np.gpu import table

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_kernel_sources(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    src = tmp_path / "src"          # build from a copy: the build leaves build/ behind
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")
    shutil.copytree(ROOT / "mrcnn_np", src / "mrcnn_np", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "kernels", src / "kernels", ignore=ignore)
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                          "--no-build-isolation", "-q", "-w", str(tmp_path / "whl")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    (whl,) = (tmp_path / "whl").glob("mrcnn_np-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for f in (*table.SOURCE_FILES, table.SHIM_HEADER):
        assert f"mrcnn_np/gpu/kernels/{f}" in names
    assert "mrcnn_np/gpu/shim.py" in names
