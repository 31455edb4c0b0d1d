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
from .figure import symptom_figure
from .patch import STATE_FILE, BugHuntError, plant, read_state, reset, reveal

__all__ = ["BUGS", "BY_NAME", "Bug", "Edit", "BugHuntError", "CheckResult", "STATE_FILE", "check", "plant",
           "read_state", "reset", "reveal", "symptom_figure"]
