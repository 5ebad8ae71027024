# Two commands set up a fresh machine and use it:
#   make demo   installs into .venv, runs `parsimon reproduce`, prints where the report is
#   make test   installs into .venv, runs every test that needs no GPU (GPU tests skip cleanly)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export TORCHINDUCTOR_CACHE_DIR ?= $(HOME)/.cache/parsimon/inductor
export MPLBACKEND ?= Agg

.PHONY: setup demo test test-quick lint bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(VENV)/bin/parsimon reproduce $(ARGS)

# pytest exits 5 when no test was collected; that is not a failure here.
test: setup
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

test-quick: setup
	@$(PY) -m pytest -m "not slow and not llm and not browser" $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

lint: setup
	@$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) reports .pytest_cache
