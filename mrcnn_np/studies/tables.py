"""The five ablation tables by name, and one call to run one (for notebooks and scripts).

    TABLES["roi"].variants, .data, .design, ...      the ``Study`` of each table
    run_table("roi", quick=True, out=..., ...)       ``runner.run_study`` of that table, quiet by default
"""

from __future__ import annotations

from mrcnn_np.studies.registry import ABLATION_TABLES, get_table
from mrcnn_np.studies.runner import run_study

TABLES = {name: get_table(name) for name in ABLATION_TABLES}


def run_table(name: str, seeds: int | None = None, *, log=None, **options) -> dict:
    """Run ablation table ``name`` (see ``run_study`` for the options); ``log``: where progress lines go (None: nowhere)."""
    return run_study(get_table(name), seeds, log=log or (lambda line: None), **options)


__all__ = ["ABLATION_TABLES", "TABLES", "run_table"]
