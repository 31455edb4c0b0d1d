"""Planting a bug into a working copy, and taking it out again, byte for byte.

``plant(name, root)`` replaces the exact old text of each of the bug's edits by the new text
in the files under ``root`` (a checkout: ``root/mrcnn_np/...``) and records what it did in
``root/.bughunt.json``: the bug, and for each file its SHA-256 before and after and where
the new text was put. ``reset(root)`` puts the old text back at those places and checks
that each file hashes as it did before planting; it refuses to touch a file that was
edited since (its hash is no longer the one recorded after planting). ``reveal(root)``
is the unified diff of the planted bug.

Every refusal is a ``BugHuntError`` (a ``ValueError``: the command line prints it as one
``error:`` line and exits 2) and leaves the files as they were.

numba: a kernel compiled with ``cache=True`` is reloaded from ``__pycache__`` only while
its source file keeps the modification time and size recorded with it. Every write here
gives the file a new modification time, so a planted (or removed) bug in a numba kernel
is compiled afresh on the next run instead of hiding behind the cache.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import time
from pathlib import Path

from .bugs import BY_NAME

STATE_FILE = ".bughunt.json"


class BugHuntError(ValueError):
    """A plant/reset/reveal that cannot be done; the message is one line."""


def default_root() -> Path:
    """The checkout this package was imported from (the folder holding ``mrcnn_np/``)."""
    return Path(__file__).resolve().parents[2]


def get_bug(name: str):
    try:
        return BY_NAME[name]
    except KeyError:
        raise BugHuntError(f"no bug named {name!r}; `python -m mrcnn_np bughunt list` shows the "
                           f"{len(BY_NAME)} names") from None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as f:   # keep line endings as they are
        return f.read()


def _write(path: Path, text: str) -> None:
    """Write ``text``; the modification time always moves on (numba's cache key, see above)."""
    before = path.stat().st_mtime_ns
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    if path.stat().st_mtime_ns <= before:   # a coarse clock: force a later time
        later = max(before + 1_000_000_000, time.time_ns())
        os.utime(path, ns=(later, later))


def read_state(root) -> dict | None:
    """The recorded planting under ``root``, or None when no bug is planted."""
    path = Path(root) / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or state.get("bug") not in BY_NAME or "files" not in state:
            raise ValueError("unexpected content")
    except ValueError as e:
        raise BugHuntError(f"{path}: not a bug hunt state file ({e}); restore the sources with git "
                           f"and delete it") from None
    return state


def apply_edits(text: str, edits, path: str) -> tuple[str, list]:
    """(new text, [(edit index, [positions of the new text])]) for the edits of one file."""
    done = []
    for i, e in edits:
        found = text.count(e.old)
        if found != e.count:
            raise BugHuntError(f"{path} does not contain the exact text this bug replaces "
                               f"({found} occurrence(s), expected {e.count}): the code changed; "
                               f"update mrcnn_np/bughunt/bugs.py")
        parts = text.split(e.old)
        positions, pos = [], len(parts[0])
        for part in parts[1:]:
            positions.append(pos)
            pos += len(e.new) + len(part)
        text = e.new.join(parts)
        done.append((i, positions))
    return text, done


def plant(name: str, root=None) -> dict:
    """Plant the bug ``name`` in the checkout ``root`` (default: this package's checkout).

    Refuses when a bug is planted already or a file does not hold the exact old text.
    Returns the state written to ``root/.bughunt.json``.
    """
    root = Path(root) if root is not None else default_root()
    bug = get_bug(name)
    current = read_state(root)
    if current is not None:
        raise BugHuntError(f"bug {current['bug']!r} is planted in {root}; "
                           "run `python -m mrcnn_np bughunt reset` first")
    by_file: dict = {}
    for i, e in enumerate(bug.edits):
        by_file.setdefault(e.path, []).append((i, e))
    new_texts, state = {}, {"bug": bug.name, "planted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "files": {}}
    for rel, edits in by_file.items():
        path = root / rel
        if not path.is_file():
            raise BugHuntError(f"{path}: no such file (is {root} a checkout of mrcnn_np?)")
        old_text = _read(path)
        new_text, done = apply_edits(old_text, edits, rel)
        new_texts[path] = new_text
        state["files"][rel] = {"sha256_before": _sha(old_text), "sha256_after": _sha(new_text),
                               "edits": [{"edit": i, "positions": p} for i, p in done]}
    for path, text in new_texts.items():   # every check passed: now write
        _write(path, text)
    (root / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    return state


def _restored(root: Path, state: dict) -> dict:
    """{path: original text} rebuilt from the planted files; refuses edited files."""
    bug = BY_NAME[state["bug"]]
    out = {}
    for rel, info in state["files"].items():
        path = root / rel
        if not path.is_file():
            raise BugHuntError(f"{path}: missing; bug {bug.name!r} was planted in it")
        text = _read(path)
        if _sha(text) != info["sha256_after"]:
            raise BugHuntError(f"{rel} was edited since bug {bug.name!r} was planted; not touching it "
                               f"(restore it with `git checkout -- {rel}`, then delete {STATE_FILE})")
        for step in reversed(info["edits"]):
            e = bug.edits[step["edit"]]
            for pos in reversed(step["positions"]):
                if text[pos:pos + len(e.new)] != e.new:
                    raise BugHuntError(f"{rel}: the planted text is not where {STATE_FILE} says")
                text = text[:pos] + e.old + text[pos + len(e.new):]
        if _sha(text) != info["sha256_before"]:
            raise BugHuntError(f"{rel}: taking bug {bug.name!r} out does not give back the original file")
        out[rel] = text
    return out


def reset(root=None) -> str:
    """Take the planted bug out of ``root``; returns its name. Refuses when none is planted."""
    root = Path(root) if root is not None else default_root()
    state = read_state(root)
    if state is None:
        raise BugHuntError(f"no bug is planted in {root} (no {STATE_FILE})")
    originals = _restored(root, state)
    for rel, text in originals.items():
        _write(root / rel, text)
    (root / STATE_FILE).unlink()
    return state["bug"]


def reveal(root=None) -> str:
    """The unified diff (original -> planted) of the bug planted in ``root``."""
    root = Path(root) if root is not None else default_root()
    state = read_state(root)
    if state is None:
        raise BugHuntError(f"no bug is planted in {root} (no {STATE_FILE}); nothing to reveal")
    originals = _restored(root, state)
    diff = []
    for rel, original in originals.items():
        diff += difflib.unified_diff(original.splitlines(keepends=True),
                                     _read(root / rel).splitlines(keepends=True),
                                     fromfile=f"a/{rel}", tofile=f"b/{rel}")
    return "".join(diff)
