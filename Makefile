# Targets a newcomer can guess: run, test, lint, infra-up, infra-down, bench.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: help install run test lint unit format clean

help:
	@echo "make run      run feedcore embedded on 127.0.0.1:8000 (nothing is persisted)"
	@echo "make test     lint, type-check and run the whole test suite"
	@echo "make lint     ruff, ruff format --check, mypy --strict, import contracts"
	@echo "make unit     the unit tests only"
	@echo "make format   format the code with ruff"

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "feedcore needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED)

lint: install
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict tests
	$(VENV)/bin/lint-imports

unit: install
	$(VENV)/bin/pytest -m unit

test: lint
	$(VENV)/bin/pytest

format: install
	$(VENV)/bin/ruff format src tests
	$(VENV)/bin/ruff check --fix src tests

run: install
	$(VENV)/bin/feedcore serve

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
