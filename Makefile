# Two commands on a fresh machine (Python 3.10+ and a C compiler):
#   make demo   - create .venv, install the package, run the main job
#   make test   - create/update .venv with the dev extra, run the whole test suite
# Further targets: make test-reference (live comparisons with torch/torchvision),
# make bench, make notebooks, make notebooks-render, make clean.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PYTEST := $(PY) -m pytest

.PHONY: demo test test-reference bench notebooks notebooks-render clean venv

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.stamp-base: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e ".[dev]"
	@touch $@ $(VENV)/.stamp-base

$(VENV)/.stamp-reference: pyproject.toml $(VENV)/.stamp-dev
	$(PIP) install -q -e ".[dev,reference]"
	@touch $@

$(VENV)/.stamp-notebooks: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e ".[notebooks]"
	@touch $@

venv: $(VENV)/.stamp-base

demo: $(VENV)/.stamp-base
	$(PY) -m mrcnn_np demo

# Unit, property and golden-value tests, plus every notebook executed top to bottom
# (MRCNN_NP_QUICK=1 shortens training cells only). pytest exits non-zero (5) when it
# collects no test, so an empty run fails.
test: $(VENV)/.stamp-dev
	MRCNN_NP_QUICK=1 $(PYTEST) -m "not reference and not gpu" tests notebooks --nbmake

# Live comparisons against torch/torchvision (a large install: the `reference` extra).
test-reference: $(VENV)/.stamp-reference
	$(PYTEST) -m reference tests

bench: $(VENV)/.stamp-reference
	@for b in bench/bench_*.py; do m=bench.$$(basename $$b .py); echo "== $$m"; $(PY) -m $$m || exit 1; done

notebooks: $(VENV)/.stamp-notebooks
	$(VENV)/bin/jupyter lab notebooks

# Execute every notebook in full mode (MRCNN_NP_QUICK unset) and store its outputs in place,
# stamped with a fingerprint of its code cells (tests/test_notebook_freshness.py checks it).
# Long: notebooks 10, 11 and 17 train. One or a few: make notebooks-render ONLY="01 03".
notebooks-render: $(VENV)/.stamp-dev
	env -u MRCNN_NP_QUICK $(PY) -m bench.render_notebooks $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
