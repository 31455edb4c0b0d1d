"""The studies train exactly as before the move to ``mrcnn_np/studies``: same model configs, TrainConfigs,
train() arguments, data sets, seeds and variants (so every ablation table and keypoints Table 4 would give
the numbers in results/ again, and the demo from scratch the scratch demo's; the demo now starts from the
shipped pretrained body by default, its only change).

``today_configs.json`` was captured from the code of commit 53f941f (``engine/demo.py``,
``engine/ablate.py``, ``engine/keypoints_demo.py``) by running each old runner with ``train``
and the data generators replaced by recorders: what every training received (the model config,
stored once by its hash under "models", the TrainConfig without its folder, the train() keyword
arguments) and what data set each runner asked for. Here the new runner is recorded the same way.
The run folders' places changed (the demo's is now runs/demo/teaching/seed0) and are not compared;
neither is ``resume`` (the old demo passed resume=True even for a fresh folder, where train()
starts afresh either way).
"""

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

import mrcnn_np.datasets.keypoints as keypoints_data
import mrcnn_np.datasets.shapes as shapes_data
import mrcnn_np.engine as engine
from mrcnn_np.studies.registry import ABLATION_TABLES, get_study
from mrcnn_np.studies.runner import run_study

BEFORE = json.loads((Path(__file__).parent / "today_configs.json").read_text())


def _jsonable(x):
    return json.loads(json.dumps(x, default=lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o)
                                 else list(o)))


class _Recorded(engine.TrainingDiverged):
    """Raised by the recording train(): the runner files the run as diverged and goes on."""


@pytest.fixture()
def recorder(monkeypatch):
    rec = {"data": [], "train": []}
    real_shapes, real_keypoints = shapes_data.ensure_shapes, keypoints_data.ensure_keypoints

    def ensure_shapes(out, n_train=2000, n_val=200, size=128, seed=0, config=None, progress=True):
        rec["data"].append(_jsonable(dict(kind="shapes", n_train=n_train, n_val=n_val, size=size, seed=seed,
                                          config=config)))
        return real_shapes(out, 4, 2, size, seed, config, progress=False)        # a tiny set of the same kind

    def ensure_keypoints(out, n_train=1000, n_val=100, size=128, seed=0, config=None, progress=True):
        rec["data"].append(_jsonable(dict(kind="keypoints", n_train=n_train, n_val=n_val, size=size, seed=seed,
                                          config=config)))
        return real_keypoints(out, 4, 2, size, seed, config, progress=False)

    def train(model_cfg, cfg, train_set, val_set=None, *, resume=False, stop_at=None, progress=None, log=print,
              threads=1, workers=1):
        c = dataclasses.asdict(cfg)
        c.pop("out_dir")
        model = _jsonable(model_cfg)
        # Fields added since the capture (pretraining), recorded apart from the captured config.
        rec.setdefault("body", []).append((model.pop("backbone_init"), model.pop("freeze_at")))
        text = json.dumps(model, sort_keys=True)
        rec["train"].append(dict(model=hashlib.sha1(text.encode()).hexdigest()[:10], train=_jsonable(c),
                                 val_set=val_set is not None, threads=threads, workers=workers))
        raise _Recorded("recorded")

    monkeypatch.setattr(shapes_data, "ensure_shapes", ensure_shapes)
    monkeypatch.setattr(keypoints_data, "ensure_keypoints", ensure_keypoints)
    monkeypatch.setattr(engine, "train", train)
    return rec


# rows added to a table since the capture (tables v2): their runs are new, the others must train as before
ADDED_SINCE = {"roi": {f"{row}, stride {s}" for row in ("RoIAlign (avg, aligned=True)", "crop_and_resize")
                       for s in (16, 32)}}


def _compare(key, rec, report):
    before = BEFORE["studies"][key]
    assert rec["data"] == before["data"], key
    added = ADDED_SINCE.get(key.split("/")[0], set())
    keep = [i for i, r in enumerate(report["runs"]) if r["variant"] not in added]
    assert len(keep) < len(report["runs"]) or not added, (key, "the added rows are not in the table")
    runs, train = [report["runs"][i] for i in keep], [rec["train"][i] for i in keep]
    assert report["seeds"] == before["seeds"] and [r["variant"] for r in runs] == before["variants"], key
    if "recipe" in before:
        assert _jsonable(report["recipe"]) == before["recipe"], key
    assert len(train) == len(before["train"]), key
    for i, (new, old) in enumerate(zip(train, before["train"])):
        old = {k: v for k, v in old.items() if k != "resume"}
        assert new["model"] in BEFORE["models"] or new["model"] == old["model"], (key, i, "unknown model config")
        assert new == old, (key, i, runs[i]["variant"])


# the tables of the first round, captured before the runner was rebuilt (the multitask table came later)
FIRST_ROUND = [t for t in ABLATION_TABLES if t != "multitask"]


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
@pytest.mark.parametrize("name", [*FIRST_ROUND, "keypoints"])
def test_tables_and_keypoints_train_as_before(name, quick, recorder, tmp_path):
    report = run_study(get_study(name), quick=quick, workers=1, out=tmp_path / "res", data_root=tmp_path / "data",
                       runs_root=tmp_path / "runs", progress=False, log=lambda s: None)
    assert all(r["error"] == "recorded" for r in report["runs"])
    assert set(recorder["body"]) == {("scratch", 0)}          # the tables' default: scratch, nothing frozen
    _compare(f"{name}/{'quick' if quick else 'full'}", recorder, report)


@pytest.mark.parametrize("init", [None, "scratch"], ids=["default", "scratch"])
def test_demo_trains_as_before(init, recorder, tmp_path):
    """The demo as ``make demo`` runs it: 2,700 iterations, 2 processes per step, seed 0; since the pretrained
    bodies, by default from the shipped body (the only change), and with --backbone-init scratch as before."""
    study = get_study("demo")
    with pytest.raises(engine.TrainingDiverged, match="the demo's training diverged: recorded"):
        run_study(study, workers=2, out=tmp_path / "res", data_root=tmp_path / "data", runs_root=tmp_path / "runs",
                  progress=False, log=lambda s: None, backbone_init=init)
    assert recorder["body"] == [("pretrained" if init is None else "scratch", 0)]
    before = BEFORE["studies"]["demo/full"]
    assert recorder["data"] == before["data"]
    assert recorder["train"] == [{k: v for k, v in t.items() if k != "resume"} for t in before["train"]]
