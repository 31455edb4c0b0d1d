"""Command line: ``python -m mrcnn_np <command> ...`` (also installed as ``mrcnn-np``).

    data shapes   generate the synthetic shapes data set (PNG + COCO JSON)
    data stats    check a COCO instance JSON file (and its images) and print counts
    demo          data set + statistics + classical baseline evaluated with COCO AP

Each subcommand is one ``cmd_*`` function that parses nothing and computes nothing
itself: it calls package functions. To add one, write ``cmd_x(args)`` and register it
in ``build_parser`` with ``set_defaults(func=cmd_x)``. Bad arguments or unreadable
files end with one line ``error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys


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


def _add_shapes_options(p):
    p.add_argument("--out", default="data/shapes", help="output folder (default: data/shapes)")
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
    stats = generate_shapes(args.out, args.train, args.val, args.size, args.seed, config, progress=not args.quiet)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")
    print(format_statistics(stats))


def cmd_data_stats(args) -> None:
    from mrcnn_np.datasets.coco import CocoDataset  # noqa: PLC0415

    ds = CocoDataset(args.ann_file, args.images or ".")
    print(ds)
    if args.images:  # load every image: checks that each exists and has its recorded size
        for i in range(len(ds)):
            ds.load_image(i)
        print(f"all {len(ds)} image files found in {args.images} with the recorded sizes")


def cmd_demo(args) -> None:
    from mrcnn_np.engine.baseline import run_demo  # noqa: PLC0415

    run_demo(args.out, args.train, args.val, args.size, args.seed, results_dir=args.results)


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
    p.set_defaults(func=cmd_data_shapes)
    p = data.add_parser("stats", help="check a COCO instance JSON file and print counts")
    p.add_argument("ann_file", help="COCO instance JSON")
    p.add_argument("--images", help="image folder: also check every image file")
    p.set_defaults(func=cmd_data_stats)

    p = sub.add_parser("demo", help="shapes data set + classical baseline + COCO AP")
    _add_shapes_options(p)
    p.add_argument("--results", default="results", help="where demo_baseline.png goes (default: results)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad arguments or files)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # -h (0) or a usage error (2, message already printed)
        return int(e.code or 0)
    from mrcnn_np.datasets.coco import DatasetError  # noqa: PLC0415

    try:
        args.func(args)
    except (DatasetError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
