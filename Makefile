# Two commands matter: `make demo` (the main job on the embedded default) and `make test`.
SHELL := /bin/bash
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
export UV_PYTHON ?= python3
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
# Python may keep its compiled modules (gitignored __pycache__), pytest its assertion rewrites: with
# PYTHONDONTWRITEBYTECODE set, every run (and every subprocess, xdist worker, model node) recompiles
# the package and ~170 test modules, about 3 s per process.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test test-unit test-integration test-e2e bench env lint format clean serve deploy worker

$(UV):
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --user --quiet "uv==$(UV_VERSION)" || python3 -m pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

# Real model nodes (crunch-model-runner) pin protobuf<6, which the lock cannot hold next to
# model-runner-client: install them without their dependencies (they run on the locked protobuf).
.venv/.nodes: .venv/.synced
	$(UV) pip install --python .venv/bin/python --no-deps crunch-model-runner==0.4.2 pyarrow==18.1.0
	@touch $@

# The Condor Game's package needs Python >= 3.12: it gets an interpreter of its own (requirements/condor-py312.txt).
PYTHON312 ?= $(shell for p in python3.12 python3.13 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[23]*/bin/python3 2>/dev/null); do \
	$$p -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && { command -v $$p; break; }; done)

.venv-condor/.synced: requirements/condor-py312.txt | $(UV)
	@test -n "$(PYTHON312)" || { echo "no Python >= 3.12 found (condorgame needs it): install one, or set PYTHON312=/path/to/python3.12" >&2; exit 1; }
	UV_PYTHON_DOWNLOADS=never $(UV) venv --allow-existing --python "$(PYTHON312)" .venv-condor
	$(UV) pip install --python .venv-condor/bin/python -r requirements/condor-py312.txt
	@touch $@

env: .venv/.nodes .venv-condor/.synced  ## create or update the virtual environments from the lock files (+ model-node packages, + the Condor Game's Python 3.12 env)

demo: env  ## backtest 14 days of the shipped BTC data with the example models, print leaderboard + checkpoint
	.venv/bin/coordinator demo

serve: env  ## live local mode: Prefect UI on 127.0.0.1:4200, every flow on its schedule, API on :8000
	.venv/bin/coordinator serve

deploy: env  ## prefect deploy --all from this clone (needs PREFECT_API_URL and the 'coordinator' work pool); runs execute in COORDINATOR_HOME, default this clone
	@test -n "$$PREFECT_API_URL" || { echo "set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api) first" >&2; exit 1; }
	.venv/bin/prefect --no-prompt deploy --all

worker: env  ## a process worker for the 'coordinator' work pool
	.venv/bin/prefect worker start --pool coordinator

test: env  ## the whole suite: unit, integration (SQLite + Postgres), end to end (Prefect server, deployment, serve)
	.venv/bin/pytest -q tests/unit tests/integration tests/e2e

test-unit: env  ## pure tests: no database, no server, spread over the machine's cores (pytest-xdist)
	.venv/bin/pytest -q -n auto tests/unit

test-integration: env  ## repositories, services, feeds, gateways and API on SQLite and Postgres (own databases)
	.venv/bin/pytest -q tests/integration

test-e2e: env  ## Prefect flows, CLI, deployment to a work pool, live serve
	.venv/bin/pytest -q tests/e2e

bench: env  ## speed figures (printed, not asserted)
	.venv/bin/python -m benchmarks.run
	.venv/bin/python -m benchmarks.model_runner_bench --quick
	.venv/bin/python -m benchmarks.api_bench
	.venv/bin/python -m benchmarks.scoring_bench
	.venv/bin/python -m benchmarks.core_bench
	.venv/bin/python -m benchmarks.games_bench
	.venv/bin/python -m benchmarks.contribution_bench

lint: env  ## ruff (lint + format check) and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

format: env
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

clean:
	rm -rf .venv .venv-condor coordinator.db coordinator.db-wal coordinator.db-shm .pytest_cache
