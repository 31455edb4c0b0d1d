"""The bug hunt's machinery: plant, reset, reveal, list and their refusals (on temporary copies).

Nothing here plants into the repository itself. ``bughunt check`` (each bug caught by its
test) is tests/bughunt/test_check.py.
"""

import ast
import os
import re
from pathlib import Path

import pytest

from mrcnn_np.bughunt import BUGS, STATE_FILE, BugHuntError, plant, read_state, reset, reveal
from mrcnn_np.bughunt.check import make_copy
from mrcnn_np.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_copy(ROOT, tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def copy(tmp_path):
    """A fresh copy of the files the bugs edit (enough for plant/reset/reveal)."""
    for rel in {e.path for b in BUGS for e in b.edits}:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((ROOT / rel).read_bytes())
    return tmp_path


def test_at_least_ten_bugs_with_every_field():
    assert len(BUGS) >= 10
    assert len({b.name for b in BUGS}) == len(BUGS)
    for b in BUGS:
        assert re.fullmatch(r"[a-z0-9-]+", b.name), b.name
        assert b.source and b.symptom and b.hint and b.edits, b.name
        for e in b.edits:   # the symptom and hint never give the place away
            assert Path(e.path).name not in b.symptom + b.hint, b.name


def test_every_old_text_is_in_the_code_as_often_as_expected():
    planted = read_state(ROOT)
    assert planted is None, f"bug {planted['bug']!r} is planted in this checkout: python -m mrcnn_np bughunt reset"
    for b in BUGS:
        for e in b.edits:
            text = (ROOT / e.path).read_text(encoding="utf-8")
            assert text.count(e.old) == e.count, (f"{b.name}: {e.path} holds its old text {text.count(e.old)} "
                                                  f"times, expected {e.count}: update mrcnn_np/bughunt/bugs.py")
            assert e.old != e.new


def test_every_named_test_exists():
    for b in BUGS:
        path, _, func = b.test.partition("::")
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert func in names, f"{b.name}: {b.test} not found"


@pytest.mark.parametrize("bug", BUGS, ids=lambda b: b.name)
def test_plant_and_reset_round_trip(copy, bug):
    before = {e.path: (copy / e.path).read_bytes() for e in bug.edits}
    mtimes = {p: (copy / p).stat().st_mtime_ns for p in before}
    state = plant(bug.name, copy)
    assert read_state(copy) == state and state["bug"] == bug.name
    for e in bug.edits:
        text = (copy / e.path).read_text(encoding="utf-8")
        assert text.count(e.new) >= e.count and e.old not in text
    for p in before:   # a new modification time: numba's cache must not keep the old kernel
        assert (copy / p).stat().st_mtime_ns > mtimes[p]
    diff = reveal(copy)
    removed = [ln for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    added = [ln for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    for e in bug.edits:   # every changed line of the edit is in the diff (an edit may be part of a line)
        assert f"--- a/{e.path}" in diff
        assert all(any(line in r for r in removed) for line in e.old.splitlines() if line not in e.new)
        assert all(any(line in a for a in added) for line in e.new.splitlines() if line not in e.old)
    assert reset(copy) == bug.name
    assert not (copy / STATE_FILE).exists()
    for p, data in before.items():
        assert (copy / p).read_bytes() == data


def test_plant_refuses_a_second_bug(copy):
    plant(BUGS[0].name, copy)
    with pytest.raises(BugHuntError, match=f"bug '{BUGS[0].name}' is planted"):
        plant(BUGS[1].name, copy)


def test_plant_refuses_changed_code_and_writes_nothing(copy):
    bug = next(b for b in BUGS if len(b.edits) == 1)
    e = bug.edits[0]
    path = copy / e.path
    path.write_text(path.read_text().replace(e.old, e.old.replace("  ", " ", 1)))
    changed = path.read_bytes()
    with pytest.raises(BugHuntError, match="does not contain the exact text"):
        plant(bug.name, copy)
    assert path.read_bytes() == changed and not (copy / STATE_FILE).exists()


def test_reset_refuses_nothing_planted_and_edited_files(copy):
    with pytest.raises(BugHuntError, match="no bug is planted"):
        reset(copy)
    with pytest.raises(BugHuntError, match="nothing to reveal"):
        reveal(copy)
    bug = BUGS[0]
    plant(bug.name, copy)
    path = copy / bug.edits[0].path
    path.write_text(path.read_text() + "# the student's fix attempt\n")
    edited = path.read_bytes()
    with pytest.raises(BugHuntError, match="was edited since"):
        reset(copy)
    assert path.read_bytes() == edited and (copy / STATE_FILE).exists()


def test_unknown_name_and_corrupt_state(copy):
    with pytest.raises(BugHuntError, match="no bug named 'nope'"):
        plant("nope", copy)
    (copy / STATE_FILE).write_text("{not json")
    with pytest.raises(BugHuntError, match="not a bug hunt state file"):
        reset(copy)


def test_cli_plant_list_reveal_reset(copy, capsys):
    bug = BUGS[3]
    assert main(["bughunt", "plant", bug.name, "--root", str(copy)]) == 0
    out = capsys.readouterr().out
    assert bug.test in out and "Symptom:" in out
    assert all(e.path not in out for e in bug.edits)
    assert main(["bughunt", "list", "--root", str(copy)]) == 0
    out = capsys.readouterr().out
    assert all(b.name in out for b in BUGS) and f"planted now: {bug.name}" in out
    assert "mrcnn_np/" not in out and ".py" not in out   # never the location
    assert main(["bughunt", "hint", "--root", str(copy)]) == 0
    assert "Hint:" in capsys.readouterr().out
    assert main(["bughunt", "reveal", "--root", str(copy)]) == 0
    assert f"+++ b/{bug.edits[0].path}" in capsys.readouterr().out
    assert main(["bughunt", "reset", "--root", str(copy)]) == 0
    capsys.readouterr()
    assert main(["bughunt", "reset", "--root", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no bug is planted") and err.count("\n") == 1


def test_make_copy_has_the_package_and_tests(pristine):
    assert (pristine / "mrcnn_np" / "bughunt" / "bugs.py").is_file()
    assert (pristine / "tests" / "conftest.py").is_file() and (pristine / "pyproject.toml").is_file()
    assert not any("__pycache__" in p.parts for p in pristine.rglob("*"))
    assert not os.path.islink(pristine / "mrcnn_np" / "gpu" / "kernels")   # followed, not dangling
