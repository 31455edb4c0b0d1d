"""Every kernel compiles to PTX with nvcc, without a single warning, where nvcc exists.

CI machines have nvcc but no GPU: this catches CUDA-only errors (device-code rules the
host shim's C++ compile does not check) on every run. CUDA 13 targets sm_75 and newer.
"""

import shutil
import subprocess

import pytest

from mrcnn_np.gpu import table

NVCC = shutil.which("nvcc") or (shutil.which("/usr/local/cuda/bin/nvcc"))


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed (CUDA toolkit absent)")
@pytest.mark.parametrize("arch", ["sm_75", "sm_90"])
@pytest.mark.parametrize("file", table.SOURCE_FILES)
def test_kernel_compiles_to_ptx_without_warnings(file, arch, tmp_path):
    for ctype in ("float", "double"):
        cmd = [NVCC, "-ptx", f"-arch={arch}", f"-Dscalar_t={ctype}", "-Werror", "all-warnings",
               "-o", str(tmp_path / "k.ptx"), str(table.kernel_dir() / file)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert res.stderr.strip() == "", res.stderr
        ptx = (tmp_path / "k.ptx").read_text()
        for spec in table.KERNELS.values():    # every entry point of the file is exported
            if spec.file == file:
                assert f".entry {spec.name}(" in ptx
