"""Classroom-pooled tables (``mrcnn_np.studies.pooled``): one run file per laptop, ``ablate merge``."""

import dataclasses
import json
from pathlib import Path

import pytest

from mrcnn_np.cli import main
from mrcnn_np.studies import pooled, runner
from mrcnn_np.studies.ablation import QUICK_RECIPE, results_table
from mrcnn_np.studies.registry import get_study

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture()
def clean_commit(monkeypatch):
    """The runs record a clean commit (the test may run in a checkout with uncommitted changes)."""
    monkeypatch.setattr(runner, "git_commit", lambda: (COMMIT, False))


def _tiny_workshop():
    """The mask-loss table with its workshop variants and a tiny recipe (seconds, not a measurement)."""
    return dataclasses.replace(get_study("mask_loss"), workshop_recipe=dict(QUICK_RECIPE, seeds=2))


def test_merge_of_the_run_files_gives_the_runners_table(clean_commit, tmp_path):
    """The same (variant, seed) runs, once through the runner and once as a class's run files, give the same
    table, findings and seed-by-seed counts; the per-laptop runs reuse the runner's run folders."""
    study = _tiny_workshop()
    kw = dict(workers=1, data_root=tmp_path / "data", runs_root=tmp_path / "runs", progress=False, log=lambda s: None,
              workshop=True)
    whole = runner.run_study(study, out=tmp_path / "res", **kw)
    assert [v["label"] for v in whole["variants"]] == list(study.workshop_variants) and whole["workshop"] is True
    assert whole["backbone_init"] == "pretrained" and Path(whole["files"][1]).name == "ablation_mask_loss_workshop.json"
    files = []
    for label in study.workshop_variants:
        for seed in (1, 0):
            doc = runner.run_study(study, out=tmp_path / "shared", select=(runner.slug(label), seed), resume=True, **kw)
            assert doc["result"]["reused"] and doc["command"].endswith(f"--runs-root {tmp_path / 'runs'}")
            assert f"--variant {runner.slug(label)} --seed {seed}" in doc["command"]
            files.append(doc["path"])
    assert not (tmp_path / "shared" / "ablation_mask_loss_workshop.json").exists()   # one run: no report
    merged = pooled.merge(files, out=tmp_path / "class", log=lambda s: None)
    assert results_table(merged) == results_table(whole)
    assert merged["findings"] == whole["findings"] and merged["seed_hits"] == whole["seed_hits"]
    assert [v["ours"] for v in merged["variants"]] == [v["ours"] for v in whole["variants"]]
    assert merged["pooled"]["missing"] == [] and merged["seeds"] == [0, 1]
    for suffix in (".json", ".md", ".png"):
        assert (tmp_path / "class" / f"ablation_mask_loss_workshop_pooled{suffix}").is_file()
    md = (tmp_path / "class" / "ablation_mask_loss_workshop_pooled.md").read_text()
    assert "workshop recipe" in md and "## Pooled runs" in md and "## Seed by seed" in md
    # as soon as some files are in: the table so far, and what is missing
    part = pooled.merge(files[:3], out=tmp_path / "part", log=lambda s: None, figure=False)
    assert part["pooled"]["missing"] == [f"{study.workshop_variants[1]} seed 0"]   # files go seed 1, then 0
    assert part["variants"][1]["ours"]["mask_AP"]["n"] == 1


def _doc(tmp_path, name, **changes):
    """A run file as a laptop writes it (``write_run_file``), with ``changes`` to its meta."""
    meta = {"study": "mask_loss", "table": "mask_loss", "title": "Mask loss", "command": "python -m mrcnn_np ...",
            "git_commit": COMMIT, "git_dirty": False, "quick": False, "workshop": True,
            "recipe": {"iterations": 400}, "base": {}, "backbone_init": "pretrained", "freeze_at": 0,
            "data": {"dir": "/x", "config": {"rotate": False}, "train_images": 300, "val_images": 50,
                     "image_size": 128, "seed": 0, "stats": {}}}
    variant, seed = changes.pop("variant", "sigmoid (per-class binary)"), changes.pop("seed", 0)
    for key, value in changes.items():
        if key == "iterations":
            meta["recipe"] = {"iterations": value}
        else:
            meta[key] = value
    result = {"variant": variant, "seed": seed, "metrics": {"mask_AP": 30.0}, "seconds": 60.0}
    doc = pooled.write_run_file(tmp_path / name, meta, result)
    return doc["path"]


@pytest.mark.parametrize("changes, words", [
    ({"iterations": 1200}, "another recipe than .*recipe.iterations: 1200 vs 400"),
    ({"backbone_init": "scratch"}, "another recipe than .*backbone_init"),
    ({"git_commit": "f" * 40}, "made at commit ffffffffff, but .* at 0123456789"),
    ({"git_dirty": True}, "made from uncommitted code"),
    ({"study": "mask_head"}, "a run of table 'mask_head', but"),
    ({"seed": 0}, "'sigmoid \\(per-class binary\\)' seed 0 is also in"),
])
def test_merge_refuses_a_file_with_one_line_naming_it(changes, words, tmp_path, capsys):
    good = _doc(tmp_path, "a/ablation_mask_loss_workshop")
    bad = _doc(tmp_path, "b/ablation_mask_loss_workshop", **changes)
    with pytest.raises(ValueError, match=words) as e:
        pooled.check_files([good, bad])
    assert str(e.value).startswith(str(bad)) and "\n" not in str(e.value)
    assert main(["ablate", "merge", good, bad, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_not_a_run_file_is_refused_and_never_overwritten(tmp_path):
    other = tmp_path / "notes.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="notes.json: not a pooled run file"):
        pooled.check_files([_doc(tmp_path, "ablation_mask_loss_workshop"), other])
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json: cannot read"):
        pooled.read_run_file(tmp_path / "broken.json")
    mine = pooled.run_file_path(tmp_path / "x" / "ablation_mask_loss_workshop", "sigmoid (per-class binary)", 3)
    mine.parent.mkdir()
    mine.write_text("a student's own file")
    with pytest.raises(ValueError, match="exists and is not a pooled run file"):
        _doc(tmp_path, "x/ablation_mask_loss_workshop", seed=3)
    assert mine.read_text() == "a student's own file"
    with pytest.raises(ValueError, match="give the run files"):
        pooled.check_files([])


def test_seed_hits_count_the_paper_direction_per_seed():
    study = get_study("mask_loss")
    soft, sig = study.workshop_variants
    runs = [{"variant": v, "seed": s, "metrics": {"mask_AP": m}}
            for v, s, m in ((soft, 0, 20.0), (sig, 0, 30.0), (soft, 1, 25.0), (sig, 1, 24.0), (soft, 2, 21.0))]
    hits = pooled.seed_hits({"runs": runs}, study.claims)
    assert [(h["key"], h["held"], h["seeds"], h["deltas"]) for h in hits] == [
        ("2b_sigmoid_vs_softmax", 1, 2, [10.0, -1.0])]   # seed 2 has no sigmoid run; the agnostic claim is ~equality


def test_variant_and_seed_are_checked_before_anything_runs(tmp_path, capsys):
    base = ["ablate", "mask_loss", "--out", str(tmp_path / "o"), "--data-root", str(tmp_path / "d"),
            "--runs-root", str(tmp_path / "r")]
    assert main(base + ["--workshop", "--variant", "nope", "--seed", "0"]) == 2
    err = capsys.readouterr().err
    assert "--variant 'nope'" in err and "softmax_multinomial, sigmoid_per_class_binary" in err
    assert "class_agnostic" not in err                      # not in the workshop recipe
    assert main(base + ["--variant", "softmax_multinomial"]) == 2
    assert "--variant and --seed go together" in capsys.readouterr().err
    assert main(["ablate", "roi", "--workshop", "--out", str(tmp_path / "o")]) == 2
    assert "no workshop recipe" in capsys.readouterr().err
    assert main(["ablate", "mask_loss", "--workshop", "--quick"]) == 2
    assert main(["ablate", "mask_loss", "extra.json"]) == 2
    assert "run files go to 'ablate merge'" in capsys.readouterr().err
    assert not any(p.exists() for p in (tmp_path / "o", tmp_path / "d", tmp_path / "r"))


def test_the_study_finds_a_variant_by_label_or_folder_name():
    study = get_study("mask_loss")
    assert study.find_variant("sigmoid_per_class_binary").label == "sigmoid (per-class binary)"
    assert study.find_variant("Sigmoid (per-class binary)").label == "sigmoid (per-class binary)"
    assert study.find_variant("sigmoid_class_agnostic").label == "sigmoid, class-agnostic"
    with pytest.raises(ValueError, match="no such variant in its workshop recipe"):
        study.find_variant("sigmoid_class_agnostic", workshop=True)


def test_the_committed_class_run_merges_into_the_committed_workshop_table(tmp_path):
    """The committed workshop run (results/): merging its six run files reproduces the runner's report of the
    same runs (results/ablation_mask_loss_workshop.json): per-variant numbers, verdicts and seed-by-seed counts."""
    root = Path(__file__).resolve().parents[2] / "results"
    files = sorted((root / "pooled_mask_loss").glob("ablation_mask_loss_workshop__*.json"))
    assert len(files) == 6, files
    runner_report = json.loads((root / "ablation_mask_loss_workshop.json").read_text())
    merged = pooled.merge(files, out=tmp_path, log=lambda s: None, figure=False)
    assert merged["pooled"]["missing"] == [] and merged["seeds"] == runner_report["seeds"] == [0, 1, 2]
    assert merged["recipe"] == runner_report["recipe"] and merged["workshop"] is runner_report["workshop"] is True
    assert json.loads(json.dumps(merged["variants"])) == runner_report["variants"]
    assert merged["findings"] == runner_report["findings"] and merged["seed_hits"] == runner_report["seed_hits"]
    sig = next(f for f in merged["findings"] if f["key"] == "2b_sigmoid_vs_softmax")
    assert sig["verdict"] == "reproduces", sig
    committed = json.loads((root / "ablation_mask_loss_workshop_pooled.json").read_text())
    assert committed["variants"] == runner_report["variants"] and committed["findings"] == runner_report["findings"]
