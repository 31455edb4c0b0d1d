"""Classroom-pooled tables: one run per laptop, one file per run, one table from the files.

A room of laptops builds one of the paper's tables together. Each laptop trains one
(variant, seed) of a table's workshop recipe and writes one small JSON file into a shared
folder (a network share, a USB stick, a chat upload — anything that moves files)::

    python -m mrcnn_np ablate mask_loss --workshop --variant sigmoid_per_class_binary --seed 2 --out shared/
    python -m mrcnn_np ablate merge shared/*.json

``merge`` builds the same report the runner builds from the same runs (``runner.build_report``:
mean ± sample std per variant, the findings on the paper's claims, how often each finding held
seed by seed), as soon as any files are in; variants or seeds still missing are listed. It
refuses, with one line naming the file, a file that is not a run file, a run of another table,
of another recipe (training fields, data set, backbone start), of another commit or of
uncommitted code, and a (variant, seed) that two files both claim. A lab with a cluster can
pool through the Dask scheduler instead (``--scheduler``); the files need no network set-up.

Shapes::

    run file: {"format": FORMAT, "study", "variant", "seed", "recipe_key": {...}, "git_commit", "git_dirty",
               "meta": {the runner's report fields the runs share}, "result": {the run's result dict}, ...}
    merge(files) -> report (as the runner's, plus "pooled": {"files", "missing", ...}); written as
    <out>/<stem>_pooled.json, .md and .png (the class's runs beside the committed full-run table)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mrcnn_np.engine.checkpoint import write_json_atomic

FORMAT = "mrcnn_np.pooled_run/1"
RECIPE_FIELDS = ("study", "workshop", "quick", "recipe", "backbone_init", "freeze_at", "base")
DATA_FIELDS = ("config", "train_images", "val_images", "image_size", "seed")


def recipe_key(meta: dict) -> dict:
    """What must be equal for two runs to be pooled: the table, the recipe (training fields, the data
    set's parameters, where the body starts) — not where the folders are or how it was run."""
    key = {k: meta.get(k) for k in RECIPE_FIELDS}
    key["data"] = {k: meta["data"].get(k) for k in DATA_FIELDS}
    return json.loads(json.dumps(key, default=list))


def run_file_path(stem, label: str, seed: int) -> Path:
    from mrcnn_np.studies.runner import slug  # noqa: PLC0415

    stem = Path(stem)
    return stem.with_name(f"{stem.name}__{slug(label)}__seed{int(seed)}.json")


def write_run_file(stem, meta: dict, result: dict, seconds: float | None = None) -> dict:
    """Write one run's pooled-run file next to ``stem`` (the report's stem); returns its dict (with "path").

    A file of that name that is not a run file of ours is never replaced (ValueError)."""
    path = run_file_path(stem, result["variant"], result["seed"])
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if not (isinstance(old, dict) and old.get("format") == FORMAT):
            raise ValueError(f"{path} exists and is not a pooled run file; choose another --out")
    doc = {"format": FORMAT, "study": meta["study"], "title": meta["title"], "variant": result["variant"],
           "seed": int(result["seed"]), "recipe_key": recipe_key(meta), "git_commit": meta["git_commit"],
           "git_dirty": meta["git_dirty"], "command": meta["command"],
           "finished": time.strftime("%Y-%m-%d %H:%M:%S %z"),
           "seconds": None if seconds is None else round(float(seconds), 1), "meta": meta, "result": result}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, doc, default=list)
    return dict(doc, path=str(path))


def read_run_file(path) -> dict:
    """One run file, checked for its format; ValueError naming the file otherwise."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: cannot read a pooled run file: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pooled run file (no \"format\": \"{FORMAT}\"; "
                         "made by ablate TABLE --variant V --seed S)")
    for key in ("study", "variant", "seed", "recipe_key", "git_commit", "meta", "result"):
        if key not in doc:
            raise ValueError(f"{path}: a pooled run file without the field {key!r}")
    return doc


def _first_difference(a, b, where="") -> str:
    """Where two JSON values first differ, as "recipe.iterations: 400 vs 1200"."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
    return f"{where}: {json.dumps(a, default=list)} vs {json.dumps(b, default=list)}"


def check_files(paths) -> list:
    """Read the run files and check that they can be pooled; a ValueError of one line naming the file
    that cannot (another table, recipe or commit, uncommitted code, a (variant, seed) given twice)."""
    if not paths:
        raise ValueError("ablate merge: give the run files (e.g. shared/*.json)")
    docs, first, seen = [], None, {}
    for path in paths:
        doc = read_run_file(path)
        doc["path"] = str(path)
        if doc.get("git_dirty") or not doc.get("git_commit"):
            raise ValueError(f"{path}: made from uncommitted code (or outside git); pool only runs of one commit")
        if first is None:
            first = doc
        elif doc["study"] != first["study"]:
            raise ValueError(f"{path}: a run of table {doc['study']!r}, but {first['path']} is of {first['study']!r}")
        elif doc["recipe_key"] != first["recipe_key"]:
            raise ValueError(f"{path}: another recipe than {first['path']} "
                             f"({_first_difference(doc['recipe_key'], first['recipe_key'])})")
        elif doc["git_commit"] != first["git_commit"]:
            raise ValueError(f"{path}: made at commit {doc['git_commit'][:10]}, but {first['path']} at "
                             f"{first['git_commit'][:10]}; pool only runs of one commit")
        key = (doc["variant"], int(doc["seed"]))
        if key in seen:
            raise ValueError(f"{path}: {key[0]!r} seed {key[1]} is also in {seen[key]}")
        seen[key] = str(path)
        docs.append(doc)
    return docs


def seed_hits(report: dict, claims) -> list:
    """How often each ``better``/``larger_gain`` claim held seed by seed: the difference of the runs
    with the same seed in the paper's direction (> 0). [{"key", "claim", "held", "seeds"}]; claims of
    (near-)equality have no per-seed direction and are left out."""
    by = {(r["variant"], r["seed"]): (r.get("metrics") or {}) for r in report["runs"]}
    out = []
    for c in claims:
        if c.kind not in ("better", "larger_gain"):
            continue
        signs = (1, -1) if c.kind == "better" else (-1, 1, 1, -1)
        seeds = sorted({s for (_, s) in by})
        deltas = []
        for s in seeds:
            vals = [by.get((label, s), {}).get(c.metric) for label in c.variants]
            if all(v is not None for v in vals):
                deltas.append(sum(g * v for g, v in zip(signs, vals)))
        out.append({"key": c.key, "claim": c.text, "metric": c.metric, "held": sum(d > 0 for d in deltas),
                    "seeds": len(deltas), "deltas": [round(d, 2) for d in deltas]})
    return out


def hits_section(report: dict) -> list:
    """Markdown lines: how often each finding held seed by seed (workshop and pooled reports)."""
    rows = report.get("seed_hits") or []
    if not rows:
        return []
    lines = ["## Seed by seed", "",
             "How often the paper's direction held in a single pair of runs with the same seed — what one "
             "pair of laptops in a class would see:", "",
             "| claim | metric | held | per-seed Δ |", "|---|---|---|---|"]
    lines += [f"| {h['claim']} | {h['metric']} | {h['held']} of {h['seeds']} | "
              + ", ".join(f"{d:+.1f}" for d in h["deltas"]) + " |" for h in rows]
    return lines + [""]


def merge(paths, out="results", log=print, figure: bool = True) -> dict:
    """Pool run files into the table's report (the runner's, from the same runs); write
    ``<out>/<stem>_pooled.json`` and ``.md`` (and the figure); return the report."""
    from mrcnn_np.studies.registry import get_study  # noqa: PLC0415
    from mrcnn_np.studies.report import write_report  # noqa: PLC0415
    from mrcnn_np.studies.runner import build_report  # noqa: PLC0415

    docs = check_files([Path(p) for p in paths])
    study = get_study(docs[0]["study"])
    meta = dict(docs[0]["meta"])
    workshop = bool(meta.get("workshop"))
    variants = study.variants_for(workshop)
    labels = [v.label for v in variants]
    for d in docs:
        if d["variant"] not in labels:
            raise ValueError(f"{d['path']}: table {study.name!r} has no variant {d['variant']!r} in this recipe")
    docs.sort(key=lambda d: (labels.index(d["variant"]), int(d["seed"])))
    results = [d["result"] for d in docs]
    seeds = sorted({int(d["seed"]) for d in docs})
    missing = [f"{label} seed {s}" for label in labels for s in seeds
               if not any(d["variant"] == label and int(d["seed"]) == s for d in docs)]
    names = [Path(d["path"]).name for d in docs]
    meta["command"] = "python -m mrcnn_np ablate merge " + " ".join(names)
    meta["executor"] = f"pooled from {len(docs)} run file(s)"
    report = build_report(study, meta, results, seeds, variants)
    report["pooled"] = {"files": names, "missing": missing, "run_commands": sorted({d["command"] for d in docs}),
                        "compute_seconds": round(sum(float(r.get("seconds") or 0) for r in results), 1)}
    stem = Path(out) / (Path(docs[0]["path"]).name.split("__")[0] + "_pooled")
    report["files"] = [f"{stem}.md", f"{stem}.json"]
    report["seconds"] = {"data": 0.0, "trainings": report["pooled"]["compute_seconds"]}
    if study.finish is not None:
        study.finish(study, report, Path(out), "_pooled", log)
    report["data_seconds"] = 0.0
    report["wall_seconds"] = report["pooled"]["compute_seconds"]
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
    if figure:
        png = stem.with_name(stem.name + ".png")
        png.parent.mkdir(parents=True, exist_ok=True)
        pooled_figure(report, png)
        report["figure"] = png.name
        report["files"].append(str(png))
    write_report(report, stem, study.format_markdown(report))
    for line in missing_lines(report):
        log(line)
    return report


def missing_lines(report: dict) -> list:
    missing = report.get("pooled", {}).get("missing") or []
    if not missing:
        return []
    return [f"still missing ({len(missing)}): " + "; ".join(missing)]


def pooled_section(report: dict) -> list:
    """Markdown lines on where a pooled report's runs came from (empty for the runner's reports)."""
    p = report.get("pooled")
    if not p:
        return []
    lines = ["## Pooled runs", "",
             f"{len(p['files'])} run file(s), {p['compute_seconds'] / 60:.1f} min of training and evaluation in all: "
             + ", ".join(f"`{f}`" for f in p["files"]) + ".", ""]
    if p["missing"]:
        lines += [f"Still missing: {'; '.join(p['missing'])}.", ""]
    if report.get("figure"):
        lines += [f"![the class's runs beside the committed full run]({report['figure']})", ""]
    return lines


def committed_report(study) -> dict | None:
    """The committed full-run report of ``study`` in results/ (from the pretrained bodies where there
    is one, the paper's setting), or None."""
    from mrcnn_np.studies.findings import stored_reports  # noqa: PLC0415

    reports = stored_reports(study.name)
    return reports[-1][2] if reports else None


def pooled_figure(report: dict, path, committed: dict | None = None) -> None:
    """Each variant's runs (one dot per run file) and their mean ± std, beside the committed full-run table."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from mrcnn_np.studies.registry import get_study  # noqa: PLC0415

    if committed is None:
        committed = committed_report(get_study(report["study"]))
    metric = "box_AP" if report["study"] == "multitask" else "mask_AP"
    labels = [v["label"] for v in report["variants"]]
    fig, axes = plt.subplots(1, 2 if committed else 1, figsize=(11 if committed else 6, 3.2 + 0.25 * len(labels)),
                             squeeze=False, sharey=True)
    ax = axes[0][0]
    for i, label in enumerate(labels):
        vals = [r["metrics"][metric] for r in report["runs"] if r["variant"] == label and r.get("metrics")
                and r["metrics"].get(metric) is not None]
        ax.scatter(vals, [i] * len(vals), color="tab:blue", alpha=0.7, label="one run" if i == 0 else None)
        st = report["variants"][i]["ours"][metric]
        if st["mean"] is not None:
            ax.errorbar(st["mean"], i + 0.2, xerr=st["std"] or 0, fmt="s", color="black", capsize=3,
                        label="mean ± std" if i == 0 else None)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(metric.replace("_", " ") + " (x 100)")
    recipe = "workshop recipe" if report.get("workshop") else "quick recipe" if report.get("quick") else "recipe"
    ax.set_title(f"the class: {len(report['runs'])} runs, {recipe}, {report['recipe']['iterations']} iterations")
    ax.legend(loc="best", fontsize=8)
    if committed:
        ax2 = axes[0][1]
        for i, label in enumerate(labels):
            row = next((v for v in committed["variants"] if v["label"] == label), None)
            if row is None or row["ours"][metric]["mean"] is None:
                continue
            st = row["ours"][metric]
            ax2.errorbar(st["mean"], i, xerr=st["std"] or 0, fmt="s", color="tab:green", capsize=3)
        ax2.set_xlabel(metric.replace("_", " ") + " (x 100)")
        ax2.set_title(f"committed full run: {len(committed['seeds'])} seeds, "
                      f"{committed['recipe']['iterations']} iterations")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


__all__ = ["FORMAT", "check_files", "committed_report", "hits_section", "merge", "missing_lines", "pooled_figure",
           "pooled_section", "read_run_file", "recipe_key", "run_file_path", "seed_hits", "write_run_file"]
