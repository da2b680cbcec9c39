# Two commands for a newcomer: `make demo` and `make test`.  Both create the
# virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench docs clean

# The plot extra (matplotlib) is installed too: `make demo` draws its fit and the
# test suite checks the plots.  Editing this Makefile reinstalls.
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,plot]"
	touch $@

# Synthetic Zarr store, LocalCluster (dashboard link printed), fit with progress,
# predictions to Zarr, saved model and plot, all under ./demo-output.
demo: $(VENV)/.installed
	$(VENV)/bin/daskgmm demo --out-dir demo-output

test: $(VENV)/.installed
	$(VENV)/bin/ruff check daskgmm tests benchmarks
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check daskgmm tests benchmarks
	$(VENV)/bin/ruff format --check daskgmm tests benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_em.py

# The documentation site: installs the docs extra (Sphinx and friends, from wheels),
# then builds docs/_build/html with warnings as errors; the gallery's examples run.
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml Makefile
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs built: open docs/_build/html/index.html"

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info demo-output
	rm -rf docs/_build docs/auto_examples docs/_generated
