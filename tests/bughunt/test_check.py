"""``bughunt check`` in CI: every planted bug makes its named test fail, and the test passes
again once the bug is taken out (on a temporary copy; about a minute on 2 cores)."""

import pytest

from mrcnn_np.bughunt import BUGS, check


@pytest.mark.slow
def test_every_bug_is_caught_by_its_test():
    lines = []
    results = check(progress=lines.append)
    assert [r.name for r in results] == [b.name for b in BUGS]
    missed = [f"{r.name}: {r.detail}" for r in results if not r.caught]
    assert not missed, "\n".join(missed + lines)
    assert lines[0].startswith("clean code:") and lines[-1].startswith("after reset:")
