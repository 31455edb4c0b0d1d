"""Checks shared by the command-line tests."""


def one_error_line(capsys, *parts):
    """The captured stderr is one ``error: ...`` line containing every string of ``parts``; returns it."""
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for p in parts:
        assert p in err, err
    return err
