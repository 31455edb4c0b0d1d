import subprocess
import sys
from pathlib import Path

from mrcnn_np.scratch import remove_scratch, scratch_dir


def test_scratch_dir_is_removed_at_exit(tmp_path):
    code = ("from mrcnn_np.scratch import scratch_dir\n"
            "d = scratch_dir('t_'); (d / 'sub').mkdir(); (d / 'sub' / 'f.npz').write_bytes(b'x' * 1000)\n"
            "print(d)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    made = Path(out.stdout.strip())
    assert made.name.startswith("t_")
    assert not made.exists()


def test_remove_scratch_deletes_now():
    a, b = scratch_dir("t_"), scratch_dir("t_")
    (a / "x.txt").write_text("x")
    assert a.is_dir() and b.is_dir() and a != b
    assert remove_scratch() >= 2
    assert not a.exists() and not b.exists()
