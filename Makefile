# Vigil — one front door. `make` runs what CI runs.
.DEFAULT_GOAL := pr
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vigil-installed
VIDEO ?= worker/local/sample/one-by-one-person-detection.mp4
SPEED ?= 4
ARGS ?=

.PHONY: pr setup demo test lint clean

pr: lint test

# The virtualenv is rebuilt when pyproject.toml or the lock file change.
$(STAMP): pyproject.toml requirements.lock
	@echo "==> setting up $(VENV) with pinned packages (first run takes ~5 min: PyTorch is large)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock 2>&1 | { grep -v "is ignored: it is neither" || true; }; test $${PIPESTATUS[0]} -eq 0
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | { grep -v "is ignored: it is neither" || true; }; test $${PIPESTATUS[0]} -eq 0
	@touch $(STAMP)
	@echo "==> $(VENV) ready"

setup: $(STAMP)

demo: $(STAMP)
	@echo "==> running the whole Vigil loop locally on $(VIDEO) (speed x$(SPEED))"
	$(BIN)/python -m worker.local.demo --video "$(VIDEO)" --speed $(SPEED) $(ARGS)

test: $(STAMP)
	@echo "==> running the test suite"
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf out .pytest_cache
