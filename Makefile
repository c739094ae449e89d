# Open Dealer scheduler. The two commands: `make demo` (run the main job locally) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# Reinstall only when a requirements file or pyproject.toml (the package's metadata) changes (or how we install).
STAMP := $(VENV)/.installed-$(shell (cat requirements.txt requirements-dev.txt pyproject.toml 2>/dev/null; echo bytecode) | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# The project's Python, compiled to bytecode by `make install` (only what changed, well under a second). Every
# Airflow process (scheduler, task, DAG parse, CLI) imports hundreds of modules: where bytecode is not kept
# (PYTHONDONTWRITEBYTECODE, read-only trees) each process would compile them all again, about twice the CPU
# of `import airflow` and of a task's DAG parse. The dependencies are compiled by `uv pip sync --compile-bytecode`.
SOURCES := src dags include plugins tests bench

.PHONY: help lock audit install demo setup up down test test-unit test-dags test-integration test-e2e lint format typecheck clean

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): $(BIN)/python $(BIN)/uv requirements.txt requirements-dev.txt pyproject.toml
	@echo "==> Installing exactly the locked requirements into $(VENV) (uv $(UV_VERSION), hashes checked)"
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements-dev.txt
	@echo "==> Installing the od-scheduler package (editable: src/ edits apply without reinstalling)"
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

lock: $(BIN)/uv  ## Re-pin: requirements.txt (runtime) and requirements-dev.txt (everything), hashed, any Python 3.11+
	$(BIN)/uv pip compile --quiet --universal --generate-hashes --python-version 3.11 \
		requirements.in -o requirements.txt
	$(BIN)/uv pip compile --quiet --universal --generate-hashes --python-version 3.11 \
		requirements-dev.in -o requirements-dev.txt

audit: install  ## pip-audit the runtime lock against PyPI's vulnerability data
	$(BIN)/python -m include.tools.audit

install: $(STAMP)  ## Create .venv, install the pinned requirements and the od-scheduler package
	@$(BIN)/python -m compileall -q -j 0 $(SOURCES) >/dev/null

demo: install  ## Run every platform DAG once on embedded PostgreSQL + the local sandbox; print a summary
	$(BIN)/python -m include.tools.demo

setup: install  ## Migrate Airflow's DB, create missing connections, import pools, apply the job-history schema
	$(BIN)/python -m include.tools.setup_project

up: install  ## Start the whole local Airflow (UI on http://127.0.0.1:8080, admin/admin)
	$(BIN)/python -m include.tools.stack up

down:  ## Stop the local Airflow, the sandbox and embedded PostgreSQL
	@test -x $(BIN)/python && $(BIN)/python -m include.tools.stack down || true

lint: install  ## ruff check + format check + the layer contract (.importlinter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install  ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install  ## mypy over src/od_scheduler
	$(BIN)/mypy

test: install lint typecheck audit  ## Lint, typecheck, audit the dependencies, then the whole test suite
	@command -v chromium >/dev/null || { echo "==> Installing chromium (Debian) for the status page browser test"; \
		apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; }
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install  ## Fast tests only (no Airflow DB, no servers)
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

test-dags: install  ## DAG integrity tests
	$(BIN)/python -m pytest -m dags $(PYTEST_ARGS)

test-integration: install  ## dag.test() against embedded PostgreSQL and the sandbox
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

test-e2e: install  ## A real scheduler, executor and api-server
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

clean: down  ## Remove .local (embedded DB, logs, staging) and test output
	rm -rf .local test-output
