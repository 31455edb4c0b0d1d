"""The bug hunt: plant one of a dozen realistic Mask R-CNN bugs in a working copy, find it.

A teaching exercise (docs/BUGHUNT.md). ``python -m mrcnn_np bughunt plant NAME`` edits the
package's source in the checkout (an exact text replacement stored in :mod:`.bugs`),
prints the symptom and the test that now fails; the student finds and fixes the bug, or
``bughunt reveal`` shows the diff and ``bughunt reset`` takes it out byte for byte.
``bughunt check`` proves on a temporary copy that each bug's test fails with the bug and
passes without it. The package itself has no bug switches: nothing here is imported by it.
"""

from .bugs import BUGS, BY_NAME, Bug, Edit
from .check import CheckResult, check
from .patch import STATE_FILE, BugHuntError, plant, read_state, reset, reveal

__all__ = ["BUGS", "BY_NAME", "Bug", "Edit", "BugHuntError", "CheckResult", "STATE_FILE", "check", "plant",
           "read_state", "reset", "reveal", "symptom_figure"]


def __getattr__(name):
    # symptom_figure needs numpy and matplotlib: imported on first use, so that parsing the command
    # line (mrcnn_np.cli imports bughunt.cli) stays free of numerics (tests/studies/test_cli_flags.py)
    if name == "symptom_figure":
        from .figure import symptom_figure  # noqa: PLC0415

        return symptom_figure
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
