"""The package's layering, read from the source with ``ast`` (nothing is imported).

Rules (docs/DESIGN.md; issue "One house for the studies", item 5):

* ``ops/`` imports nothing from autodiff, detection, engine, datasets, studies;
* ``gpu/`` (kernels and their launchers, the bottom layer) imports nothing from autodiff
  (nor from ops: ops dispatch *down* to gpu for the CUDA twin);
* ``autodiff/`` imports nothing from detection, engine, datasets, studies;
* ``detection/`` imports nothing from datasets, engine, studies;
* no module imports a private ``_name`` from another mrcnn_np module;
* a private *module* (``ops/_x.py``) is imported only from within its own package;
  the private modules of the root package (``mrcnn_np/_checks.py``) serve every subpackage,
  all of which are inside the root package, so importing them is fine everywhere;
* the graph of imports between subpackages (root modules count as their own nodes) has no
  cycle. Imports inside functions count too: a lazy import is still a dependency.

A deliberate exception would be listed in ALLOWED below with its reason (a listed entry
that no longer occurs fails the test, so the list cannot go stale); today there is none.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PKG = "mrcnn_np"
ROOT = Path(__file__).resolve().parents[1] / PKG

FORBIDDEN = {
    "ops": {"autodiff", "detection", "engine", "datasets", "studies"},
    "gpu": {"autodiff", "ops", "detection", "engine", "datasets", "studies"},
    "autodiff": {"detection", "engine", "datasets", "studies"},
    "detection": {"datasets", "engine", "studies"},
}

# (rule, importing module, imported name) -> reason.
ALLOWED: dict = {}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path):
    """(imported module, imported name or None) for every import in the file, absolute."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                yield mod, a.name


def all_modules():
    return sorted(p for p in ROOT.rglob("*.py") if "kernels" not in p.parts)


def subpackage(mod: str) -> str:
    """Node of the package graph: the first component under mrcnn_np (a root module is its own)."""
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else PKG


def is_subpackage_module(target: str) -> bool:
    """True when mrcnn_np.<target...> names a module (file or package) in the tree."""
    rel = Path(*target.split(".")[1:]) if "." in target else Path()
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def findings():
    """Every violation as (rule, importing module, imported thing)."""
    out = set()
    for path in all_modules():
        me = module_name(path)
        mine = subpackage(me)
        for mod, name in imports_of(path):
            if mod != PKG and not mod.startswith(PKG + "."):
                continue
            target = f"{mod}.{name}" if name and is_subpackage_module(f"{mod}.{name}") else mod
            other = subpackage(target)
            if other in FORBIDDEN.get(mine, ()):
                out.add(("forbidden", me, target))
            # a private module: its own package may import it; mrcnn_np/_x.py serves all
            parts = target.split(".")
            for i, part in enumerate(parts[1:], start=1):
                owner = ".".join(parts[:i])
                if part.startswith("_") and not part.startswith("__") and owner != PKG \
                        and not (me == owner or me.startswith(owner + ".")):
                    out.add(("private module", me, target))
            # a private name taken from another module
            if name and name.startswith("_") and not name.startswith("__") \
                    and target == mod and mod != me:
                out.add(("private name", me, f"{mod}.{name}"))
    return out


def package_graph():
    graph = defaultdict(set)
    for path in all_modules():
        me = module_name(path)
        for mod, name in imports_of(path):
            if mod == PKG or mod.startswith(PKG + "."):
                target = f"{mod}.{name}" if name and is_subpackage_module(f"{mod}.{name}") else mod
                a, b = subpackage(me), subpackage(target)
                if a != b and b != PKG:
                    graph[a].add(b)
    return graph


def find_cycle(graph):
    """One cycle of the directed graph as a list of nodes, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_the_package_is_found():
    mods = {module_name(p) for p in all_modules()}
    assert {"mrcnn_np.ops.dispatch", "mrcnn_np.gpu.launch", "mrcnn_np.detection.pooler"} <= mods


def test_layering_rules_hold():
    found = findings()
    new = sorted(f for f in found if f not in ALLOWED)
    assert not new, "layering violations:\n" + "\n".join(" ".join(f) for f in new)


def test_allow_list_is_not_stale():
    stale = sorted(k for k in ALLOWED if k not in findings())
    assert not stale, "fixed: remove from ALLOWED:\n" + "\n".join(" ".join(k) for k in stale)


def test_no_import_cycle_between_subpackages():
    cycle = find_cycle(package_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("source, rule", [
    ("from ..autodiff import tensor\n", "forbidden"),
    ("def f():\n    from ..detection.pooler import pool_rois\n", "forbidden"),
    ("from ..detection._private import x\n", "private module"),
    ("from .roi_align import _helper\n", "private name"),
])
def test_the_checker_sees_violations(tmp_path, monkeypatch, source, rule):
    """A planted bad import in a fake ops module is reported (the checker can fail)."""
    fake = tmp_path / PKG / "ops"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path / PKG)
    assert rule in {f[0] for f in findings()}


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_no_module_longer_than_400_lines():
    """One concept per file: a module that outgrows 400 lines is split (docs/DESIGN.md)."""
    long = {str(p.relative_to(ROOT.parent)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
