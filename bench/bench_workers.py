"""Training throughput with 1 and with N data-parallel workers (``train(..., workers=N)``).

Both runs train the ``teaching`` preset from the same initial weights on the same batches
(4 images of the demo's shapes set) in this process, one after the other; the script prints
the median seconds per iteration of each (the first iterations, which compile and warm up,
are left out) and the speed-up. The machine is shared and noisy: compare the ratio, not
the absolute times.

    python -m bench.bench_workers [--iters 60] [--workers 2] [--data DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np


def main():
    from mrcnn_np.datasets.shapes import ShapesConfig, ensure_shapes
    from mrcnn_np.detection.config import preset, with_fields
    from mrcnn_np.engine.data import shapes_split
    from mrcnn_np.studies.demo import DEMO_RECIPE, DEMO_SHAPES
    from mrcnn_np.engine.train import TrainConfig, read_losses, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=60, help="iterations per run (default 60; the first 10 are skipped)")
    ap.add_argument("--workers", type=int, default=2, help="data-parallel processes to compare with 1 (default 2)")
    ap.add_argument("--data", type=Path, default=None, help="a shapes folder (default: 200 demo images in a temp dir)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_workers_"))
    try:
        data = args.data
        if data is None:
            data = tmp / "data"
            ensure_shapes(data, 200, 1, 128, 0, ShapesConfig(image_size=128, **DEMO_SHAPES), progress=False)
        with contextlib.redirect_stdout(io.StringIO()):
            train_set = shapes_split(data, "train")
        model_cfg = with_fields(preset("teaching"), num_classes=len(train_set.class_names))
        times = {}
        for w in (1, args.workers):
            cfg = TrainConfig(**dict(DEMO_RECIPE, iterations=args.iters, checkpoint_every=10 ** 6, log_every=0,
                                     out_dir=str(tmp / f"w{w}")))
            train(model_cfg, cfg, train_set, progress=False, log=lambda s: None, workers=w)
            times[w] = float(np.median(read_losses(cfg.out_dir)["sec_per_iter"][10:]))
            print(f"workers {w}: {1000 * times[w]:.0f} ms per iteration of {cfg.batch_size} images (median)")
        print(f"speed-up with {args.workers} workers: {times[1] / times[args.workers]:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
