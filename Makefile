# Set-up and entry points. Everything runs inside a local virtual environment (.venv).
#   make search   set up, then run the main job on the built-in data set
#   make test     set up, then lint (ruff), check the import floors (import-linter), type-check
#                 (mypy) and run the test suite
# TORCH_SPEC picks the torch build installed first (default: the pinned release; on a CUDA
# machine pip's default build for it is a CUDA build). Example: make test TORCH_SPEC='torch>=2.4'
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BUDGET ?= 16
HARDWARE ?= cpu
SEARCH_ARGS ?=
BIN := $(VENV)/bin

.PHONY: setup search test bench-cost

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
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
