# Every entry point of the project. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(VENV)
# PYTHONDONTWRITEBYTECODE is common on CI machines: without compiled bytecode every process
# spends ~10 s recompiling torch.
export UV_COMPILE_BYTECODE := 1

TASK ?= detect
DEMO_DIR ?= data/demo-$(TASK)
DEMO_RUN ?= demo-$(TASK)

.PHONY: help setup demo test lint

help: ## list the entry points
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.synced: shared/pyproject.toml shared/uv.lock | $(UV)
	$(UV) sync --project shared --frozen --all-groups
	touch $@

setup: $(VENV)/.synced ## create .venv from the lock file

test: setup ## run the test suite
	$(PY) -m pytest

lint: setup ## ruff check + format check
	$(PY) -m ruff check shared tests scripts
	$(PY) -m ruff format --check shared tests scripts
