"""Command line: ``python -m mrcnn_np <command> ...`` (also installed as ``mrcnn-np``).

    data shapes   generate the synthetic shapes data set (PNG + COCO JSON)
    data stats    check a COCO instance JSON file (and its images) and print counts
    demo          data set, train the teaching preset, COCO AP beside a classical baseline, a figure
    train         train Mask R-CNN on a COCO-format folder (checkpoints, --resume)
    pretrain      pretrain a backbone body on synthetic shape classes (docs/PRETRAINING.md)
    eval          COCO AP table of trained weights on a split of a data folder
    predict       detections on image files: drawings (PNG) + COCO-format JSON
    ablate        the paper's ablation tables at teaching scale (results/ablation_<table>.md)
    keypoints     keypoint-only vs keypoint & mask (Table 4): results/keypoints_table4.md, a figure
    bughunt       plant a realistic bug for students to find: list, plant NAME, hint, reveal, reset, check

Each subcommand is one ``cmd_*`` function that parses nothing and computes nothing
itself: it calls package functions. To add one, write ``cmd_x(args)`` and register it
in ``build_parser`` with ``set_defaults(func=cmd_x)``. Bad arguments or unreadable
files end with one line ``error: ...`` on stderr and exit code 2; a training run that
diverges (NaN loss) ends with one ``error:`` line and exit code 1.
"""

from __future__ import annotations

import argparse
import sys

from mrcnn_np.bughunt.cli import add_bughunt_command
from mrcnn_np.studies.cli import add_study_commands


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``error: ...``), exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} -h`)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _add_shapes_options(p, out="data/shapes"):
    p.add_argument("--out", default=out, help=f"output folder (default: {out})")
    p.add_argument("--train", type=_positive, default=2000, help="training images (default: 2000)")
    p.add_argument("--val", type=_positive, default=200, help="validation images (default: 200)")
    p.add_argument("--size", type=_positive, default=128, help="image side in pixels (default: 128)")
    p.add_argument("--seed", type=_positive, default=0, help="random seed (default: 0)")


def cmd_data_shapes(args) -> None:
    import time  # noqa: PLC0415

    from mrcnn_np.datasets.shapes import format_statistics, generate_shapes  # noqa: PLC0415

    from mrcnn_np.datasets.shapes import ShapesConfig  # noqa: PLC0415

    config = ShapesConfig(image_size=args.size, min_objects=args.min_objects, max_objects=args.max_objects,
                          min_size=args.min_size, max_size=args.max_size, overlap_prob=args.overlap)
    t0 = time.perf_counter()
    stats = generate_shapes(args.out, args.train, args.val, args.size, args.seed, config, progress=not args.quiet,
                            overwrite=args.overwrite)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")
    print(format_statistics(stats))


def cmd_data_stats(args) -> None:
    from mrcnn_np.datasets.coco import CocoDataset, DatasetError  # noqa: PLC0415

    ds = CocoDataset(args.ann_file, args.images or ".")  # a file the reader refuses: DatasetError, exit 2
    print(ds)
    print(ds.report or "  every annotation kept as it is")
    print("  (what the reader refuses, drops or fills in: python -m pydoc mrcnn_np.datasets.validate)")
    if args.images:  # read every image: checks that each exists, is readable and has its recorded size
        bad = []
        for i in range(len(ds)):
            try:
                ds.load_image(i)
            except DatasetError as e:
                bad.append(str(e))
        if bad:
            raise DatasetError(f"{len(bad)} of {len(ds)} image files cannot be used; first: {bad[0]}")
        print(f"all {len(ds)} image files found in {args.images} with the recorded sizes")


def cmd_train(args) -> None:
    from pathlib import Path  # noqa: PLC0415

    from mrcnn_np.detection.config import preset, with_fields  # noqa: PLC0415
    from mrcnn_np.engine.data import shapes_split  # noqa: PLC0415
    from mrcnn_np.engine.train import TrainConfig, train  # noqa: PLC0415

    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other (continue the run, or replace it)")
    if Path(args.data).exists() and not Path(args.data).is_dir():
        raise ValueError(f"--data {args.data}: is a file; expected a data folder (annotations/train.json, train/)")
    train_set = shapes_split(args.data, "train")
    val_set = shapes_split(args.data, "val") if (Path(args.data) / "annotations" / "val.json").is_file() else None
    model_cfg = with_fields(preset(args.preset), num_classes=len(train_set.class_names),
                            backbone_init=_backbone_init(args), freeze_at=args.freeze_at)
    cfg = TrainConfig(iterations=args.iters, batch_size=args.batch_size, lr=args.lr, warmup_iters=args.warmup,
                      clip=args.clip, seed=args.seed, eval_every=args.eval_every, eval_images=args.eval_images,
                      checkpoint_every=args.checkpoint_every, log_every=args.log_every, out_dir=args.out)
    _check_output_folder(args.out, "--out")
    print(f"train: {train_set}")
    res = train(model_cfg, cfg, train_set, val_set, resume=args.resume, progress=None if args.progress is None
                else args.progress == "bar", threads=args.threads,
                workers=args.workers, overwrite=args.overwrite, other_files_ok=False)
    if res.evals:
        e = res.evals[-1]
        print("final: " + ", ".join(f"{t} AP {e[t]['AP']:.3f}" for t in ("bbox", "segm") if t in e))
    print(f"weights: {res.out_dir / 'model'}.npz/.json; losses: {res.out_dir / 'losses.csv'}")


def _backbone_init(args) -> str:
    """MaskRCNNConfig.backbone_init from --backbone-init / --backbone-weights."""
    if args.backbone_weights and args.backbone_init != "pretrained":
        raise ValueError("--backbone-weights needs --backbone-init pretrained")
    if args.backbone_init == "scratch":
        if args.freeze_at:
            raise ValueError("--freeze-at needs --backbone-init pretrained (a random stem would stay random)")
        return "scratch"
    return args.backbone_weights or "pretrained"


def _add_backbone_options(p) -> None:
    p.add_argument("--backbone-init", choices=("scratch", "pretrained"), default="scratch",
                   help="start the backbone body from random weights or from pretrained ones (default: scratch)")
    p.add_argument("--backbone-weights", default=None, metavar="PATH",
                   help="the pretrained body file (.npz/.json prefix; default: the one shipped in "
                        "mrcnn_np/weights/ for the preset's body)")
    p.add_argument("--freeze-at", type=_positive, default=0,
                   help="keep the body's first layers fixed: 0 none, 1 the stem, 2 the stem and res2 (the "
                        "paper's), k the stem and k-1 stages (default: 0)")


def cmd_pretrain(args) -> None:
    import shlex  # noqa: PLC0415

    from mrcnn_np.datasets.pretrain_shapes import PretrainShapesConfig  # noqa: PLC0415
    from mrcnn_np.engine.pretrain import PretrainConfig, pretrain  # noqa: PLC0415
    from mrcnn_np.studies.pretrain_bodies import body_config  # noqa: PLC0415

    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other (continue the run, or replace it)")
    out = args.out or f"runs/pretrain/{args.body}"
    cfg = PretrainConfig(body=body_config(args.body), iterations=args.iters, batch_size=args.batch_size, lr=args.lr,
                         warmup_iters=args.warmup, seed=args.seed, data=PretrainShapesConfig(image_size=args.size),
                         eval_every=args.eval_every, eval_images=args.eval_images,
                         checkpoint_every=args.checkpoint_every, out_dir=out)
    _check_output_folder(out, "--out")
    res = pretrain(cfg, resume=args.resume, overwrite=args.overwrite, threads=args.threads, workers=args.workers,
                   progress=None if args.progress is None else args.progress == "bar",
                   command="python -m mrcnn_np " + " ".join(shlex.quote(a) for a in args.argv))
    print(f"top-1 {res.top1:.3f} on {cfg.eval_images} held-out images after {res.iteration} iterations")
    print(f"body weights: {res.weights}.npz/.json")


def _check_output_folder(path, flag: str) -> None:
    """Create the folder ``path`` (if missing); ValueError naming ``flag`` when it cannot be a
    folder we write into (a file, a folder that cannot be created, or not writable)."""
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{flag} {path}: cannot create the folder ({e.strerror or e})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: the folder is not writable")


def cmd_eval(args) -> None:
    import time  # noqa: PLC0415

    from mrcnn_np.engine.checkpoint import load_weights  # noqa: PLC0415
    from mrcnn_np.engine.data import shapes_split  # noqa: PLC0415
    from mrcnn_np.engine.evaluate import evaluate_coco  # noqa: PLC0415
    from mrcnn_np.engine.predict import predict_dataset  # noqa: PLC0415

    model, _, _ = load_weights(args.weights)
    ds = shapes_split(args.data, args.split)
    if model.cfg.num_classes != len(ds.class_names):
        raise ValueError(f"{args.weights} has {model.cfg.num_classes - 1} classes but {args.data} ({args.split}) "
                         f"has {len(ds.class_names) - 1}")
    n = len(ds) if not args.limit else min(args.limit, len(ds))
    t0 = time.perf_counter()
    preds = predict_dataset(model, ds, range(n))
    print(f"{args.split}: {n} of {len(ds)} images predicted in {time.perf_counter() - t0:.1f} s")
    evaluate_coco(preds, ds, image_ids=[ds.image_ids[i] for i in range(n)])


def cmd_predict(args) -> None:
    from mrcnn_np.engine.checkpoint import load_weights  # noqa: PLC0415
    from mrcnn_np.engine.predict import image_files, predict_files  # noqa: PLC0415

    paths = image_files(args.images)  # every file found (folders expanded) before the weights are read
    model, names, ids = load_weights(args.weights)
    predict_files(model, paths, args.out, args.score_thresh, names, ids, overwrite=args.overwrite)


def _at_least_one(text: str) -> int:
    value = _positive(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mrcnn_np", description="Mask R-CNN from scratch in NumPy.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="data sets").add_subparsers(dest="data_command", required=True,
                                                                   parser_class=_Parser)
    p = data.add_parser("shapes", help="generate the synthetic shapes data set")
    _add_shapes_options(p)
    p.add_argument("--min-objects", type=_positive, default=1, help="objects per image, at least (default: 1)")
    p.add_argument("--max-objects", type=_positive, default=6, help="objects per image, at most (default: 6)")
    p.add_argument("--min-size", type=float, default=8.0, help="smallest object diameter in px (default: 8)")
    p.add_argument("--max-size", type=float, default=None, help="largest object diameter (default: size/2)")
    p.add_argument("--overlap", type=float, default=0.3,
                   help="probability that an object is placed on an earlier one (default: 0.3)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="write into --out even if it holds a data set this command did not make")
    p.set_defaults(func=cmd_data_shapes)
    p = data.add_parser("stats", help="check a COCO instance JSON file and print counts (what the reader "
                                      "drops or fills in; exit 2 if it refuses the file)")
    p.add_argument("ann_file", help="COCO instance JSON")
    p.add_argument("--images", help="image folder: also check every image file")
    p.set_defaults(func=cmd_data_stats)

    p = sub.add_parser("train", help="train Mask R-CNN on a data folder (annotations/{train,val}.json)")
    p.add_argument("--preset", default="teaching", help="model preset (default: teaching)")
    p.add_argument("--data", default="data/shapes", help="data folder in the data/README.md layout")
    p.add_argument("--iters", type=_positive, default=1000, help="SGD iterations (default: 1000)")
    p.add_argument("--batch-size", type=_positive, default=2, help="images per iteration (default: 2)")
    p.add_argument("--lr", type=_positive_float, default=0.02, help="base learning rate (default: 0.02)")
    p.add_argument("--warmup", type=_positive, default=100, help="linear warmup iterations (default: 100)")
    p.add_argument("--clip", type=_non_negative_float, default=0.0,
                   help="max gradient norm, 0 = no clipping (default: 0)")
    p.add_argument("--seed", type=_positive, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default="runs/teaching", help="run folder (default: runs/teaching)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run files (losses, checkpoints, weights) already in --out and start afresh")
    p.add_argument("--eval-every", type=_positive, default=0,
                   help="COCO evaluation period in iterations, 0 = at the end only (default: 0)")
    p.add_argument("--eval-images", type=_positive, default=50,
                   help="validation images per evaluation, 0 = all (default: 50)")
    p.add_argument("--checkpoint-every", type=_positive, default=100, help="checkpoint period (default: 100)")
    p.add_argument("--threads", type=_positive, default=1,
                   help="numba/BLAS threads (default: 1, fastest for the small model on a busy machine)")
    p.add_argument("--workers", type=_positive, default=1,
                   help="data-parallel processes, each computing the gradient of a share of the batch "
                        "(default: 1; 2 uses both cores of a 2-core machine)")
    p.add_argument("--log-every", type=_positive, default=20, help="log line period without a bar (default: 20)")
    p.add_argument("--progress", choices=("bar", "lines"), default=None,
                   help="progress display (default: a bar on a terminal, log lines otherwise)")
    _add_backbone_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("pretrain", help="pretrain a backbone body on synthetic shape classes (docs/PRETRAINING.md)")
    p.add_argument("--body", default="teaching",
                   help="the body, by preset name (teaching, ...) or teaching_deeper (default: teaching)")
    p.add_argument("--iters", type=_at_least_one, default=10000,
                   help="SGD iterations (default: 10000, about 21 min for the teaching body on 2 cores)")
    p.add_argument("--batch-size", type=_at_least_one, default=64, help="images per iteration (default: 64)")
    p.add_argument("--lr", type=_positive_float, default=0.1, help="base learning rate (default: 0.1)")
    p.add_argument("--warmup", type=_positive, default=100, help="linear warmup iterations (default: 100)")
    p.add_argument("--size", type=_at_least_one, default=64, help="image side in pixels (default: 64)")
    p.add_argument("--seed", type=_positive, default=0, help="random seed: init and images (default: 0)")
    p.add_argument("--out", default=None, help="run folder (default: runs/pretrain/BODY)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the pre-training run files already in --out and start afresh")
    p.add_argument("--eval-every", type=_positive, default=500,
                   help="top-1 on the held-out split every N iterations, 0 = at the end only (default: 500)")
    p.add_argument("--eval-images", type=_at_least_one, default=1024, help="held-out images scored (default: 1024)")
    p.add_argument("--checkpoint-every", type=_positive, default=200, help="checkpoint period (default: 200)")
    p.add_argument("--threads", type=_at_least_one, default=1, help="numba/BLAS threads (default: 1)")
    p.add_argument("--workers", type=_at_least_one, default=2,
                   help="processes: 1 = everything here; N > 1 adds N-1 helpers that draw the next batches "
                        "(default: 2; the numbers do not depend on it)")
    p.add_argument("--progress", choices=("bar", "lines"), default=None,
                   help="progress display (default: a bar on a terminal, log lines otherwise)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("eval", help="COCO AP of trained weights on a data split")
    p.add_argument("--weights", required=True, help="run folder, weights prefix (.npz/.json) or checkpoint")
    p.add_argument("--data", default="data/shapes", help="data folder (default: data/shapes)")
    p.add_argument("--split", default="val", help="split name (default: val)")
    p.add_argument("--limit", type=_positive, default=0, help="evaluate the first N images only (default: all)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="detect objects in image files; PNG drawings + COCO JSON")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...) or folders of them")
    p.add_argument("--weights", required=True, help="run folder, weights prefix (.npz/.json) or checkpoint")
    p.add_argument("--out", default="predictions", help="output folder (default: predictions)")
    p.add_argument("--score-thresh", type=_finite_float, default=0.5,
                   help="keep detections scoring >= this (default: 0.5)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace drawings / detections.json of the same names already in --out")
    p.set_defaults(func=cmd_predict)

    add_study_commands(sub, _at_least_one)   # demo, ablate, keypoints: mrcnn_np/studies/cli.py
    add_bughunt_command(sub)                 # bughunt list/plant/...: mrcnn_np/bughunt/cli.py
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad arguments or files)."""
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)   # recorded by pretrain
    except SystemExit as e:  # -h (0) or a usage error (2, message already printed)
        return int(e.code or 0)
    from mrcnn_np.datasets.coco import DatasetError  # noqa: PLC0415

    try:
        args.func(args)
    except FloatingPointError as e:  # training diverged (engine.train.TrainingDiverged)
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (DatasetError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
