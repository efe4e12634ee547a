# Real Time Image Saliency for Black Box Classifiers: a reproducible companion.
# `make help` lists the targets. Two commands do everything on a fresh machine:
#   make reproduce   # run every notebook, write figures/ and figures/report.md (no data needed:
#                    # notebooks that need missing data are skipped with one line; STRICT=1 makes that a failure)
#   make test        # ruff, pytest, doctests + nbval over the notebooks (smoke preset: every code path, fewest images)

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION ?= 3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PRESET ?= quick
STRICT ?=

# Data root: DATA=... on the command line, else $PAPERLIB_DATA, else data/ -- unless data/ holds
# nothing and ../shared/data exists (the offline copies of this workplace), which is then used.
SHARED_DATA := $(abspath ../shared/data)
ifndef DATA
  ifdef PAPERLIB_DATA
    DATA := $(PAPERLIB_DATA)
  else ifeq ($(filter-out data/README.md,$(wildcard data/*)),)
    ifneq ($(wildcard $(SHARED_DATA)/.),)
      DATA := $(SHARED_DATA)
    endif
  endif
endif
DATA ?= data
export PAPERLIB_DATA := $(abspath $(DATA))
export MPLBACKEND := Agg
export PYTHONUNBUFFERED := 1

NOTEBOOK_SRC := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))
NOTEBOOKS    := $(NOTEBOOK_SRC:.py=.ipynb)
SMOKE        := $(patsubst notebooks/%.py,build/smoke/%.ipynb,$(NOTEBOOK_SRC))
EXECUTED     := $(patsubst notebooks/%.py,figures/notebooks/%.ipynb,$(NOTEBOOK_SRC))

.PHONY: help setup test test-fast reproduce notebooks train bench lab clean data data-check

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'
	@echo "  Variables: DATA=<data root> (now $(PAPERLIB_DATA)), PRESET=quick|full (now $(PRESET))"

$(STAMP): pyproject.toml requirements.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv venv --quiet --allow-existing --python $(PYTHON_VERSION) $(VENV)
	VIRTUAL_ENV=$(VENV) uv pip install --quiet -r requirements.lock
	VIRTUAL_ENV=$(VENV) uv pip install --quiet --no-deps -e .
	@touch $@

setup: $(STAMP) ## Create .venv with uv and install the pinned dependencies (runs by itself when needed)

requirements.lock: pyproject.toml
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv pip compile --quiet --all-extras pyproject.toml -o $@ --python-version $(PYTHON_VERSION)

notebooks/%.ipynb: notebooks/%.py $(STAMP)
	$(VENV)/bin/jupytext --quiet --to ipynb --output $@ $<

notebooks: $(NOTEBOOKS) ## Generate the .ipynb notebooks from their jupytext sources

figures/notebooks/%.ipynb: notebooks/%.ipynb $(STAMP)
	@mkdir -p figures/notebooks
	PAPERLIB_HEADLESS=1 $(VENV)/bin/papermill --cwd notebooks -p preset $(PRESET) -p interactive False $< $@

# make test runs the notebooks at the smoke preset (every code path, fewest images; not results):
# papermill writes each with its parameters set, without running it, and nbval runs it.
build/smoke/%.ipynb: notebooks/%.ipynb $(STAMP)
	@mkdir -p build/smoke
	@$(VENV)/bin/papermill --prepare-only --log-level ERROR -p preset smoke -p interactive False $< $@

reproduce: $(STAMP) $(NOTEBOOKS) ## Run every notebook (papermill), skip those whose data are missing (STRICT=1: fail), summary, figures/report.md
	$(PY) -m paperlib.tools.reproduce --preset $(PRESET) $(if $(filter 1 yes true,$(STRICT)),--strict) $(NOTEBOOKS)

# nbval runs the notebooks one by one. On a machine with more cores, NBVAL_WORKERS="-n 4 --dist loadfile"
# runs several at a time (pytest-xdist; each notebook's cells stay in one kernel, in order). On 2 cores it
# is slower: two kernels' torch threads oversubscribe the CPU.
NBVAL_WORKERS ?=

LINTED := paperlib tests conftest.py notebooks/[0-9][0-9]_*.py

test: $(STAMP) $(NOTEBOOKS) $(SMOKE) ## Run the tests: ruff (lint, complexity, format), pytest, doctests, then nbval over the notebooks (smoke preset)
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)
	$(PY) -m pytest -q --durations=12 tests
	$(PY) -m pytest -q -p no:cacheprovider --doctest-modules paperlib
	@rm -rf build/smoke/figures && cp -r figures build/smoke/figures  # the smoke runs write into a copy of figures/
	@if [ -n "$(NOTEBOOKS)" ]; then PAPERLIB_FIGURES=$(abspath build/smoke/figures) PAPERLIB_HEADLESS=1 PAPERLIB_STRICT=1 $(PY) -m pytest -q -p no:cacheprovider --durations=20 $(NBVAL_WORKERS) --nbval-lax --nbval-current-env --nbval-kernel-startup-timeout 300 $(SMOKE); fi

test-fast: $(STAMP) ## Run pytest without the slow tests and without the notebooks
	$(PY) -m pytest -q -m "not slow" tests

data: $(STAMP) ## Download CIFAR-10 and VOC 2012 (torchvision, checksums); for ImageNet say which files to get, then check and convert them
	$(PY) -m paperlib.tools.getdata all

data-check: $(STAMP) ## Say which data sets are found under the data root
	$(PY) -c "import json, paperlib.core.data as d; print(json.dumps(d.available_data(), indent=2, default=str))"

train: $(STAMP) ## Retrain every shipped model from scratch: CIFAR-10 black box, then the maskers (hours on a CPU; see paperlib/checkpoints/*.json)
	$(PY) -m paperlib.tools.retrain

BENCH_PRESET ?= quick

bench: $(STAMP) ## Speed benchmark (figures/bench.*) and the CPU back ends of the masker (figures/realtime_cpu.*); BENCH_PRESET=full for more repeats
	$(PY) -m paperlib.tools.bench --preset $(BENCH_PRESET)
	$(PY) -m paperlib.tools.realtime --preset $(BENCH_PRESET)

lab: $(STAMP) ## Open JupyterLab on the notebooks (the .py sources open as notebooks; generated .ipynb hidden)
	JUPYTER_CONFIG_PATH=$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} $(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean: ## Remove generated notebooks and executed copies (keeps .venv and figures)
	rm -f notebooks/*.ipynb
	rm -rf figures/notebooks build/smoke
