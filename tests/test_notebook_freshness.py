"""The notebooks' stored outputs are those of their current code (issue 19, "render on GitHub").

``make notebooks-render`` (``python -m bench.render_notebooks``) executes every notebook in
full mode, stores the outputs and stamps ``metadata["mrcnn_np"]["code_fingerprint"]``: the
sha256 of the code cells' sources (``bench.render_notebooks.code_fingerprint``). Here, for
every notebook with stored outputs:

- the stamp equals the fingerprint of its code cells now (else the code changed and the
  outputs shown on GitHub are stale: render that notebook again);
- no stored output is an error;
- the file is at most 1.5 MB.

``REQUIRE_RENDERED``: while False, a notebook with neither outputs nor a stamp passes (the
notebooks are rendered all at once, at the end of a round of changes). Set it to True once
every notebook is committed rendered: then a notebook without outputs fails too.

``make test`` executes the notebooks with ``pytest --nbmake`` in quick mode; that must never
write them back (quick-mode outputs would replace the full-mode ones), which the last test
checks in the Makefile.
"""

import copy
import json
import re
from pathlib import Path

import pytest

from bench.render_notebooks import MAX_BYTES, code_fingerprint, size_problem, stamp

REQUIRE_RENDERED = True  # every notebook is committed with its full-mode outputs (make notebooks-render)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _has_outputs(nb) -> bool:
    return any(c.get("outputs") for c in nb["cells"] if c.get("cell_type") == "code")


def _error_cells(nb) -> list:
    """0-based indices of the code cells that store an error output."""
    return [i for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"
            and any(o.get("output_type") == "error" for o in c.get("outputs", []))]


def _staleness(nb) -> str | None:
    """None when nb's stored outputs belong to its code (or it stores none), else what is wrong."""
    info = nb.get("metadata", {}).get("mrcnn_np", {})
    if not _has_outputs(nb) and not info:
        return "no stored outputs" if REQUIRE_RENDERED else None
    if "code_fingerprint" not in info:
        return "stored outputs but no metadata['mrcnn_np']['code_fingerprint']"
    if info["code_fingerprint"] != code_fingerprint(nb):
        return "code changed, outputs not regenerated"
    if info.get("mode") != "full":
        return f"rendered in {info.get('mode')!r} mode, not full"
    return None


def _render_hint(path) -> str:
    return f"run `make notebooks-render ONLY={path.name[:2]}` (python -m bench.render_notebooks --only {path.name[:2]})"


# --- the fingerprint itself ---------------------------------------------------------------

def _toy():
    return {"metadata": {}, "nbformat": 4, "nbformat_minor": 5, "cells": [
        {"cell_type": "markdown", "id": "m0", "metadata": {}, "source": ["# Title\n", "prose"]},
        {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["x = 1\n", "print(x)"]},
        {"cell_type": "code", "id": "c2", "metadata": {}, "execution_count": None, "outputs": [],
         "source": "y = 2"},
    ]}


def test_fingerprint_changes_when_a_code_cell_changes():
    nb, edited = _toy(), _toy()
    edited["cells"][2]["source"] = "y = 3"
    assert code_fingerprint(nb) != code_fingerprint(edited)


def test_fingerprint_sees_text_moved_between_cells_and_cell_order():
    moved, swapped = _toy(), _toy()
    moved["cells"][1]["source"] = ["x = 1\n"]
    moved["cells"][2]["source"] = "print(x)y = 2"
    swapped["cells"][1], swapped["cells"][2] = swapped["cells"][2], swapped["cells"][1]
    fps = {code_fingerprint(_toy()), code_fingerprint(moved), code_fingerprint(swapped)}
    assert len(fps) == 3


def test_fingerprint_ignores_markdown_outputs_counts_and_metadata():
    nb = _toy()
    ran = copy.deepcopy(nb)
    ran["cells"][0]["source"] = "# Another title"
    ran["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    ran["cells"][1]["execution_count"] = 7
    ran["cells"][1]["metadata"] = {"tags": ["x"]}
    ran["metadata"]["kernelspec"] = {"name": "python3"}
    assert code_fingerprint(nb) == code_fingerprint(ran)


def test_fingerprint_normalises_line_endings_and_source_form():
    crlf = _toy()
    crlf["cells"][1]["source"] = "x = 1\r\nprint(x)"  # one string, Windows line endings
    assert code_fingerprint(crlf) == code_fingerprint(_toy())


def test_stamp_records_fingerprint_mode_and_date():
    nb = _toy()
    info = stamp(nb, "full", date="2026-01-02")
    assert nb["metadata"]["mrcnn_np"] == info == {
        "code_fingerprint": code_fingerprint(_toy()), "mode": "full", "date": "2026-01-02"}


def test_stamp_records_the_run_time_and_cpus_when_given():
    info = stamp(_toy(), "full", date="2026-01-02", seconds=12.345)
    assert info["seconds"] == 12.3 and info["cpus"] >= 1


def test_sanitize_writes_the_clone_path_as_repo_in_outputs_only():
    from bench.render_notebooks import ROOT as REPO, sanitize_outputs

    nb = _toy()
    nb["cells"][1]["source"] = f"print('{REPO}/data')"            # code is not touched
    nb["cells"][1]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": [f"data in {REPO}/data/x\n", "other\n"]},
        {"output_type": "display_data", "metadata": {},
         "data": {"text/plain": f"<{REPO}>", "image/png": f"{REPO}-not-text"}}]
    assert sanitize_outputs(nb) == 2
    out = nb["cells"][1]["outputs"]
    assert out[0]["text"] == ["data in <repo>/data/x\n", "other\n"] and out[1]["data"]["text/plain"] == "<<repo>>"
    assert out[1]["data"]["image/png"] == f"{REPO}-not-text" and str(REPO) in nb["cells"][1]["source"]


def test_full_mode_times_are_read_from_the_render_stamp(tmp_path):
    from bench.notebook_times import markdown_table, rendered_seconds

    nb = _toy()
    stamp(nb, "full", seconds=42.0)
    (tmp_path / "01_x.ipynb").write_text(json.dumps(nb))
    assert rendered_seconds(tmp_path / "01_x.ipynb")[0] == 42.0
    stamp(nb, "quick", seconds=3.0)
    (tmp_path / "02_y.ipynb").write_text(json.dumps(nb))
    assert rendered_seconds(tmp_path / "02_y.ipynb") == (None, None)     # a quick rendering is no full-mode time
    table = markdown_table({"01_x": {"quick": 1.0, "full": 42.0}, "02_y": {"quick": 2.0, "full": None}},
                           ["quick", "full"])
    assert "| `01_x` | 1 | 42 |" in table and "| **total** | 3 | — |" in table


def test_every_rendered_notebook_stores_its_full_mode_time():
    for path in NOTEBOOKS:
        info = _load(path)["metadata"].get("mrcnn_np", {})
        assert info.get("seconds", 0) > 0 and info.get("cpus", 0) >= 1, f"{path.name}: {_render_hint(path)}"


def test_size_problem_names_the_file_and_the_remedy(tmp_path):
    small, big = tmp_path / "01_small.ipynb", tmp_path / "02_big.ipynb"
    small.write_bytes(b"x" * MAX_BYTES)
    big.write_bytes(b"x" * (MAX_BYTES + 1))
    assert size_problem(small) is None
    msg = size_problem(big)
    assert "02_big.ipynb" in msg and "dpi" in msg


# --- every notebook in the repository -------------------------------------------------------

def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 18


def test_checks_catch_stale_outputs_and_error_outputs():
    nb = _toy()
    assert _staleness(nb) is None or REQUIRE_RENDERED                  # nothing stored yet
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    assert "no metadata" in _staleness(nb)                              # outputs without a stamp
    stamp(nb, "full")
    assert _staleness(nb) is None
    nb["cells"][0]["source"] = "# prose edited"
    assert _staleness(nb) is None                                       # prose does not count
    nb["cells"][2]["source"] = "y = 3"
    assert _staleness(nb) == "code changed, outputs not regenerated"
    stamp(nb, "quick")
    assert "quick" in _staleness(nb)
    assert _error_cells(nb) == []
    nb["cells"][2]["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}]
    assert _error_cells(nb) == [2]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_match_the_code(path):
    problem = _staleness(_load(path))
    assert problem is None, f"{path.name}: {problem}: {_render_hint(path)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_stored_output_is_an_error(path):
    bad = _error_cells(_load(path))
    assert not bad, f"{path.name}: cells {bad} (0-based) store an error output: fix them, then {_render_hint(path)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_file_size(path):
    assert size_problem(path) is None, size_problem(path)


def test_make_test_runs_nbmake_without_writing_notebooks_back():
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", text, re.M)
    assert recipe, "Makefile has no `test` target"
    assert "--nbmake" in recipe.group(1) and "--overwrite" not in recipe.group(1)
    assert "MRCNN_NP_QUICK=1" in recipe.group(1)


def test_render_stores_outputs_and_stamp_and_leaves_a_failing_notebook_alone(tmp_path):
    from bench.render_notebooks import render

    good, bad = tmp_path / "01_good.ipynb", tmp_path / "02_bad.ipynb"
    good.write_text(json.dumps(_toy()))
    failing = _toy()
    failing["cells"][2]["source"] = "raise ValueError('boom')"
    bad.write_text(json.dumps(failing))
    before = bad.read_bytes()
    render(good, timeout=120)
    nb = _load(good)
    assert "".join(nb["cells"][1]["outputs"][0]["text"]) == "1\n"
    assert nb["metadata"]["mrcnn_np"]["code_fingerprint"] == code_fingerprint(_toy())
    assert nb["metadata"]["mrcnn_np"]["mode"] == "full"
    with pytest.raises(Exception, match="boom"):
        render(bad, timeout=120)
    assert bad.read_bytes() == before and not list(tmp_path.glob("*.rendering"))


def test_readme_times_table_shows_the_rendered_full_mode_times():
    """README's notebook-times block is the output of ``python -m bench.notebook_times --full-from-render
    --modes quick``: its full-mode column must be the seconds the rendering stored in each notebook."""
    from bench.notebook_times import rendered_seconds

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- notebook-times:begin[^>]*-->\n(.*?)<!-- notebook-times:end -->", readme, re.S)
    assert block, "README.md has no notebook-times block"
    rows = dict(re.findall(r"^\| `([^`]+)` \| [^|]+ \| ([^|]+) \|$", block.group(1), re.M))
    assert sorted(rows) == sorted(p.stem for p in NOTEBOOKS)
    for path in NOTEBOOKS:
        seconds, _ = rendered_seconds(path)
        assert rows[path.stem].strip() == f"{seconds:.0f}", (path.name, "render again and paste the new table")
