"""`data shapes` never overwrites a data set it did not make; `data stats` reports what the
reader refuses (one `error:` line, exit 2) or drops (counts per reason) (issue 16)."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from mrcnn_np.cli import main
from mrcnn_np.datasets.output_dir import GENERATED_MARKER
from mrcnn_np.datasets.shapes import ensure_shapes

SHAPES = ["--train", "2", "--val", "1", "--size", "64", "--quiet"]


def _someones_data_set(root):
    (root / "annotations").mkdir(parents=True)
    (root / "train").mkdir()
    (root / "annotations" / "train.json").write_text('{"mine": true}')
    Image.fromarray(np.full((4, 4, 3), 7, np.uint8)).save(root / "train" / "000000.png")


def test_data_shapes_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    root = tmp_path / "theirs"
    _someones_data_set(root)
    before = (root / "train" / "000000.png").read_bytes()
    assert main(["data", "shapes", "--out", str(root), *SHAPES]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "annotations/train.json" in err
    assert "--overwrite" in err
    assert (root / "annotations" / "train.json").read_text() == '{"mine": true}'  # untouched
    assert (root / "train" / "000000.png").read_bytes() == before
    assert not (root / "params.json").exists() and not (root / GENERATED_MARKER).exists()
    assert main(["data", "shapes", "--out", str(root), *SHAPES, "--overwrite"]) == 0  # told to: it may
    assert json.loads((root / "annotations" / "train.json").read_text())["images"]


def test_data_shapes_may_rewrite_its_own_folder(tmp_path, capsys):
    out = tmp_path / "shapes"
    assert main(["data", "shapes", "--out", str(out), *SHAPES]) == 0
    assert main(["data", "shapes", "--out", str(out), *SHAPES, "--seed", "3"]) == 0  # its own: rewritten
    (out / GENERATED_MARKER).unlink()  # a set made before the marker existed: params.json identifies it
    assert main(["data", "shapes", "--out", str(out), *SHAPES]) == 0
    # and a folder holding unrelated files only is fine: nothing of them is touched
    other = tmp_path / "data"
    other.mkdir()
    (other / "README.md").write_text("notes")
    assert main(["data", "shapes", "--out", str(other), *SHAPES]) == 0
    assert (other / "README.md").read_text() == "notes"
    (tmp_path / "file").write_text("x")
    assert main(["data", "shapes", "--out", str(tmp_path / "file"), *SHAPES]) == 2
    assert "file: exists and is not a folder" in capsys.readouterr().err


def test_ensure_shapes_reuses_and_refuses(tmp_path):
    reused, _ = ensure_shapes(tmp_path / "a", 2, 1, size=64, progress=False)
    assert not reused
    stamp = (tmp_path / "a" / "annotations" / "train.json").stat().st_mtime_ns
    assert ensure_shapes(tmp_path / "a", 2, 1, size=64, progress=False)[0]  # same config: reused
    assert (tmp_path / "a" / "annotations" / "train.json").stat().st_mtime_ns == stamp
    _someones_data_set(tmp_path / "b")
    try:
        ensure_shapes(tmp_path / "b", 2, 1, size=64, progress=False)
        raise AssertionError("ensure_shapes overwrote a foreign data set")
    except ValueError as e:
        assert "refusing to overwrite" in str(e)
    assert (tmp_path / "b" / "annotations" / "train.json").read_text() == '{"mine": true}'


def _quirky(tmp_path):
    """A COCO file with quirks the reader drops or fills in, but nothing it refuses."""
    ann = lambda i, **f: {"id": i, "image_id": 1, "category_id": 1, "bbox": [2, 2, 6, 6],  # noqa: E731
                          "segmentation": [[2, 2, 8, 2, 8, 8, 2, 8]], **f}
    data = {"images": [{"id": 1, "file_name": "a.png", "height": 20, "width": 30}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [ann(1), ann(2, segmentation=[]), ann(3, segmentation=[[1, 2, 3, 4]]),
                            ann(4, bbox=[2, 2, -1, 6], iscrowd=0, area=3)]}
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path, data


def test_data_stats_counts_what_is_dropped_or_filled_in(tmp_path, capsys):
    path, _ = _quirky(tmp_path)
    assert main(["data", "stats", str(path), "--images", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 instances" in out and "3 degenerate dropped" in out
    assert "dropped: 2 annotation(s): polygon with < 3 points" in out
    assert "dropped: 1 annotation(s): bbox width or height <= 0" in out
    assert "kept, fixed: 1: no 'iscrowd' (taken as 0)" in out and "kept, fixed: 1: no 'area'" in out


def test_data_stats_refuses_what_the_reader_refuses(tmp_path, capsys):
    path, data = _quirky(tmp_path)
    data["annotations"][0]["segmentation"] = [[2, 2, float("nan"), 2, 8, 8]]
    data["annotations"][1]["segmentation"] = {"size": [20, 30], "counts": "02"}  # 2 pixels, not 600
    path.write_text(json.dumps(data))
    assert main(["data", "stats", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(path) in err
    assert "annotations[0] field 'segmentation' polygon 0 has a NaN" in err
    data["annotations"][0]["segmentation"] = [[2, 2, 8, 2, 8, 8]]
    path.write_text(json.dumps(data))
    assert main(["data", "stats", str(path)]) == 2
    assert "annotations[1] field 'segmentation' (RLE) runs cover" in capsys.readouterr().err


def test_data_stats_reports_every_bad_image(tmp_path, capsys):
    path, data = _quirky(tmp_path)
    data["images"] += [{"id": 2, "file_name": "b.png", "height": 20, "width": 30},
                       {"id": 3, "file_name": "c.png", "height": 20, "width": 30}]
    path.write_text(json.dumps(data))
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "c.png")
    assert main(["data", "stats", str(path), "--images", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 2 of 3 image files cannot be used") and "b.png: image file not found" in err


def test_python_dash_m_no_traceback_on_a_hostile_file(tmp_path):
    path, data = _quirky(tmp_path)
    data["annotations"][0]["segmentation"] = [[2, 2, 3e9, 2, 8, 8]]
    path.write_text(json.dumps(data))
    r = subprocess.run([sys.executable, "-m", "mrcnn_np", "data", "stats", str(path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "far outside" in r.stderr
