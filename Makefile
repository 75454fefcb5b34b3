# Set-up and entry points. Everything runs inside a local virtual environment (.venv).
#   make search   set up, then run the main job on the built-in data set
#   make test     set up, then lint (ruff), check the import floors (import-linter), type-check
#                 (mypy) and run the test suite
# PYTHON picks the interpreter. The default (python3) sets up .venv; any other gets a venv of
# its own named for its version, so interpreters never share one:
#   make test PYTHON=python3.13        -> .venv-3.13
# TORCH_SPEC picks the torch build installed first (default: the pinned release; on a CUDA
# machine pip's default build for it is a CUDA build): a requirement, a wheel file or a
# 'torch @ URL'. TORCH_INDEX, if set, is the package index torch alone comes from:
#   make test TORCH_SPEC='torch>=2.4'
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu     (PyTorch's CPU-only builds)
# Both apply when a venv is made; to change the torch of an existing one, delete it first.
PYTHON ?= python3
ifeq ($(PYTHON),python3)
VENV ?= .venv
else
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
ifeq ($(PYTHON_VERSION),)
$(error PYTHON=$(PYTHON) does not run: give an interpreter's name or path)
endif
VENV ?= .venv-$(PYTHON_VERSION)
endif
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
BUDGET ?= 16
HARDWARE ?= cpu
SEARCH_ARGS ?=
BIN := $(VENV)/bin

.PHONY: setup search test bench-cost

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet \
		$(if $(TORCH_INDEX),--index-url "$(TORCH_INDEX)") "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

search: setup
	$(BIN)/nas-search --budget $(BUDGET) --hardware $(HARDWARE) $(SEARCH_ARGS)

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -n 2 tests

bench-cost: setup
	$(BIN)/python bench/cost_throughput.py
