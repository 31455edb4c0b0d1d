"""The paper's ablation tables at teaching scale: what the five tables share.

Mask R-CNN §4.2 (Table 2) isolates one design choice per table and retrains the whole
model for each alternative. We do the same with the ``teaching`` preset on the synthetic
shapes set, several seeds per alternative, and report COCO mask AP (and box AP) as
mean ± std over seeds next to the paper's COCO numbers. Absolute values are not
comparable (different data, a tiny model, minutes of training); the *direction and size of
the differences* within a table are what the paper's argument rests on, so each table's
data set is chosen so that its effect has room to show (``Study.design`` says why).
Every table uses upright shapes (``ShapesConfig(rotate=False)``): with random rotations the
tiny model's errors are mostly wrong classes (learning rotation-invariant shape classes takes
far longer than the minutes a run has), which would bury the box and mask effects the
tables are about under classification noise.

    ablation_roi              Table 2c/2d  RoIPool / RoIWarp / RoIAlign (max, avg), C4 (stride 16) and C5 (stride 32)
    ablation_mask_loss        Table 2b     per-class sigmoid vs multinomial softmax, plus class-agnostic
    ablation_mask_head        Table 2e     MLP vs FCN mask branch
    ablation_backbone         Table 2a     C4 vs FPN at two depths
    ablation_mask_resolution  (ours)       14 x 14 vs 28 x 28 vs 56 x 56 masks

Each table is a ``Study`` made by ``table(...)``; ``runner.run_study`` runs it (command line:
``python -m mrcnn_np ablate TABLE --seeds 3``) and writes ``results/ablation_<table>.md``
and ``.json``. A run is scored by the training's final COCO evaluation on every validation image.

Shapes::

    V variants, S seeds, V * S runs; metrics in percent (COCO AP x 100, as the paper)
    run result: {"study", "variant", "seed", "metrics": {name: float} or None, "segm", "bbox", "seconds", ...}
"""

from __future__ import annotations

import json

from mrcnn_np.detection.config import MaskRCNNConfig, preset, with_fields
from mrcnn_np.studies.findings import findings, findings_section
from mrcnn_np.studies.pooled import hits_section, pooled_section
from mrcnn_np.studies.report import fmt_delta, fmt_num, fmt_pm, note_section, opening, reproduce_section
from mrcnn_np.studies.runner import Study

# The training recipe of every table (TrainConfig fields, plus the data set sizes and the
# default number of seeds); ``table(recipe=...)`` overrides it per table. Budget: a table of
# V variants x 3 seeds in at most 60 minutes on 2 cores, two runs at a time.
RECIPE = dict(iterations=1200, batch_size=4, lr=0.04, warmup_iters=100, milestones=(0.75, 0.9), clip=0.0,
              train_images=1000, val_images=100, seeds=3)
# --quick: a smoke test of the whole pipeline (CI), not a measurement.
QUICK_RECIPE = dict(iterations=4, batch_size=1, lr=0.01, warmup_iters=2, milestones=(0.75,), clip=10.0,
                    train_images=4, val_images=2, seeds=1)
# --workshop: one (variant, seed) per laptop in a class, the table's main finding in a few minutes
# (docs/WORKSHOP.md): the pretrained body, half the iterations, a smaller data set. A table opts
# in with ``table(workshop=...)`` (fields overriding these, and the variants a class runs). A pilot
# at 400 iterations left the softmax variant at mask AP 0.0 (no mask probability above 0.5 yet).
WORKSHOP_RECIPE = dict(iterations=600, batch_size=4, lr=0.04, warmup_iters=50, milestones=(0.75, 0.9), clip=0.0,
                       train_images=300, val_images=50, seeds=3)
# TrainConfig bookkeeping of every run: evaluate once, at the end, on every validation image.
BOOKKEEPING = dict(eval_every=0, eval_images=0, checkpoint_every=100, keep_checkpoints=1, log_every=0)
METRICS = ("mask_AP", "mask_AP50", "mask_AP75", "box_AP", "box_AP50", "box_AP75")


def paper(mask, box=None) -> dict:
    """The paper's (AP, AP50, AP75) of masks (and boxes) as METRICS names; None: not reported."""
    vals = dict(zip(METRICS[:3], mask)) | (dict(zip(METRICS[3:], box)) if box else {})
    return {k: v for k, v in vals.items() if v is not None}


# One feature map for the RPN and the RoIs, so one anchor level with all five sizes.
ONE_LEVEL = {"rpn.anchor_sizes": ((8, 16, 32, 64, 128),)}
# C4 (Fig. 4 left): res4 at stride 16, res5 as the RoI head, 14 x 14 masks. The paper samples 64
# RoIs per image for C4; res5 on every RoI makes a C4 step about 3x an FPN one at 64 (530-550
# vs 183 ms of CPU time here), so the tables sample 32 to keep a table of C4 runs within its hour.
C4 = {"architecture": "c4", **ONE_LEVEL, "mask_head.resolution": 14, "roi_heads.batch_size_per_image": 32}
# C5 (Table 2d): the whole ResNet, RoIs pooled at stride 32, the FPN layout's heads.
C5 = {"architecture": "c5", **ONE_LEVEL}


def model_config(table: Study, variant, num_classes: int) -> MaskRCNNConfig:
    """The teaching preset with the table's base changes, then the variant's, sized to the data."""
    size = table.data.image_size
    cfg = with_fields(preset("teaching"), num_classes=num_classes, **{"transform.min_size": (size,),
                                                                      "transform.max_size": size})
    return with_fields(with_fields(cfg, **table.base), **variant.changes)


def _model_config_for(study, variant, train_set):
    return model_config(study, variant, len(train_set.class_names))


def _score(study, job, res, val_set) -> dict:
    """The training's final evaluation (every validation image) in percent; -1 (no ground truth) -> None."""
    ev = res.evals[-1]
    # a box-only model (mask_on=False, the multitask table) has no segm evaluation: its mask numbers are None
    pct = {kind: {k: (100.0 * v if v >= 0 else None) for k, v in ev[kind].items()} if kind in ev else
           dict.fromkeys(ev["bbox"], None) for kind in ("segm", "bbox")}
    metrics = {f"{pre}_{k}": pct[kind][k] for pre, kind in (("mask", "segm"), ("box", "bbox"))
               for k in ("AP", "AP50", "AP75")}
    return {"table": study.name, "metrics": metrics, "segm": pct["segm"], "bbox": pct["bbox"],
            "eval_seconds": ev["seconds"]}


def _summary(res) -> str:
    return f"mask AP {fmt_num(res['metrics']['mask_AP'])}, box AP {fmt_num(res['metrics']['box_AP'])}"


def add_findings(study: Study, report: dict, out=None, suffix="", log=print) -> None:
    """``Study.finish`` of the tables: the verdict on each of the table's claims (``studies.findings``)."""
    from mrcnn_np.studies.pooled import seed_hits  # noqa: PLC0415

    report["findings"] = findings(report, study.claims)
    report["seed_hits"] = seed_hits(report, study.claims)


def table(name: str, title: str, paper_table: str, paper_setting: str, data, design: str, variants: tuple,
          base: dict | None = None, recipe: dict | None = None, claims: tuple = (),
          backbone_init: str = "scratch", workshop: dict | None = None, workshop_variants: tuple = ()) -> Study:
    """An ablation table: the paper's table it mirrors, its data set and why, its variants; ``recipe``
    overrides fields of RECIPE (the quick recipe is the same for every table); ``claims``: the paper's
    claims the table tests (``studies.findings.Claim``), judged into the report's ``findings``;
    ``backbone_init``: where the bodies start unless told (the tables of the first round: scratch);
    ``workshop``: the table's workshop recipe (fields overriding WORKSHOP_RECIPE; None: no workshop
    recipe), ``workshop_variants``: the labels a workshop runs (empty: all)."""
    return Study(name=name, title=title, command=f"ablate {name}", variants=tuple(variants),
                 recipe={**RECIPE, **(recipe or {})}, quick_recipe=dict(QUICK_RECIPE), metrics=METRICS,
                 model_config=_model_config_for, evaluate=_score, format_markdown=format_markdown,
                 summary=_summary, data_folder=f"ablation_{name}", runs_folder=f"ablation/{name}",
                 stem=f"ablation_{name}", dataset="shapes", data=data, bookkeeping=BOOKKEEPING,
                 eval_in_training=True, paper_table=paper_table, paper_setting=paper_setting, design=design,
                 base=dict(base or {}), extra={"table": name}, claims=tuple(claims),
                 backbone_init=backbone_init, finish=add_findings,
                 workshop_recipe=None if workshop is None else {**WORKSHOP_RECIPE, **workshop},
                 workshop_variants=tuple(workshop_variants))


# ---------------------------------------------------------------- writing
def results_table(report: dict) -> str:
    """The markdown table: ours (mean ± std over seeds) and the paper's numbers per variant."""
    head = ("| variant | mask AP | AP50 | AP75 | box AP | Δ mask AP | paper AP | AP50 | AP75 | box AP | Δ paper |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    rows, first = [head], {}
    for v in report["variants"]:
        ref = first.setdefault(v["group"], v)
        ours, paper_ = v["ours"], v["paper"]
        note = f" ({v['failed_runs']} diverged)" if v["failed_runs"] else ""
        rows.append("| " + " | ".join([
            v["label"] + note, *(fmt_pm(ours[m]) for m in ("mask_AP", "mask_AP50", "mask_AP75", "box_AP")),
            fmt_delta(ours["mask_AP"]["mean"], ref["ours"]["mask_AP"]["mean"]),
            *(fmt_num(paper_.get(m)) for m in ("mask_AP", "mask_AP50", "mask_AP75", "box_AP")),
            fmt_delta(paper_.get("mask_AP"), ref["paper"].get("mask_AP"))]) + " |")
    return "\n".join(rows)


def format_markdown(report: dict) -> str:
    """The whole ``ablation_<table>.md``: the table, why this data set, the setting, how to reproduce, per run."""
    from mrcnn_np.datasets.shapes import format_statistics  # noqa: PLC0415

    r, d = report, report["data"]
    recipe_words = ("the table's **workshop recipe** (a short run whose main finding should show, one "
                    "(variant, seed) per laptop; docs/WORKSHOP.md)" if r.get("workshop") else "")
    intro = ("Teaching-scale Mask R-CNN (`teaching` preset; backbone body: "
             f"{'the shipped pretrained body' if r.get('backbone_init') == 'pretrained' else 'from scratch'}"
             f"{', frozen up to stage ' + str(r['freeze_at']) if r.get('freeze_at') else ''}) "
             f"on the synthetic shapes set{', ' + recipe_words if recipe_words else ''}; ours: COCO AP x 100 on the "
             f"validation images, mean ± sample std over {len(r['seeds'])} seed(s). Paper: {r['paper_setting']}. "
             "Compare differences within the table (Δ: against the first row of the same group), not absolute values.")
    lines = (opening("Ablation", r, intro, results_table(r)) + pooled_section(r) + findings_section(r)
             + hits_section(r) + [
        "## Why this data set",
        "",
        r["design"],
        "",
        "## Setting",
        "",
        f"- data: `{d['dir']}`, {d['train_images']} training and {d['val_images']} validation images, "
        f"seed {d['seed']}, `ShapesConfig({', '.join(f'{k}={v!r}' for k, v in d['config'].items())})`",
        f"- recipe: `{json.dumps(r['recipe'], default=list)}`",
        *(f"- {v['label']}: `{json.dumps(v['changes'], default=list)}`" for v in r["variants"]),
        "",
        "```",
        format_statistics(d["stats"]),
        "```",
        "",
        *reproduce_section(r, f"data {r['data_seconds']:.0f} s"),
        "",
        "## Per run",
        "",
        "| variant | seed | mask AP | AP50 | AP75 | box AP | AP50 | AP75 | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ])
    for run in r["runs"]:
        m = run.get("metrics") or {}
        cells = [fmt_num(m.get(k)) for k in METRICS] if m else ["diverged"] + ["–"] * 5
        lines.append(f"| {run['variant']} | {run['seed']} | " + " | ".join(cells)
                     + f" | {run.get('seconds', 0):.0f}{' (reused)' if run.get('reused') else ''} |")
    lines += note_section(r)   # what the numbers alone do not say (how the run went), added to the JSON by hand
    return "\n".join(lines) + "\n"


__all__ = ["BOOKKEEPING", "add_findings", "C4", "C5", "METRICS", "ONE_LEVEL", "QUICK_RECIPE", "RECIPE", "WORKSHOP_RECIPE", "format_markdown",
           "model_config", "paper", "results_table", "table"]
