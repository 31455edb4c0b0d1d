"""``python -m mrcnn_np bughunt list | plant NAME | reveal | reset | check`` (docs/BUGHUNT.md).

Registered by :func:`add_bughunt_command`, which mrcnn_np/cli.py calls. Refusals are
``BugHuntError`` (a ValueError): one ``error:`` line on stderr, exit code 2.
"""

from __future__ import annotations

import textwrap


def _root(args):
    """--root, or the checkout this package was imported from."""
    from .patch import default_root  # noqa: PLC0415

    return args.root or default_root()


def cmd_list(args) -> None:
    from .bugs import BUGS  # noqa: PLC0415
    from .patch import read_state  # noqa: PLC0415

    for bug in BUGS:
        print(f"{bug.name}\n  source:  {bug.source}")
        print(textwrap.fill(bug.symptom, 100, initial_indent="  symptom: ", subsequent_indent="           "))
    state = read_state(_root(args))
    print(f"\n{len(BUGS)} bugs; planted now: {state['bug'] if state else 'none'}")


def cmd_plant(args) -> None:
    from .patch import get_bug, plant  # noqa: PLC0415

    bug = get_bug(args.name)
    plant(bug.name, _root(args))
    print(f"planted {bug.name} (modelled on {bug.source}).\n")
    print(textwrap.fill("Symptom: " + bug.symptom, 100))
    print(f"\nThe test that catches it now fails (run it from the repository root):\n  python -m pytest -q {bug.test}")
    if args.hint:
        print(textwrap.fill("Hint: " + bug.hint, 100))
    else:
        print("\nStuck? `python -m mrcnn_np bughunt hint`; the answer: `bughunt reveal`; "
              "take it out: `bughunt reset`.")


def cmd_hint(args) -> None:
    from .patch import BugHuntError, read_state  # noqa: PLC0415
    from .bugs import BY_NAME  # noqa: PLC0415

    state = read_state(_root(args))
    if state is None:
        raise BugHuntError("no bug is planted; nothing to hint at")
    print(textwrap.fill("Hint: " + BY_NAME[state["bug"]].hint, 100))


def cmd_reveal(args) -> None:
    from .patch import reveal  # noqa: PLC0415

    print(reveal(_root(args)), end="")


def cmd_reset(args) -> None:
    from .patch import reset  # noqa: PLC0415

    print(f"took out {reset(_root(args))}; the sources are as before planting")


def cmd_check(args) -> None:
    import time  # noqa: PLC0415

    from .check import check  # noqa: PLC0415
    from .patch import BugHuntError  # noqa: PLC0415

    t0 = time.perf_counter()
    results = check(_root(args), names=args.only or None, progress=lambda line: print(line, flush=True))
    missed = [r.name for r in results if not r.caught]
    print(f"{len(results) - len(missed)} of {len(results)} bugs caught by their tests; "
          f"check took {time.perf_counter() - t0:.0f} s")
    if missed:
        raise BugHuntError(f"bughunt check: {len(missed)} bug(s) not caught: {', '.join(missed)}")


def add_bughunt_command(sub) -> None:
    """Register ``bughunt`` and its subcommands on the top-level subparsers ``sub``."""
    p = sub.add_parser("bughunt", help="plant a realistic bug for students to find (docs/BUGHUNT.md)")
    verbs = p.add_subparsers(dest="bughunt_command", required=True, parser_class=type(p))

    def verb(name, func, help):
        q = verbs.add_parser(name, help=help)
        q.add_argument("--root", default=None, metavar="DIR",
                       help="the checkout to work on (default: the one mrcnn_np is imported from)")
        q.set_defaults(func=func)
        return q

    verb("list", cmd_list, "names, sources and symptoms of the bugs (never where they are)")
    q = verb("plant", cmd_plant, "plant bug NAME in the checkout's source files; prints symptom and test")
    q.add_argument("name", metavar="NAME", help="a name from `bughunt list`")
    q.add_argument("--hint", action="store_true", help="print the hint too")
    verb("hint", cmd_hint, "a hint for the planted bug")
    verb("reveal", cmd_reveal, "the diff of the planted bug")
    verb("reset", cmd_reset, "take the planted bug out again (byte for byte)")
    q = verb("check", cmd_check, "on a temporary copy: each bug's test fails with it and passes without")
    q.add_argument("--only", nargs="+", metavar="NAME", help="check only these bugs")
