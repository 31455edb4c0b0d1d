"""The documentation the code cites exists, and every citation points inside the repository.

The code, tests, benchmarks, kernels and notebooks cite ``docs/REFERENCE.md §8.1``,
``docs/REFERENCE.md section 11``, ``docs/DESIGN.md``, ``docs/PAPER_TABLES.md``. A clone of the
repository must be self-contained, so this module checks, over every scanned file:

  (a) every cited ``docs/<file>.md`` exists;
  (b) every cited section exists as a heading of that file (``## N.`` or ``### N.M``);
  (c) nothing cites a path outside the repository (``../shared``, ``/work/...``);
  (d) no citation uses a bare form (``REFERENCE §``, ``REFERENCE.md`` without ``docs/``).

Each failure message lists every offending ``file:line``.

Citation forms understood after ``docs/<file>.md`` (an optional closing backtick between):
``§8``, ``§8.1``, ``section 8``, ``sections 7-8``, ``§7–8``, ``§6, §10``,
``§4, §10 and §11``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()

SCANNED_DIRS = ("mrcnn_np", "tests", "bench", "kernels", "notebooks", "docs")
SCANNED_FILES = ("README.md",)
TEXT_SUFFIXES = {".py", ".md", ".cu", ".h", ".ipynb", ".txt", ".toml", ".cfg", ".yml", ".yaml"}
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}

DOC_NAMES = ("REFERENCE", "DESIGN", "PAPER_TABLES")

# ---------------------------------------------------------------------------- parsing
_NUM = r"\d+(?:\.\d+)?"
_SEC = rf"(?:§\s*|sections?\s+)({_NUM})(?:\s*[-–]\s*§?\s*({_NUM}))?"   # one section or a range
_CITE = re.compile(r"docs/([A-Za-z0-9_\-]+\.md)")
_FIRST = re.compile(rf"`?\s*{_SEC}")
_NEXT = re.compile(rf"\s*(?:,\s*and\b|,|\band\b|&)\s*{_SEC}")
_OUTSIDE = re.compile(r"\.\./shared\b|(?<![\w.:/])/(?:work|home|Users|root|mnt)/")
_BARE = re.compile(rf"(?<!docs/)(?<!\]\()\b(?:{'|'.join(DOC_NAMES)})\.md\b"   # not a docs/ link target
                   r"|(?<![\w/.])REFERENCE\s*§")
_LINK = re.compile(r"\]\(([^)#\s:]+\.md)(?:#[^)]*)?\)")


def _expand(first: str, last: str | None) -> list[str]:
    """'7', '8' -> ['7', '8']; a range of whole sections includes the ones between."""
    if last is None:
        return [first]
    if "." not in first and "." not in last and int(first) <= int(last):
        return [str(k) for k in range(int(first), int(last) + 1)]
    return [first, last]


def parse_citations(line: str) -> list[tuple[str, list[str]]]:
    """Every ``docs/<file>.md`` citation in ``line`` as (file name, [section numbers cited])."""
    found = []
    for m in _CITE.finditer(line):
        sections = []
        pos = m.end()
        s = _FIRST.match(line, pos)
        while s:
            sections += _expand(s.group(1), s.group(2))
            pos = s.end()
            s = _NEXT.match(line, pos)
        found.append((m.group(1), [x.rstrip(".") for x in sections]))
    return found


# ---------------------------------------------------------------------------- files
def scanned_files() -> list[Path]:
    files = [ROOT / f for f in SCANNED_FILES if (ROOT / f).is_file()]
    for d in SCANNED_DIRS:
        for p in sorted((ROOT / d).rglob("*")):
            if (p.is_file() and p.suffix in TEXT_SUFFIXES and p.resolve() != THIS
                    and not SKIPPED_PARTS & set(p.parts)):
                files.append(p)
    return files


def _unescape_json(text: str) -> str:
    """Notebook JSON may write non-ASCII characters (such as §) as \\uXXXX escapes."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


@lru_cache(maxsize=None)
def lines_of(path: Path) -> tuple[tuple[int, str], ...]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        text = _unescape_json(text)
    return tuple(enumerate(text.splitlines(), start=1))


def _where(path: Path, lineno: int) -> str:
    return f"{path.relative_to(ROOT)}:{lineno}"


@lru_cache(maxsize=None)
def headings(name: str) -> frozenset[str]:
    """Section numbers of docs/NAME: '## N.' gives 'N', '### N.M' gives 'N.M'."""
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    top = re.findall(r"^##\s+(\d+)\.", text, flags=re.M)
    sub = re.findall(r"^###\s+(\d+\.\d+)\b", text, flags=re.M)
    return frozenset(top + sub)


def all_citations():
    for path in scanned_files():
        for lineno, line in lines_of(path):
            for name, sections in parse_citations(line):
                yield path, lineno, name, sections


def _fail_if(offenders: list[str], what: str) -> None:
    if offenders:
        pytest.fail(f"{what} ({len(offenders)}):\n  " + "\n  ".join(offenders), pytrace=False)


# ---------------------------------------------------------------------------- tests
@pytest.mark.parametrize("line, expected", [
    ("see docs/REFERENCE.md §8.1): outside", [("REFERENCE.md", ["8.1"])]),
    ("Spec: docs/REFERENCE.md section 8.", [("REFERENCE.md", ["8"])]),
    ("(docs/REFERENCE.md sections 7-8, verified)", [("REFERENCE.md", ["7", "8"])]),
    ("`docs/REFERENCE.md` §7–8; the tests", [("REFERENCE.md", ["7", "8"])]),
    ("caller divides (docs/REFERENCE.md §6, §10).", [("REFERENCE.md", ["6", "10"])]),
    ("`docs/REFERENCE.md` §4, §10 and §11.", [("REFERENCE.md", ["4", "10", "11"])]),
    ("docs/REFERENCE.md §11 step 5 describes", [("REFERENCE.md", ["11"])]),
    ("docs/REFERENCE.md §14: RoI [10, 10, 66, 38]", [("REFERENCE.md", ["14"])]),
    ("docs/REFERENCE.md §15; keypoints: up to 20", [("REFERENCE.md", ["15"])]),
    ("(see docs/DESIGN.md): boxes and docs/PAPER_TABLES.md", [("DESIGN.md", []),
                                                              ("PAPER_TABLES.md", [])]),
])
def test_parse_citations(line, expected):
    assert parse_citations(line) == expected


def test_scan_covers_code_tests_notebooks_and_docs():
    rel = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    assert "README.md" in rel and "docs/REFERENCE.md" in rel
    for top in ("mrcnn_np/", "tests/", "kernels/", "notebooks/"):
        assert any(r.startswith(top) for r in rel), top
    assert any(r.endswith(".ipynb") for r in rel)
    assert "tests/test_docs.py" not in rel  # its own examples are not citations


def test_reference_has_sections_0_to_17():
    got = headings("REFERENCE.md")
    assert {str(k) for k in range(18)} <= got, sorted(got)
    for sub in ("3.1", "3.2", "3.3", "4.1", "4.2", "4.3", "8.1", "8.2", "8.3", "8.4"):
        assert sub in got, sub


def test_readme_of_docs_lists_every_doc():
    text = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for name in DOC_NAMES:
        assert f"docs/{name}.md" in text, name


def test_cited_docs_exist():
    offenders = [f"{_where(p, n)}: docs/{name} does not exist"
                 for p, n, name, _ in all_citations() if not (ROOT / "docs" / name).is_file()]
    _fail_if(offenders, "citations of missing files under docs/")


def test_cited_sections_exist():
    offenders = []
    for path, lineno, name, sections in all_citations():
        if not (ROOT / "docs" / name).is_file():
            continue  # reported by test_cited_docs_exist
        have = headings(name)
        offenders += [f"{_where(path, lineno)}: docs/{name} has no section {s} "
                      f"(no heading '## {s}.' / '### {s}')" for s in sections if s not in have]
    _fail_if(offenders, "citations of sections that do not exist")


def test_no_citation_outside_repository():
    offenders = [f"{_where(p, n)}: {m.group(0)!r} in {line.strip()[:100]!r}"
                 for p in scanned_files() for n, line in lines_of(p)
                 for m in _OUTSIDE.finditer(line)]
    _fail_if(offenders, "paths outside the repository (cite docs/<file>.md instead)")


def test_no_bare_citations():
    offenders = [f"{_where(p, n)}: {m.group(0)!r} in {line.strip()[:100]!r}"
                 for p in scanned_files() for n, line in lines_of(p)
                 for m in _BARE.finditer(line)]
    _fail_if(offenders, "citations without the docs/ prefix (write docs/REFERENCE.md §N)")


def test_relative_links_in_docs_resolve():
    offenders = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        for lineno, line in lines_of(path):
            offenders += [f"{_where(path, lineno)}: link to {m.group(1)} does not resolve"
                          for m in _LINK.finditer(line)
                          if not (path.parent / m.group(1)).is_file()]
    _fail_if(offenders, "broken links in docs/")
