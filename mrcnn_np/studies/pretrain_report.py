"""Shipping pretrained bodies and reporting what made them: ``results/pretrain.md`` / ``.json``.

A finished ``python -m mrcnn_np pretrain --body NAME`` run folder (``runs/pretrain/NAME``)
holds ``body.npz`` / ``body.json`` (the weights and what made them: command, seed, git commit,
iterations, top-1) and ``eval.json`` (top-1 on the held-out split during training). This
module copies the body into the package (``mrcnn_np/weights/NAME.npz/.json``, where
``backbone_init="pretrained"`` finds it) and writes one report over every run it is given::

    python -m mrcnn_np.studies.pretrain_report runs/pretrain/teaching [...] --ship --out results

The report's numbers are read from the run folders; nothing is typed by hand. When ``--out``
already holds the reports of ``python -m mrcnn_np pretrain-effect`` (scratch vs pretrained at
equal wall time), their summary is added as a last section.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from mrcnn_np.detection.pretrained import WEIGHTS_DIR


def run_summary(run: Path) -> dict:
    """What one finished pretraining run folder says about its body (ValueError naming the file)."""
    run = Path(run)
    info_path = run / "body.json"
    if not info_path.is_file():
        raise ValueError(f"{info_path}: not found (is {run} a finished `pretrain` run?)")
    info = json.loads(info_path.read_text())
    evals_path = run / "eval.json"
    evals = json.loads(evals_path.read_text()) if evals_path.is_file() else []
    cfg = info.get("pretrain_config", {})
    return {"body": run.name, "run_dir": str(run), "command": info.get("command"), "seed": info.get("seed"),
            "git_commit": info.get("git_commit"), "iterations": info.get("iterations"),
            "batch_size": cfg.get("batch_size"), "lr": cfg.get("lr"), "image_size": info.get("image_size"),
            "classes": len(info.get("classes", [])), "top1": info.get("top1"),
            "eval_images": info.get("eval_images"), "check": info.get("check"),
            "train_seconds": info.get("train_seconds"), "body_config": info.get("body_config"),
            "npz_bytes": (run / "body.npz").stat().st_size, "curve": evals}


def ship(run: Path, weights_dir: Path = WEIGHTS_DIR, overwrite: bool = False) -> Path:
    """Copy ``run/body.npz/.json`` to ``weights_dir/<run name>.npz/.json``; an existing different
    file is refused unless ``overwrite``. Returns the prefix written."""
    run, weights_dir = Path(run), Path(weights_dir)
    prefix = weights_dir / run.name
    for ext in (".npz", ".json"):
        src, dst = run / f"body{ext}", prefix.with_suffix(ext)
        if dst.exists() and not overwrite and dst.read_bytes() != src.read_bytes():
            raise ValueError(f"{dst}: exists and differs from {src} (pass --overwrite to replace it)")
    for ext in (".npz", ".json"):   # the JSON second: it marks a complete pair
        shutil.copyfile(run / f"body{ext}", prefix.with_suffix(ext))
    return prefix


def effect_rows(results: Path) -> list:
    """One row per ``results/pretrain_effect_<setting>.json`` there (written by ``python -m mrcnn_np
    pretrain-effect``): scratch and pretrained mask AP / AP75 (mean, std, seeds) and training seconds."""
    from mrcnn_np.studies.registry import PRETRAIN_SETTINGS  # noqa: PLC0415

    rows = []
    for setting in PRETRAIN_SETTINGS:
        path = Path(results) / f"pretrain_effect_{setting}.json"
        if not path.is_file():
            continue
        rep = json.loads(path.read_text())
        v = {x["label"]: x for x in rep["variants"]}
        secs = {label: [r["train_seconds_measured"] for r in rep["runs"] if r["variant"] == label and r.get("metrics")]
                for label in v}
        rows.append({"setting": setting, "title": rep["title"], "iterations": rep["recipe"]["iterations"],
                     "seeds": len(rep["seeds"]), "figure": f"pretrain_effect_{setting}.png",
                     **{f"{label}_{m}": v[label]["ours"][m] for label in v for m in ("mask_AP", "mask_AP75")},
                     **{f"{label}_seconds": sum(s) / len(s) if s else None for label, s in secs.items()}})
    return rows


def _effect_section(effects: list) -> list:
    from mrcnn_np.studies.report import fmt_pm  # noqa: PLC0415

    if not effects:
        return []
    lines = ["", "## What the pretrained body buys: scratch vs pretrained at equal wall time", "",
             "COCO mask AP x 100, mean ± std over seeds; both start the same recipe, nothing frozen, so a step costs "
             "the same (mean training seconds per run in the last columns). Details, learning curves and per-run "
             "numbers: `results/pretrain_effect_<setting>.md` (`python -m mrcnn_np pretrain-effect all --seeds 3`).",
             "", "| setting | iterations | seeds | mask AP scratch | pretrained | AP75 scratch | pretrained | "
             "training s scratch | pretrained |", "|---|---|---|---|---|---|---|---|---|"]
    for e in effects:
        secs = [f"{e[k]:.0f}" if e.get(k) is not None else "–" for k in ("scratch_seconds", "pretrained_seconds")]
        lines.append(f"| {e['setting']} | {e['iterations']} | {e['seeds']} | {fmt_pm(e['scratch_mask_AP'])} | "
                     f"{fmt_pm(e['pretrained_mask_AP'])} | {fmt_pm(e['scratch_mask_AP75'])} | "
                     f"{fmt_pm(e['pretrained_mask_AP75'])} | {secs[0]} | {secs[1]} |")
    lines += [""] + [f"![{e['title']}]({e['figure']})" for e in effects]
    return lines


def format_markdown(rows: list, effects: list = ()) -> str:
    lines = ["# Pretrained bodies (docs/PRETRAINING.md)", "",
             "Top-1 accuracy of each body's classifier on the held-out split of the synthetic classification "
             "set (chance: 1 / classes). Written by `python -m mrcnn_np.studies.pretrain_report` from the run "
             "folders.", "",
             "| body | classes | iterations | batch | lr | image px | top-1 | held-out images | train min | "
             "weights KB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['body']} | {r['classes']} | {r['iterations']} | {r['batch_size']} | {r['lr']} | "
                     f"{r['image_size']} | {r['top1']:.3f} | {r['eval_images']} | {r['train_seconds'] / 60:.1f} | "
                     f"{r['npz_bytes'] / 1024:.0f} |")
    for r in rows:
        lines += ["", f"## {r['body']}", "", f"- command: `{r['command']}`",
                  f"- seed {r['seed']}; git commit {r['git_commit']}",
                  f"- body config: `{json.dumps(r['body_config'])}`"]
        if r["check"]:
            lines.append(f"- the file's own check (tests/engine/test_pretrain.py repeats it): top-1 "
                         f"{r['check']['top1']:.3f} on the first {r['check']['images']} held-out images")
        if r["curve"]:
            lines.append("- top-1 during training: " + ", ".join(f"{e['top1']:.3f} @ {e['iteration']}"
                                                                 for e in r["curve"]))
    lines += _effect_section(list(effects))
    return "\n".join(lines) + "\n"


def main(argv=None, weights_dir: Path = WEIGHTS_DIR) -> int:
    """The command line; ``weights_dir``: where ``--ship`` copies the bodies (the package's weights/)."""
    p = argparse.ArgumentParser(prog="python -m mrcnn_np.studies.pretrain_report", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="finished pretraining run folders (runs/pretrain/NAME)")
    p.add_argument("--out", default="results", help="folder for pretrain.md / pretrain.json (default: results)")
    p.add_argument("--ship", action="store_true", help="also copy each body into mrcnn_np/weights/NAME.*")
    p.add_argument("--overwrite", action="store_true", help="with --ship: replace a different shipped file")
    args = p.parse_args(argv)
    try:
        rows = [run_summary(Path(r)) for r in args.runs]
        if args.ship:
            for r in args.runs:
                print(f"shipped {ship(Path(r), weights_dir, overwrite=args.overwrite)}.npz/.json")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    effects = effect_rows(out)          # the pretrain-effect reports already in --out, if any
    (out / "pretrain.json").write_text(json.dumps({"bodies": rows, "effect": effects}, indent=1) + "\n")
    (out / "pretrain.md").write_text(format_markdown(rows, effects))
    print(f"wrote {out / 'pretrain.md'}, {out / 'pretrain.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
