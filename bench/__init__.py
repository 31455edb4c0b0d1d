"""Benchmarks: ours against torch/torchvision in one process, on the same inputs, ratios printed.

A package (not installed with mrcnn_np): run a script from the repository root as a module,
``python -m bench.bench_nms``; ``make bench`` runs every ``bench_*`` script. The timing
helpers and the machine report are in ``bench/common.py``.

Two scripts concern the notebooks: ``python -m bench.notebook_times`` (their wall times) and
``python -m bench.render_notebooks`` (``make notebooks-render``: their full-mode outputs
stored in place, with a fingerprint of their code that ``tests/test_notebook_freshness.py``
checks).
"""
