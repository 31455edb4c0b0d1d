"""The workshop kit: exercises with times and solutions, the instructor's guide and its measured times."""

import json
import re
from pathlib import Path

import pytest

from bench import workshop_times as W
from mrcnn_np.bughunt.bugs import BY_NAME

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TIME_TAG = re.compile(r"\(≈ ?\d+ min")


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def exercises(path) -> list:
    """The top-level numbered items of the notebook's "## Exercises" markdown cell(s)."""
    items = []
    for cell in _cells(path):
        text = _src(cell)
        if cell["cell_type"] == "markdown" and re.search(r"^#+ *Exercises", text, re.M):
            items += re.findall(r"^(\d+)\. (.*(?:\n(?!\d+\. ).*)*)", text.split("Exercises", 1)[1], re.M)
    return items


def solved(nn: str) -> set:
    """The exercise numbers with a "### Exercise k" section in notebooks/solutions/NN_*.ipynb."""
    paths = sorted((ROOT / "notebooks" / "solutions").glob(f"{nn}_*.ipynb"))
    return {int(k) for p in paths for c in _cells(p) if c["cell_type"] == "markdown"
            for k in re.findall(r"^### Exercise (\d+)", _src(c), re.M)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_exercise_states_its_time_and_two_have_solutions(path):
    items = exercises(path)
    assert len(items) >= 2, f"{path.name}: no Exercises cell with numbered items"
    untimed = [k for k, text in items if not TIME_TAG.search(text)]
    assert not untimed, f"{path.name}: exercises {untimed} state no time (*(≈ N min)*)"
    numbers = {int(k) for k, _ in items}
    have = solved(path.name[:2])
    assert len(have & numbers) >= 2, f"{path.name}: solutions of exercises {sorted(have)}; need two of {sorted(numbers)}"


def test_the_solutions_are_stored_without_outputs():
    paths = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
    assert len(paths) >= len(NOTEBOOKS)
    for p in paths:
        for c in _cells(p):
            if c["cell_type"] == "code":
                assert not c.get("outputs") and c.get("execution_count") is None, f"{p.name}: stored outputs"


def test_the_plans_name_real_notebooks_bugs_and_solved_exercises():
    for plan, rows in W.PLANS.items():
        for minutes, what, nbs, exs, bugs, pooled in rows:
            assert all((ROOT / "notebooks" / f"{n}.ipynb").is_file() for n in nbs), (plan, nbs)
            assert all(b in BY_NAME for b in bugs), (plan, bugs)
            for ex in exs:
                nn, nums = ex.split(":")
                assert {int(k) for k in nums.split(",")} <= solved(nn), (plan, ex)
        assert sum(r[0] for r in rows) == {"3 hours": 180, "90 minutes": 90}[plan]


def test_workshop_guide_times_are_the_scripts_output():
    """docs/WORKSHOP.md's times block is ``python -m bench.workshop_times``'s output (measured, not typed)."""
    guide = (ROOT / "docs" / "WORKSHOP.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- workshop-times:begin[^>]*-->\n(.*?)<!-- workshop-times:end -->", guide, re.S)
    assert block, "docs/WORKSHOP.md has no workshop-times block"
    assert block.group(1) == W.block(), "run python -m bench.workshop_times and paste its output into the block"


def test_stored_solution_times_belong_to_todays_solution_notebooks():
    from bench.render_notebooks import code_fingerprint

    store = json.loads(W.STORE.read_text())
    names = {p.stem for p in W.solution_paths()}
    assert set(store["solutions"]) == names, "re-measure: python -m bench.workshop_times --measure"
    for p in W.solution_paths():
        fp = code_fingerprint(json.loads(p.read_text(encoding="utf-8")))
        assert store["solutions"][p.stem]["fingerprint"] == fp, f"{p.name} changed since it was timed: --measure"
