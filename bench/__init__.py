"""Benchmarks: ours against torch/torchvision in one process, on the same inputs, ratios printed.

A package (not installed with mrcnn_np): run a script from the repository root as a module,
``python -m bench.bench_nms``; ``make bench`` runs every ``bench_*`` script. The timing
helpers and the machine report are in ``bench/common.py``.
"""
