"""Same recipe, same start, two engines: does our training reach the AP torch reaches?

Trains the ``teaching`` architecture twice on the same shapes set with the same recipe,
the same initial weights and the same stream of batches (order and flips from one seeded
``BatchLoader``): once with mrcnn_np (``engine.train``), once as torchvision modules
(``bench_train_step.torch_teaching_model``) with torch's SGD and the same warmup / step
schedule. Both are scored with the same COCO evaluation on the validation set. Equal APs
(within run-to-run noise) mean the training machinery is right, and a low AP is the
recipe's, not a bug's. The two runs go in two processes, one thread each.

    python -m bench.bench_train_ap [--data data/shapes] [--iters 1200] [--batch-size 4] [--lr 0.02]

About 2 x 10 minutes of CPU at the defaults.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import pathlib
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _setup(args):
    from mrcnn_np.detection.config import preset, with_fields
    from mrcnn_np.engine.data import shapes_split
    from mrcnn_np.engine.train import TrainConfig

    train_set, val_set = shapes_split(args["data"], "train"), shapes_split(args["data"], "val")
    model_cfg = with_fields(preset("teaching"), num_classes=len(train_set.class_names))
    cfg = TrainConfig(iterations=args["iters"], batch_size=args["batch_size"], lr=args["lr"],
                      checkpoint_every=0, out_dir=args["out"])
    return model_cfg, cfg, train_set, val_set


def run_ours(args):
    from bench.common import timed
    from mrcnn_np.engine import evaluate_model, train

    model_cfg, cfg, train_set, val_set = _setup(args)
    res, seconds = timed(train, model_cfg, cfg, train_set, None, progress=False, log=lambda *_: None, threads=1)
    return {k: r["stats"] for k, r in evaluate_model(res.model, val_set).items()}, seconds


def run_torch(args):
    import torch

    from bench.bench_train_step import torch_teaching_model
    from bench.common import timed
    from mrcnn_np.autodiff.optim import WarmupMultiStepLR
    from mrcnn_np.detection.mask_rcnn import MaskRCNN
    from mrcnn_np.engine.data import BatchLoader, sample_to_input
    from mrcnn_np.engine.evaluate import evaluate_coco

    torch.set_num_threads(1)
    model_cfg, cfg, train_set, val_set = _setup(args)
    tv = torch_teaching_model(model_cfg)
    start = MaskRCNN(model_cfg, seed=cfg.seed).state_dict()              # our initial weights
    tv.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in start.items()}, strict=False)
    loader = BatchLoader(train_set, cfg.batch_size, np.random.default_rng([cfg.seed, 2]), cfg.flip_prob)
    opt = torch.optim.SGD(tv.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = WarmupMultiStepLR(cfg.lr, cfg.warmup_iters, cfg.warmup_factor, cfg.milestone_iters(), cfg.gamma)
    tv.train()

    def fit():
        for it in range(cfg.iterations):
            for group in opt.param_groups:
                group["lr"] = sched(it)
            images, targets, _ = loader.next_batch()
            losses = tv([torch.from_numpy(i) for i in images],
                        [{k: torch.from_numpy(np.asarray(v)) for k, v in t.items()} for t in targets])
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()

    _, seconds = timed(fit)
    tv.eval()
    preds = []
    with torch.no_grad():
        for i in range(len(val_set)):
            sample = val_set[i]
            out = tv([torch.from_numpy(sample_to_input(sample)[0])])[0]
            preds.append(dict(image_id=sample["image_id"], **{k: out[k].numpy() for k in
                                                              ("boxes", "scores", "labels", "masks")}))
    return {k: r["stats"] for k, r in evaluate_coco(preds, val_set, print_table=False).items()}, seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "data" / "shapes"))
    ap.add_argument("--iters", type=int, default=1200)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=0.02)
    args = ap.parse_args()

    from bench.common import machine_report
    print(machine_report())
    with tempfile.TemporaryDirectory() as tmp:
        job = dict(data=args.data, iters=args.iters, batch_size=args.batch_size, lr=args.lr, out=tmp)
        with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {name: pool.submit(fn, job) for name, fn in (("mrcnn_np", run_ours), ("torch", run_torch))}
            results = {name: f.result() for name, f in futures.items()}
    print(f"\nteaching preset on {args.data}: {args.iters} iterations x {args.batch_size} images, lr {args.lr}, "
          f"same initial weights and batches; COCO AP on the val set")
    print(f"{'':10} {'box AP':>7} {'AP50':>6} {'mask AP':>8} {'AP50':>6} {'AP75':>6}  train time")
    for name, (stats, seconds) in results.items():
        b, s = stats["bbox"], stats["segm"]
        print(f"{name:10} {b['AP']:7.3f} {b['AP50']:6.3f} {s['AP']:8.3f} {s['AP50']:6.3f} {s['AP75']:6.3f}  "
              f"{seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
