"""Keypoint-only vs keypoint & mask: the paper's Table 4 at teaching scale.

Mask R-CNN §5 adds a keypoint branch (``detection/keypoint_head.py``) and reports that a
model trained on person boxes, masks *and* keypoints is a little better at keypoints than
one trained on boxes and keypoints alone (Table 4, COCO test-dev, R50-FPN: AP_kp 62.7 ->
63.1; Table 5, minival: box AP 50.7 -> 52.0, AP_kp 64.2 -> 64.7, mask AP 45.1), "the
mask branch helps". This study asks the same question with the ``teaching_keypoints``
preset on the synthetic stick figures (``datasets/keypoints.py``, ``data/keypoints``): two
variants, ``mask_on=False`` ("keypoint-only") and ``mask_on=True`` ("keypoint & mask"), each
scored on the whole validation split with AP_kp (OKS, ``evaluate_keypoints``), box AP and,
for the joint model, mask AP. It writes ``results/keypoints_table4.md`` and ``.json`` (ours
as mean ± sample std over seeds beside the paper's Tables 4 and 5) and
``results/keypoints_predictions.png`` (ground truth and both models' skeletons).

Absolute numbers are not comparable with the paper's (stick figures on 128-pixel images, a tiny
model trained from scratch for minutes); the question is the *direction* of the difference.
With one seed a difference of a point or two is within the seed-to-seed noise: use
``--seeds 3`` to see the spread. Command line: ``python -m mrcnn_np keypoints --seeds 1``.

Shapes::

    V = 2 variants, S seeds, V * S runs; metrics in percent (COCO AP x 100, as the paper)
    run result: {"variant", "seed", "metrics": {name: float or None} or None, "keypoints", "losses", ...}
"""

from __future__ import annotations

import json
from pathlib import Path

from mrcnn_np.studies.findings import Claim, findings, findings_section
from mrcnn_np.studies.report import fmt_num, fmt_pm, opening, reproduce_section
from mrcnn_np.studies.runner import Study, Variant

# The recipe (TrainConfig fields plus data sizes). Budget: each training at most ~12 minutes
# with one thread on a busy 2-core machine, both at once: measured beforehand at 1.0-1.2 s per
# iteration of 4 images with two other trainings running; the real run of results/ averaged
# 1.33 (keypoint-only) and 1.49 s/iteration (keypoint & mask), 11 and 12.5 minutes.
RECIPE = dict(iterations=500, batch_size=4, lr=0.02, warmup_iters=50, milestones=(0.75, 0.9), clip=10.0,
              train_images=1000, val_images=100)
# quick: a smoke test (tests, CI), not a measurement.
QUICK_RECIPE = dict(iterations=3, batch_size=1, lr=0.01, warmup_iters=1, milestones=(0.75,), clip=10.0,
                    train_images=4, val_images=2)
BOOKKEEPING = dict(eval_every=0, eval_images=0, checkpoint_every=100, keep_checkpoints=1, log_every=25)
IMAGE_SIZE = 128
SHOW = 4               # validation images in the figure
SCORE_SHOWN = 0.5      # detections drawn in the figure: score at least this
METRICS = ("kp_AP", "kp_AP50", "kp_AP75", "box_AP", "box_AP50", "box_AP75", "mask_AP", "mask_AP50", "mask_AP75")
# docs/PAPER_TABLES.md: Table 4 (COCO test-dev, R50-FPN) and Table 5 (minival, person category).
PAPER = {
    "keypoint-only": {"table4": {"kp_AP": 62.7, "kp_AP50": 87.0, "kp_AP75": 68.4},
                      "table5": {"box_AP": 50.7, "kp_AP": 64.2}},
    "keypoint & mask": {"table4": {"kp_AP": 63.1, "kp_AP50": 87.3, "kp_AP75": 68.7},
                        "table5": {"box_AP": 52.0, "mask_AP": 45.1, "kp_AP": 64.7}},
}
PAPER_SETTING = ("Table 4: COCO test-dev, ResNet-50-FPN, AP_kp / AP50 / AP75; Table 5: COCO minival, person "
                 "category, ResNet-50-FPN, box AP / mask AP / AP_kp")
# the two rows of Table 4 / Table 5 that differ only by the mask branch
VARIANTS = (Variant("keypoint-only", {"mask_on": False}, PAPER["keypoint-only"]),
            Variant("keypoint & mask", {"mask_on": True}, PAPER["keypoint & mask"]))
CLAIMS = (Claim("4_mask_helps_keypoints", "4", "keypoint + mask training gives slightly higher AP_kp than keypoint-only",
                "better", ("keypoint & mask", "keypoint-only"), metric="kp_AP", also=("box_AP",),
                paper_delta=round(PAPER["keypoint & mask"]["table4"]["kp_AP"] - PAPER["keypoint-only"]["table4"]["kp_AP"],
                                  2)),)


def model_config(mask_on: bool):
    """The ``teaching_keypoints`` preset with the mask branch on or off."""
    from mrcnn_np.detection.config import preset, with_fields  # noqa: PLC0415

    return with_fields(preset("teaching_keypoints"), mask_on=bool(mask_on))


def _model_config_for(study, variant, train_set):
    cfg = model_config(variant.changes["mask_on"])
    if len(train_set.class_names) != cfg.num_classes or not train_set.keypoint_names:
        raise ValueError(f"the training set is not a stick-figure keypoint set (classes {train_set.class_names}, "
                         f"keypoints {train_set.keypoint_names})")
    return cfg


def _pct(stats: dict, names=("AP", "AP50", "AP75")) -> dict:
    return {k: (100.0 * stats[k] if stats[k] >= 0 else None) for k in names}


def _score(study, job, res, val_set) -> dict:
    """AP_kp, box AP and mask AP (percent) on every validation image, the loss curves' ends, the speed."""
    from mrcnn_np.engine import evaluate_coco, predict_dataset, read_losses  # noqa: PLC0415
    from mrcnn_np.engine.evaluate_keypoints import evaluate_keypoints  # noqa: PLC0415

    preds = predict_dataset(res.model, val_set)
    boxes_masks = evaluate_coco(preds, val_set, print_table=False)
    kps = evaluate_keypoints(preds, val_set, print_table=False)
    pct = {"kp": _pct(kps["keypoints"]["stats"]), "box": _pct(boxes_masks["bbox"]["stats"]),
           "mask": _pct(boxes_masks["segm"]["stats"]) if "segm" in boxes_masks else dict.fromkeys(("AP", "AP50",
                                                                                                     "AP75"))}
    curves = read_losses(job["run_dir"])
    w = max(1, len(curves["total"]) // 10)
    return {"mask_on": bool(study.variant(job["variant"]).changes["mask_on"]),
            "metrics": {f"{kind}_{k}": v for kind, vals in pct.items() for k, v in vals.items()},
            "keypoints": _pct(kps["keypoints"]["stats"], tuple(kps["keypoints"]["stats"])),
            "losses": {name: {"first": float(curves[name][:w].mean()), "last": float(curves[name][-w:].mean())}
                       for name in ("loss_keypoint", "loss_mask", "loss_cls", "total")},
            "sec_per_iter": float(curves["sec_per_iter"].mean()),
            "detections_per_image": sum(len(p["scores"]) for p in preds) / max(len(preds), 1)}


def _summary(res) -> str:
    m = res["metrics"]
    return (f"AP_kp {fmt_num(m['kp_AP'])}, box AP {fmt_num(m['box_AP'])}, mask AP {fmt_num(m['mask_AP'])}, "
            f"{res['sec_per_iter']:.2f} s/iteration")


def _finish(study, report, out: Path, suffix: str, log) -> None:
    """The figure, and each variant's mask_on."""
    import time  # noqa: PLC0415

    from mrcnn_np.studies.keypoints_figure import save_figure  # noqa: PLC0415

    for v in report["variants"]:
        v["mask_on"] = v["changes"]["mask_on"]
    figure = out / f"keypoints_predictions{suffix}.png"
    t0 = time.perf_counter()
    report["figure_runs"] = save_figure(report["runs"], [v.label for v in study.variants], report["data"]["dir"],
                                        figure, SHOW, SCORE_SHOWN)
    report["files"].append(str(figure))
    report["seconds"]["figure"] = round(time.perf_counter() - t0, 1)
    report["findings"] = findings(report, study.claims)
    log(results_table(report))


# ---------------------------------------------------------------- writing
def results_table(report: dict) -> str:
    """Markdown: ours (mean ± std over seeds) beside the paper's Table 4 and Table 5 numbers."""
    head = ("| variant | AP_kp | AP50_kp | AP75_kp | box AP | mask AP | paper T4 AP_kp | AP50 | AP75 "
            "| paper T5 box AP | mask AP | AP_kp |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for v in report["variants"]:
        ours, t4, t5 = v["ours"], v["paper"]["table4"], v["paper"]["table5"]
        note = f" ({v['failed_runs']} diverged)" if v["failed_runs"] else ""
        rows.append("| " + " | ".join([
            v["label"] + note, *(fmt_pm(ours[m]) for m in ("kp_AP", "kp_AP50", "kp_AP75", "box_AP", "mask_AP")),
            *(fmt_num(t4.get(m)) for m in ("kp_AP", "kp_AP50", "kp_AP75")),
            *(fmt_num(t5.get(m)) for m in ("box_AP", "mask_AP", "kp_AP"))]) + " |")
    a, b = (v["ours"] for v in report["variants"])
    deltas = [f"{name} {b[m]['mean'] - a[m]['mean']:+.1f}" for name, m in (("AP_kp", "kp_AP"), ("box AP", "box_AP"))
              if a[m]["mean"] is not None and b[m]["mean"] is not None]
    if deltas:
        rows.append("")
        rows.append("Keypoint & mask minus keypoint-only, ours: " + ", ".join(deltas)
                    + "; paper: AP_kp +0.4 (Table 4), +0.5 (Table 5), box AP +1.3 (Table 5).")
    return "\n".join(rows)


def format_markdown(report: dict) -> str:
    """The whole ``keypoints_table4.md``."""
    from mrcnn_np.datasets.keypoints import format_keypoint_statistics  # noqa: PLC0415

    r, d = report, report["data"]
    body = "from the shipped pretrained body" if r.get("backbone_init") == "pretrained" else "trained from scratch"
    intro = (f"`{r['preset']}` preset (a small GroupNorm ResNet-FPN, {body}) on the synthetic stick "
             "figures (13 keypoints, COCO visibility flags); ours: COCO AP x 100 on all validation images "
             f"(AP_kp with OKS, per-keypoint sigmas from `engine/evaluate_keypoints.py`), mean ± sample std over "
             f"{len(r['seeds'])} seed(s). Paper: {r['paper_setting']}. The data, the model and the training length "
             "differ from the paper's by orders of magnitude: compare the difference between the two rows, not "
             "absolute values (and with one seed, a point or two is within seed-to-seed noise).")
    lines = opening("Keypoints", r, intro, results_table(r)) + findings_section(r) + [
        f"![predictions]({Path(r['files'][2]).name})",
        "",
        "## Setting",
        "",
        f"- data: `{d['dir']}`, {d['train_images']} training and {d['val_images']} validation images of "
        f"{d['image_size']} px, seed {d['seed']} (`ensure_keypoints`)",
        f"- recipe: `{json.dumps(r['recipe'], default=list)}`",
        "- variants: `with_fields(preset('teaching_keypoints'), mask_on=False)` (keypoint-only) and `mask_on=True` "
        "(keypoint & mask)",
        "",
        "```",
        format_keypoint_statistics(d["stats"]),
        "```",
        "",
        *reproduce_section(r, f"data {r['seconds']['data']:.0f} s, trainings and evaluation "
                              f"{r['seconds']['trainings'] / 60:.1f} min"),
        "",
        "## Per run",
        "",
        "| variant | seed | AP_kp | AP50 | AP75 | box AP | mask AP | loss_keypoint first → last 10 % | s/iteration "
        "| train s | eval s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        m = run.get("metrics")
        if not m:
            lines.append(f"| {run['variant']} | {run['seed']} | diverged |" + " – |" * 8)
            continue
        lk = run["losses"]["loss_keypoint"]
        lines.append(f"| {run['variant']} | {run['seed']} | " + " | ".join(
            fmt_num(m[k]) for k in ("kp_AP", "kp_AP50", "kp_AP75", "box_AP", "mask_AP"))
            + f" | {lk['first']:.2f} → {lk['last']:.2f} | {run['sec_per_iter']:.2f} | {run['train_seconds']:.0f} "
            f"| {run['eval_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


STUDY = Study(name="keypoints", title="Keypoint-only vs keypoint & mask", command="keypoints", variants=VARIANTS,
              recipe=RECIPE, quick_recipe=QUICK_RECIPE, metrics=METRICS, model_config=_model_config_for,
              evaluate=_score, format_markdown=format_markdown, summary=_summary, finish=_finish, claims=CLAIMS,
              data_folder="keypoints", runs_folder="keypoints", stem="keypoints_table4", dataset="keypoints",
              image_size=IMAGE_SIZE, bookkeeping=BOOKKEEPING, paper_table="Table 4 (and Table 5)",
              paper_setting=PAPER_SETTING, extra={"preset": "teaching_keypoints"})

__all__ = ["METRICS", "PAPER", "QUICK_RECIPE", "RECIPE", "STUDY", "VARIANTS", "format_markdown", "model_config",
           "results_table"]
