"""Pretrained vs scratch at equal wall time: what the shipped teaching bodies buy (issue 17).

The paper fine-tunes ImageNet-pretrained backbones; "Rethinking ImageNet Pre-training" (He,
Girshick, Dollár 2019) found that pre-training mainly speeds up convergence. Our runs are short,
which is exactly that regime. Each setting below is one study with two variants that differ only
in where the backbone body starts: random (``scratch``) or the shipped pretrained body
(``pretrained``, ``detection/pretrained.py``). Nothing is frozen, so a step costs the same in
both and equal iterations are equal wall time (the report prints the measured seconds of both).
The budget is a notebook's: ``ITERATIONS`` steps of the demo's recipe (lr, batch, warmup), a few
minutes per run, where pre-training should matter most (3 seeds x 2 variants x 3 settings fit
in about an hour on 2 cores, two runs at a time).

    demo     the demo's upright shapes set (``studies/demo.py``)
    rotated  the default (rotated) shapes set
    c4       a one-level C4 model (Table 2a's ``C4``) on the demo's set, a third of the iterations,
             so that its slower steps (res5 on every RoI) take about the time of the FPN runs

Every run is evaluated ``CURVE_POINTS`` times on every validation image while it trains: the
learning curves (mask AP against training seconds) are drawn in ``results/pretrain_effect_<setting>.png``.
Command line: ``python -m mrcnn_np pretrain-effect {demo,rotated,c4,all} --seeds 3``.

Shapes::

    2 variants x S seeds per setting; metrics in percent (COCO AP x 100)
    run result: {"variant", "seed", "metrics", "curve": [{"iteration", "train_seconds", "mask_AP", "box_AP"}], ...}
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mrcnn_np.datasets.shapes import ShapesConfig
from mrcnn_np.studies.ablation import C4, METRICS, QUICK_RECIPE, model_config
from mrcnn_np.studies.demo import DEMO_RECIPE, DEMO_SHAPES, IMAGE_SIZE
from mrcnn_np.studies.report import fmt_delta, fmt_num, fmt_pm, note_section, opening, reproduce_section
from mrcnn_np.studies.runner import Study, Variant

SETTINGS = ("demo", "rotated", "c4")
CURVE_POINTS = 4                 # evaluations per run (every iterations / CURVE_POINTS), the last at the end
VARIANTS = (Variant("scratch", {}), Variant("pretrained", {"backbone_init": "pretrained"}))
TRAIN_FIELDS = ("batch_size", "lr", "warmup_iters")
ITERATIONS = 1200
RECIPE = dict({k: DEMO_RECIPE[k] for k in TRAIN_FIELDS}, iterations=ITERATIONS, train_images=2000, val_images=200,
              seeds=3)
# A C4 step costs about 3x an FPN one (res5 on every RoI; ablation.py): a third of the iterations.
C4_RECIPE = dict(RECIPE, iterations=ITERATIONS // 3)


def _bookkeeping(recipe: dict) -> dict:
    return dict(eval_every=max(1, recipe["iterations"] // CURVE_POINTS), eval_images=0, checkpoint_every=250,
                keep_checkpoints=1, log_every=0)


def _curve(run_dir: Path, evals: list) -> list:
    """Mask and box AP (percent) of each in-training evaluation, against the training seconds so far
    (the sum of losses.csv's ``sec_per_iter``, evaluations not counted)."""
    seconds, total = {}, 0.0
    with open(run_dir / "losses.csv", newline="") as f:
        for row in csv.DictReader(f):
            total += float(row["sec_per_iter"])
            seconds[int(row["iteration"]) + 1] = total
    return [{"iteration": e["iteration"], "train_seconds": round(seconds.get(e["iteration"], total), 1),
             "mask_AP": 100.0 * e["segm"]["AP"], "box_AP": 100.0 * e["bbox"]["AP"]} for e in evals]


def _score(study, job, res, val_set) -> dict:
    """The final evaluation (every validation image) in percent, and the learning curve."""
    ev = res.evals[-1]
    metrics = {f"{pre}_{k}": 100.0 * ev[kind][k] if ev[kind][k] >= 0 else None
               for pre, kind in (("mask", "segm"), ("box", "bbox")) for k in ("AP", "AP50", "AP75")}
    curve = _curve(Path(job["run_dir"]), res.evals)
    return {"metrics": metrics, "curve": curve, "eval_seconds": round(sum(e["seconds"] for e in res.evals), 1),
            "train_seconds_measured": curve[-1]["train_seconds"] if curve else None}


def _summary(res) -> str:
    m = res["metrics"]
    return (f"mask AP {fmt_num(m['mask_AP'])}, AP75 {fmt_num(m['mask_AP75'])} "
            f"({res['train_seconds_measured']:.0f} s training)")


def results_table(report: dict) -> str:
    """Scratch and pretrained: mean ± std over seeds, the difference, and the training seconds."""
    rows = ["| backbone body | mask AP | AP50 | AP75 | box AP | Δ mask AP | Δ AP75 | training s |",
            "|---|---|---|---|---|---|---|---|"]
    ref = report["variants"][0]["ours"]
    for v in report["variants"]:
        o = v["ours"]
        secs = [r["train_seconds_measured"] for r in report["runs"] if r["variant"] == v["label"] and r.get("metrics")]
        rows.append("| " + " | ".join([v["label"], *(fmt_pm(o[m]) for m in ("mask_AP", "mask_AP50", "mask_AP75",
                                                                               "box_AP")),
                                        fmt_delta(o["mask_AP"]["mean"], ref["mask_AP"]["mean"]),
                                        fmt_delta(o["mask_AP75"]["mean"], ref["mask_AP75"]["mean"]),
                                        " / ".join(f"{s:.0f}" for s in secs) or "–"]) + " |")
    return "\n".join(rows)


def save_curves(report: dict, path: Path) -> None:
    """Mask AP against training seconds, every seed a thin line, per variant."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for colour, v in zip(("tab:grey", "tab:blue"), report["variants"]):
        for k, run in enumerate(r for r in report["runs"] if r["variant"] == v["label"] and r.get("curve")):
            xs = [0.0] + [p["train_seconds"] / 60 for p in run["curve"]]
            ys = [0.0] + [p["mask_AP"] for p in run["curve"]]
            ax.plot(xs, ys, "o-", color=colour, lw=1.2, ms=3, alpha=0.85,
                    label=f"{v['label']} ({len(report['seeds'])} seeds)" if k == 0 else None)
    ax.set_xlabel("training time (min, evaluations not counted)")
    ax.set_ylabel("mask AP (COCO, x 100)")
    ax.set_title(report["title"], fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _finish(study, report, out: Path, suffix: str, log) -> None:
    figure = out / f"{study.stem}{suffix}.png"
    save_curves(report, figure)
    report["files"].append(str(figure))


def format_markdown(report: dict) -> str:
    """``results/pretrain_effect_<setting>.md``: the table, the learning curves, the setting, per run."""
    r, d = report, report["data"]
    intro = (f"{r['design']} COCO AP x 100 on the {d['val_images']} validation images, mean ± sample std over "
             f"{len(r['seeds'])} seed(s); both variants train the same iterations, whose measured seconds are the "
             "last column (one number per seed).")
    lines = opening("Study", r, intro, results_table(r)) + [
        f"![learning curves]({Path(r['files'][-1]).name})", "",
        "## Setting", "",
        f"- data: `{d['dir']}`, {d['train_images']} training and {d['val_images']} validation images, "
        f"seed {d['seed']}, "
        f"`ShapesConfig({', '.join(f'{k}={v!r}' for k, v in d['config'].items())})`",
        f"- recipe: `{json.dumps(r['recipe'], default=list)}`; model changes: `{json.dumps(r['base'], default=list)}`",
        "- pretrained: the body in `mrcnn_np/weights/` (results/pretrain.md), nothing frozen", "",
        *reproduce_section(r, f"data {r['data_seconds']:.0f} s"), "",
        "## Learning curves (mask AP at each evaluation; training seconds)", "",
        "| variant | seed | " + " | ".join(f"@{p['iteration']}" for p in next(
            (x["curve"] for x in r["runs"] if x.get("curve")), [])) + " |",
        "|---|---|" + "---|" * len(next((x["curve"] for x in r["runs"] if x.get("curve")), [])),
    ]
    for run in r["runs"]:
        cells = [f"{p['mask_AP']:.1f} ({p['train_seconds']:.0f} s)" for p in run.get("curve") or []] or ["diverged"]
        lines.append(f"| {run['variant']} | {run['seed']} | " + " | ".join(cells) + " |")
    lines += note_section(r)
    return "\n".join(lines) + "\n"


def _study(setting: str, title: str, design: str, data: ShapesConfig, recipe: dict, base: dict | None = None) -> Study:
    quick = dict(QUICK_RECIPE, iterations=CURVE_POINTS)
    return Study(name=f"pretrain_effect_{setting}", title=title, command=f"pretrain-effect {setting}",
                 variants=VARIANTS, recipe=recipe, quick_recipe=quick, metrics=METRICS,
                 model_config=lambda study, variant, train_set: model_config(study, variant,
                                                                              len(train_set.class_names)),
                 evaluate=_score, format_markdown=format_markdown, summary=_summary, finish=_finish,
                 data_folder="shapes_demo" if setting != "rotated" else "pretrain_effect_rotated",
                 runs_folder=f"pretrain_effect/{setting}", stem=f"pretrain_effect_{setting}", dataset="shapes",
                 data=data, bookkeeping=_bookkeeping(recipe), eval_in_training=True, design=design,
                 base=dict(base or {}), extra={"setting": setting}, paper_table="§4 (ImageNet-pretrained backbones)",
                 paper_setting="every model in the paper starts from an ImageNet-pretrained ResNet")


_DEMO_DATA = ShapesConfig(image_size=IMAGE_SIZE, **DEMO_SHAPES)
STUDIES = {
    "pretrain_effect_demo": _study(
        "demo", "Pretrained vs scratch: the demo's set and recipe",
        "The demo's upright shapes set, the teaching preset (FPN), the demo's recipe for a notebook's budget.",
        _DEMO_DATA, RECIPE),
    "pretrain_effect_rotated": _study(
        "rotated", "Pretrained vs scratch: the default rotated set",
        "The default shapes set (random rotations: the classes must be learned rotation-invariant), "
        "the teaching preset (FPN), the demo's recipe for a notebook's budget.",
        ShapesConfig(image_size=IMAGE_SIZE), RECIPE),
    "pretrain_effect_c4": _study(
        "c4", "Pretrained vs scratch: a one-level C4 model",
        "A one-level C4 model (Table 2a's C4: res4 at stride 16, res5 on every RoI) on the demo's set; "
        "a third of the FPN runs' iterations, since a C4 step costs about three FPN steps.", _DEMO_DATA, C4_RECIPE,
        base=C4),
}

__all__ = ["CURVE_POINTS", "ITERATIONS", "RECIPE", "SETTINGS", "STUDIES", "format_markdown", "results_table",
           "save_curves"]
