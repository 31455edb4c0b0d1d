"""Every study command takes the same flags with the same meaning, and parsing imports no numerics."""

import subprocess
import sys

import pytest

from mrcnn_np.cli import build_parser

COMMON = ["--seeds", "3", "--workers", "1", "--scheduler", "tcp://h:1", "--resume", "--quick", "--iters", "5",
          "--out", "O", "--data-root", "D", "--runs-root", "R", "--no-progress"]


@pytest.mark.parametrize("command", [["demo"], ["ablate", "roi"], ["keypoints"], ["pretrain-effect", "c4"]])
def test_the_same_flags_for_every_study(command):
    args = build_parser().parse_args(command + COMMON)
    assert (args.seeds, args.workers, args.scheduler, args.resume, args.quick, args.iters) == (3, 1, "tcp://h:1",
                                                                                               True, True, 5)
    assert (args.out, args.data_root, args.runs_root, args.no_progress) == ("O", "D", "R", True)
    defaults = build_parser().parse_args(command)
    assert (defaults.seeds, defaults.workers, defaults.resume, defaults.quick) == (None, 2, None, False)
    assert (defaults.out, defaults.data_root, defaults.runs_root) == ("results", "data", "runs")
    assert build_parser().parse_args(command + ["--no-resume"]).resume is False


def test_parsing_imports_no_numerics():
    code = ("import sys; from mrcnn_np.cli import build_parser; build_parser().parse_args(['ablate', 'roi']); "
            "print(sorted(m for m in sys.modules if m.startswith(('numpy', 'mrcnn_np.detection', 'mrcnn_np.engine'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
