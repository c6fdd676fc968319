# Two commands set everything up on a fresh machine (README): `make demo` and `make test`.
# Both create the environment first: uv (from PyPI, into .tools/) then .venv from uv.lock.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv

.PHONY: setup demo down test test-fast test-scale lint typecheck bench

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml infra/pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --quiet
	touch $@

setup: $(VENV)/.synced

demo: setup
	$(VENV)/bin/python -m devtools.demo

down: setup
	$(VENV)/bin/python -m devtools.demo --down

# ruff, then the CI and container files: actionlint (workflow syntax, expressions, shellcheck
# on run: steps when shellcheck is installed), zizmor offline (workflow security; a finding
# exits non-zero) and hadolint (Dockerfiles, every level down to info fails).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --no-progress .github/workflows
	$(VENV)/bin/hadolint docker/*.Dockerfile

typecheck: setup
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest

# The pure tests only (no Prefect server, worker or flow run): well under a minute.
test-fast: lint typecheck
	$(VENV)/bin/pytest -m "not integration and not scale"

# The scale path (Prefect server on PostgreSQL with Redis messaging); needs both running.
test-scale: setup
	$(VENV)/bin/pytest -m scale tests/scale

bench: setup
	$(VENV)/bin/python benchmarks/alert_latency.py
