"""The study subcommands of ``python -m mrcnn_np`` — demo, ablate TABLE, keypoints,
pretrain-effect SETTING — with the same flags for each.

    --seeds N          seeds per variant, 0..N-1 (default: the study's: demo 1, ablate 3, keypoints 1; --quick 1)
    --workers N        runs at once in local processes, one thread each; 1 = one after the other here
    --scheduler ADDR   run on a Dask cluster instead (tcp://host:8786); its workers must see these folders
    --resume           reuse finished runs of the same configuration, continue unfinished ones
                       (--no-resume: retrain; the demo resumes by default, the tables do not)
    --quick            a tiny smoke run (CI); files and folders get a _quick suffix
    --iters N          override the recipe's training iterations
    --out DIR          where the report (.json, .md) and figures go (default: results)
    --data-root DIR    data sets go to DIR/<study's data folder> (default: data)
    --runs-root DIR    run folders go to DIR/<study's runs folder> (default: runs)
    --no-progress      no progress bar while data is generated
    --backbone-init    scratch or pretrained (the shipped body); default: the study's (demo: pretrained)
    --freeze-at K      with pretrained: keep the stem and K-1 stages fixed

ablate only: ``--workshop`` (the table's workshop recipe), ``--variant V --seed S`` (one run, one
pooled-run file in --out), and ``ablate merge FILES`` (the table from a class's run files,
``studies.pooled``).

Parsing imports no numerics: the table names are ``registry.ABLATION_TABLES``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mrcnn_np.studies.registry import ABLATION_TABLES, PRETRAIN_SETTINGS


def _run(name: str, args) -> dict:
    from mrcnn_np.studies.registry import get_study  # noqa: PLC0415
    from mrcnn_np.studies.runner import run_study  # noqa: PLC0415

    variant, seed = getattr(args, "variant", None), getattr(args, "seed", None)
    if (variant is None) != (seed is None):
        raise ValueError("--variant and --seed go together: one run of one variant with one seed")
    if seed is not None and args.seeds is not None:
        raise ValueError("--seed S runs one seed; drop --seeds")
    return run_study(get_study(name), args.seeds, workers=args.workers, scheduler=args.scheduler,
                     resume=args.resume, quick=args.quick, out=args.out, data_root=args.data_root,
                     runs_root=args.runs_root, iterations=args.iters, progress=not args.no_progress,
                     backbone_init=args.backbone_init, freeze_at=args.freeze_at,
                     workshop=getattr(args, "workshop", False), select=None if seed is None else (variant, seed))


def cmd_demo(args) -> None:
    report = _run("demo", args)
    print(f"\nwrote {', '.join(report['files'])}; total {report['wall_seconds'] / 60:.1f} min "
          f"(data {report['seconds']['data']:.0f} s, training and evaluation {report['seconds']['trainings']:.0f} s)")


def cmd_ablate(args) -> None:
    from mrcnn_np.studies.ablation import results_table  # noqa: PLC0415

    if args.table == "merge":
        return cmd_merge(args)
    if args.files:
        raise ValueError(f"ablate {args.table}: unexpected arguments {args.files}; run files go to 'ablate merge'")
    if args.variant is not None and args.table == "all":
        raise ValueError("--variant/--seed run one table's run: name the table, not 'all'")
    for name in (ABLATION_TABLES if args.table == "all" else [args.table]):
        report = _run(name, args)
        if report.get("format"):                     # --variant V --seed S: one run, one pooled-run file
            res = report["result"]
            words = "diverged: " + str(res["error"]) if not res.get("metrics") else ", ".join(
                f"{k.replace('_', ' ')} {v:.1f}" for k, v in res["metrics"].items()
                if k in ("mask_AP", "box_AP") and v is not None)
            print(f"\n{report['title']}, {res['variant']}, seed {res['seed']}: {words}"
                  f"{' (reused)' if res.get('reused') else ''}\nwrote {report['path']}\n"
                  f"pool the class's files: python -m mrcnn_np ablate merge {Path(report['path']).parent}/*.json")
            continue
        print(f"\n{report['title']} (paper {report['paper_table']}), {len(report['seeds'])} seed(s), "
              f"{report['wall_seconds'] / 60:.1f} min")
        print(results_table(report))
        print("wrote " + " and ".join(report["files"]))


def cmd_merge(args) -> None:
    """ablate merge FILES: the table from the class's run files (``studies.pooled``)."""
    from mrcnn_np.studies.ablation import results_table  # noqa: PLC0415
    from mrcnn_np.studies.findings import format_finding  # noqa: PLC0415
    from mrcnn_np.studies.pooled import merge  # noqa: PLC0415

    report = merge(args.files, out=args.out)
    print(f"\n{report['title']} (paper {report['paper_table']}), {len(report['runs'])} run file(s), "
          f"seeds {report['seeds']}")
    print(results_table(report))
    for f in report.get("findings") or []:
        print("  " + format_finding(f))
    for h in report.get("seed_hits") or []:
        print(f"  held seed by seed: {h['held']} of {h['seeds']} ({h['claim']})")
    print("wrote " + ", ".join(report["files"]))


def cmd_keypoints(args) -> None:
    report = _run("keypoints", args)
    print(f"wrote {', '.join(report['files'])} in {report['wall_seconds'] / 60:.1f} min")


def cmd_pretrain_effect(args) -> None:
    from mrcnn_np.studies.pretrain_effect import results_table  # noqa: PLC0415

    if args.backbone_init is not None or args.freeze_at:
        raise ValueError("pretrain-effect compares both backbone inits itself; drop --backbone-init/--freeze-at")
    for setting in (PRETRAIN_SETTINGS if args.setting == "all" else [args.setting]):
        report = _run(f"pretrain_effect_{setting}", args)
        print(f"\n{report['title']}, {len(report['seeds'])} seed(s), {report['wall_seconds'] / 60:.1f} min")
        print(results_table(report))
        print("wrote " + ", ".join(report["files"]))


def add_study_options(p, count) -> None:
    """The flags every study command has; ``count`` parses an integer >= 1."""
    p.add_argument("--seeds", type=count, default=None,
                   help="seeds per variant, 0..N-1 (default: the study's; with --quick: 1)")
    p.add_argument("--workers", type=count, default=2,
                   help="runs at once in local processes, one thread each; 1 = one after the other (default: 2)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask cluster (e.g. tcp://host:8786) instead; its workers must see these folders")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=None,
                   help="keep finished runs of the same configuration, continue unfinished ones "
                        "(default: on for the demo, off for the tables)")
    p.add_argument("--quick", action="store_true", help="a tiny smoke run (CI); writes *_quick files")
    p.add_argument("--iters", type=count, default=None, help="training iterations (default: the recipe's)")
    p.add_argument("--out", default="results", help="where the report and figures go (default: results)")
    p.add_argument("--data-root", default="data", help="where the data sets go (default: data)")
    p.add_argument("--runs-root", default="runs", help="where the run folders go (default: runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while data is generated")
    p.add_argument("--backbone-init", choices=("scratch", "pretrained"), default=None,
                   help="start every run's backbone body from random weights or from the shipped pretrained "
                        "body (docs/PRETRAINING.md; default: the study's, pretrained for the demo, scratch for the "
                        "tables; the other choice's run folders and report get a _scratch or _pretrained suffix)")
    p.add_argument("--freeze-at", type=int, choices=range(0, 6), default=0, metavar="K",
                   help="with --backbone-init pretrained: keep the stem (1), and res2 (2), ... fixed (default: 0)")


def add_study_commands(sub, count) -> None:
    """Register demo, ablate and keypoints on the subparsers ``sub``."""
    p = sub.add_parser("demo", help="shapes data set -> train the teaching model -> COCO AP -> figure")
    add_study_options(p, count)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("ablate", help="the paper's ablation tables at teaching scale (several trainings each)")
    p.add_argument("table", choices=[*ABLATION_TABLES, "all", "merge"],
                   help="which table (all: one after the other; merge: the table from pooled run files)")
    p.add_argument("files", nargs="*", help="merge: the run files of --variant/--seed runs (e.g. shared/*.json)")
    add_study_options(p, count)
    p.add_argument("--workshop", action="store_true",
                   help="the table's workshop recipe: a few minutes a run, its main finding (docs/WORKSHOP.md)")
    p.add_argument("--variant", default=None, metavar="V",
                   help="with --seed: run this one variant (its name as listed by the error, e.g. "
                        "sigmoid_per_class_binary) and write one run file to --out for 'ablate merge'")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="with --variant: the one seed to run")
    p.set_defaults(func=cmd_ablate)
    p = sub.add_parser("keypoints", help="keypoint-only vs keypoint & mask on stick figures (paper Table 4)")
    add_study_options(p, count)
    p.set_defaults(func=cmd_keypoints)
    p = sub.add_parser("pretrain-effect", help="scratch vs pretrained backbone body at equal wall time, "
                                               "with learning curves (results/pretrain_effect_<setting>.md)")
    p.add_argument("setting", choices=[*PRETRAIN_SETTINGS, "all"], help="which comparison (all: one after the other)")
    add_study_options(p, count)
    p.set_defaults(func=cmd_pretrain_effect)


__all__ = ["add_study_commands", "add_study_options", "cmd_ablate", "cmd_demo", "cmd_keypoints", "cmd_pretrain_effect"]
