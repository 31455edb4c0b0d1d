"""Ablation tables on the study runner: every variant of every table builds and trains a step, the C5 (stride 32)
layout, the tables' contents, mean ± std, a --quick table through the CLI (files and fields),
the same table on a Dask LocalCluster with identical numbers, resuming, diverged runs, and
one-line CLI errors."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from mrcnn_np import cli
from mrcnn_np.detection.config import with_fields
from mrcnn_np.detection.mask_rcnn import LOSS_NAMES, MaskRCNN
from mrcnn_np.detection.pooler import infer_scales
from mrcnn_np.engine import read_losses
from mrcnn_np.studies.ablation import METRICS, QUICK_RECIPE, format_markdown, model_config
from mrcnn_np.studies.analyses import oracle_mask_iou, runs_on_disk, softmax_readout
from mrcnn_np.studies.registry import ABLATION_TABLES, get_table
from mrcnn_np.studies.report import aggregate, mean_std
from mrcnn_np.studies.runner import run_job, slug, train_config
from mrcnn_np.studies.tables import TABLES, run_table
from tests.model_checks import assert_loss_trains_every_parameter, scene_batch

ALL_VARIANTS = [(t.name, v.label) for t in TABLES.values() for v in t.variants]
SMALL = {"transform.min_size": (64,), "transform.max_size": 64, "rpn.pre_nms_top_n_train": 200,
         "rpn.post_nms_top_n_train": 100, "roi_heads.batch_size_per_image": 32}


@pytest.mark.parametrize("table,label", ALL_VARIANTS, ids=[f"{t}-{slug(v)}" for t, v in ALL_VARIANTS])
def test_every_variant_builds_and_trains_one_step(table, label):
    t = get_table(table)
    variant = t.variant(label)
    full = model_config(t, variant, num_classes=6)
    assert full == with_fields(full, **variant.changes)         # the variant's changes are in the model
    cfg = with_fields(full, **SMALL)
    model = MaskRCNN(cfg, seed=0)
    imgs, tgts = scene_batch([0, 1])
    out, inter = model(imgs, tgts, return_intermediates=True)
    if not cfg.mask_on:    # the multitask table's box-only model: no mask branch, no mask loss
        assert set(LOSS_NAMES) - {"loss_mask"} <= set(out) and "loss_mask" not in out and out["num_pos_rois"] > 0
        assert inter.get("mask_logits") is None and not hasattr(model.roi_heads, "mask_head")
        assert_loss_trains_every_parameter(model, out)
        return
    assert set(LOSS_NAMES) <= set(out) and out["num_pos_rois"] > 0
    m = cfg.mask_head.resolution
    assert inter["mask_logits"].shape[1:] == (1 if cfg.mask_head.class_agnostic else 6, m, m)
    assert_loss_trains_every_parameter(model, out)


def test_c5_runs_rpn_and_roi_heads_on_the_stride_32_map():
    c4 = with_fields(model_config(TABLES["roi"], TABLES["roi"].variants[0], 6), **SMALL)
    c5 = with_fields(model_config(TABLES["roi"], TABLES["roi"].variants[-1], 6), **SMALL)
    assert (c4.architecture, c5.architecture) == ("c4", "c5")
    batch = np.zeros((1, 3, 64, 64), np.float32)
    for cfg, stride, channels in ((c4, 16, 64), (c5, 32, 128)):
        model = MaskRCNN(cfg, seed=0)
        rpn_feats, roi_feats = model.features(batch)
        assert len(rpn_feats) == len(roi_feats) == 1 and rpn_feats[0].shape == (1, channels, 64 // stride, 64 // stride)
        assert infer_scales([f.shape for f in roi_feats], [(64, 64)]) == [1 / stride]
    c5_model = MaskRCNN(c5, seed=0)
    # the FPN layout's heads (fc box head, FCN mask head), not the res5 head
    assert hasattr(c5_model.roi_heads, "box_head") and not hasattr(c5_model.roi_heads, "res5")
    assert hasattr(c5_model.backbone, "layer4")
    with pytest.raises(ValueError, match="'fpn', 'c4' or 'c5'"):
        with_fields(c5, architecture="c6")


def test_tables_are_well_formed():
    assert tuple(TABLES) == ABLATION_TABLES
    for t in TABLES.values():
        labels = [v.label for v in t.variants]
        assert len(set(labels)) == len(labels) == len({slug(x) for x in labels}), t.name
        for v in t.variants:
            assert set(v.paper) <= set(METRICS), (t.name, v.label)
    roi = TABLES["roi"]
    ops = [(v.changes["architecture"], v.changes["roi_heads.roi_op"], v.changes["roi_heads.aggregation"])
           for v in roi.variants]
    assert ops == [(a, op, agg) for a in ("c4", "c5") for op, agg in
                   (("roipool", "max"), ("roiwarp", "max"), ("roiwarp", "avg"), ("roialign", "max"),
                    ("roialign", "avg"), ("roialign", "avg"), ("crop_and_resize", None))]
    assert [v.changes.get("roi_heads.aligned", False) for v in roi.variants] == [False] * 5 + [True, False] + \
        [False] * 5 + [True, False]
    # spot checks against docs/PAPER_TABLES.md
    assert roi.variant("RoIAlign (avg), stride 32").paper == {
        "mask_AP": 30.9, "mask_AP50": 51.8, "mask_AP75": 32.1, "box_AP": 34.0, "box_AP50": 55.3, "box_AP75": 36.4}
    assert roi.variant("RoIWarp (avg), stride 32").paper == {}
    assert TABLES["mask_loss"].variant("softmax (multinomial)").paper["mask_AP"] == 24.8
    assert TABLES["backbone"].variant("FPN, layers (1, 1, 3, 1)").paper["mask_AP75"] == 37.5
    with pytest.raises(ValueError, match="unknown ablation table 'nope'"):
        get_table("nope")
    with pytest.raises(ValueError, match="has no variant"):
        roi.variant("RoIMagic")


def test_train_config_from_the_recipe(tmp_path):
    cfg = train_config(TABLES["roi"], dict(QUICK_RECIPE, milestones=[0.5]), 3, tmp_path / "r")
    assert (cfg.iterations, cfg.batch_size, cfg.seed, cfg.milestones) == (4, 1, 3, (0.5,))
    assert cfg.out_dir == str(tmp_path / "r") and cfg.eval_images == 0


def test_mean_std_and_aggregate():
    assert mean_std([10.0, 12.0, 14.0]) == {"mean": 12.0, "std": 2.0, "n": 3}   # sample std (ddof 1)
    assert mean_std([5.0]) == {"mean": 5.0, "std": None, "n": 1}
    assert mean_std([None]) == {"mean": None, "std": None, "n": 0}
    runs = [{"variant": "a", "metrics": dict.fromkeys(METRICS, x)} for x in (1.0, 2.0, 6.0)]
    runs += [{"variant": "b", "metrics": None}, {"variant": "b", "metrics": dict(dict.fromkeys(METRICS, 4.0),
                                                                                box_AP=None)}]
    agg = aggregate(runs, ["a", "b"], METRICS)
    assert agg["a"]["mask_AP75"]["mean"] == pytest.approx(3.0)
    assert agg["a"]["mask_AP75"]["std"] == pytest.approx(np.std([1, 2, 6], ddof=1))
    assert agg["b"]["mask_AP"] == {"mean": 4.0, "std": None, "n": 1}                # the diverged run is left out
    assert agg["b"]["box_AP"]["n"] == 0


# ---------------------------------------------------------------- whole tables (quick recipe)
@pytest.fixture(scope="module")
def quick_local(tmp_path_factory):
    """The quick mask_loss table through the CLI, on the local process pool."""
    tmp = tmp_path_factory.mktemp("ablate")
    rc = cli.main(["ablate", "mask_loss", "--quick", "--out", str(tmp / "results"), "--data-root",
                   str(tmp / "data"), "--runs-root", str(tmp / "runs"), "--no-progress"])
    assert rc == 0
    return tmp, json.loads((tmp / "results" / "ablation_mask_loss_quick.json").read_text())


def test_quick_table_writes_markdown_and_json(quick_local, capsys):
    tmp, report = quick_local
    for key in ("command", "seeds", "git_commit", "git_dirty", "wall_seconds", "recipe", "data", "variants", "runs"):
        assert key in report, key
    assert report["command"].startswith("python -m mrcnn_np ablate mask_loss --seeds 1 --workers 2 --quick")
    assert report["command"].endswith(f"--data-root {tmp / 'data'} --runs-root {tmp / 'runs'}")
    assert report["seeds"] == [0] and report["quick"] and report["wall_seconds"] > 0
    assert [v["label"] for v in report["variants"]] == [v.label for v in TABLES["mask_loss"].variants]
    assert report["variants"][0]["paper"]["mask_AP"] == 24.8
    assert set(report["variants"][0]["ours"]) == set(METRICS)
    assert len(report["runs"]) == 3 and all(r["metrics"] is not None and r["seconds"] > 0 for r in report["runs"])
    assert report["data"]["train_images"] == QUICK_RECIPE["train_images"]
    md = (tmp / "results" / "ablation_mask_loss_quick.md").read_text()
    assert "| variant | mask AP | AP50 | AP75 | box AP |" in md and report["command"] in md
    assert "| softmax (multinomial) | 0 |" in md                                    # the per-run rows
    assert not (tmp / "results" / "ablation_mask_loss.md").exists()                # quick never replaces results
    for run in report["runs"]:
        assert (tmp / "runs" / "ablation" / "mask_loss_quick").resolve() in Path(run["run_dir"]).parents
    assert "## Note" not in md
    assert format_markdown(dict(report, note="paused for 3 min")).endswith("\n## Note\n\npaused for 3 min\n")


def test_dask_local_cluster_gives_the_local_pool_numbers(quick_local, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    tmp, local = quick_local
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        remote = run_table("mask_loss", quick=True, scheduler=cluster.scheduler_address, out=tmp_path / "results",
                           data_root=tmp / "data", runs_root=tmp_path / "runs", progress=False)
    assert remote["executor"].startswith("dask")
    for a, b in zip(local["runs"], remote["runs"]):
        assert (a["variant"], a["seed"]) == (b["variant"], b["seed"])
        assert a["metrics"] == b["metrics"] and a["segm"] == b["segm"]
        la, lb = read_losses(a["run_dir"]), read_losses(b["run_dir"])
        for col in ("total", *LOSS_NAMES, "grad_norm"):
            np.testing.assert_array_equal(la[col], lb[col], err_msg=col)     # bit-identical training
    assert [v["ours"] for v in local["variants"]] == [v["ours"] for v in remote["variants"]]


def test_resume_reuses_a_finished_run_and_foreign_folders_are_kept(quick_local, tmp_path):
    tmp, report = quick_local
    run = report["runs"][0]
    copy = tmp_path / "copy"
    shutil.copytree(run["run_dir"], copy)
    job = dict(json.loads((copy / "job.json").read_text()), run_dir=str(copy))
    job.pop("identity")
    again = run_job(dict(job, resume=True))
    assert again["reused"] and again["metrics"] == run["metrics"]
    changed = run_job(dict(job, resume=True, recipe=dict(job["recipe"], iterations=2)))   # another job: retrained
    assert not changed["reused"] and len(read_losses(copy)["total"]) == 2
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="is not a study's run folder"):
        run_job(dict(job, resume=False, run_dir=str(foreign)))
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow that makes the run diverge
def test_a_diverged_run_is_reported_not_raised(quick_local, tmp_path):
    tmp, report = quick_local
    job = dict(study="mask_loss", variant="softmax (multinomial)", seed=0, resume=False,
               data_dir=report["data"]["dir"], run_dir=str(tmp_path / "run"),
               recipe=dict(QUICK_RECIPE, lr=1e12, clip=0.0, warmup_iters=0))
    res = run_job(job)
    assert res["metrics"] is None and "iteration" in res["error"]


def test_cli_errors_are_one_line(capsys, tmp_path):
    assert cli.main(["ablate", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'nope'" in err
    assert cli.main(["ablate", "roi", "--quick", "--scheduler", "nonsense", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot connect to the Dask scheduler at 'nonsense'")
    assert not any(tmp_path.iterdir())                       # nothing generated before the address was checked
    with pytest.raises(ValueError, match="cannot connect to the Dask scheduler at 'tcp://127.0.0.1:1'"):
        run_table("roi", quick=True, scheduler="tcp://127.0.0.1:1", connect_timeout=0.5, data_root=tmp_path,
                  progress=False)


def test_analyses_of_a_finished_table(quick_local):
    """softmax_readout re-scores the softmax runs with both readouts; oracle_mask_iou scores every run's
    mask branch on ground-truth boxes. On the quick runs the numbers mean nothing; their shape does."""
    _, report = quick_local
    rows = softmax_readout(report)
    assert [r["variant"] for r in rows] == ["softmax (multinomial)"]
    (row,) = rows
    assert row["class"]["AP"] == pytest.approx(report["runs"][0]["metrics"]["mask_AP"], abs=1e-6)
    assert set(row["foreground"]) == {"AP", "AP50", "AP75"}
    oracle = oracle_mask_iou(report)
    assert [(r["variant"], r["seed"]) for r in oracle] == [(r["variant"], r["seed"]) for r in report["runs"]]
    for r in oracle:
        assert r["objects"] > 0 and 0 <= r["mean_iou"] <= 1 and 0 <= r["iou_090"] <= r["iou_075"] <= 1


def test_oracle_mask_iou_reads_c4_runs_through_res5(tmp_path):
    """A C4 run (RoI table, stride 16) goes through the res5 head; the oracle scores its masks."""
    from mrcnn_np.datasets.shapes import ensure_shapes
    table = TABLES["roi"]
    data = tmp_path / "data"
    ensure_shapes(data, 4, 2, table.data.image_size, 0, table.data, progress=False)
    label = "RoIAlign (avg), stride 16"
    res = run_job(dict(study="roi", variant=label, seed=0, data_dir=str(data), recipe=dict(QUICK_RECIPE),
                       run_dir=str(tmp_path / "run")))
    assert res["metrics"] is not None
    (row,) = oracle_mask_iou({"data": {"dir": str(data)}, "runs": [res]})
    assert (row["variant"], row["seed"]) == (label, 0)
    assert row["objects"] > 0 and 0 <= row["mean_iou"] <= 1 and 0 <= row["iou_090"] <= row["iou_075"] <= 1


def test_runs_on_disk(tmp_path):
    (tmp_path / "a").mkdir()
    runs = [{"run_dir": str(tmp_path / "a"), "metrics": {}}, {"run_dir": str(tmp_path / "gone"), "metrics": None}]
    assert runs_on_disk({"runs": runs})                      # a diverged run's folder is not needed
    runs[1]["metrics"] = {"mask_AP": 1.0}
    assert not runs_on_disk({"runs": runs})
