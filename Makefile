# Two commands for a newcomer: `make demo` and `make test`.  Both create the
# virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/daskgmm demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check daskgmm tests benchmarks
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check daskgmm tests benchmarks
	$(VENV)/bin/ruff format --check daskgmm tests benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_em.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
