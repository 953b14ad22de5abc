# One entry point for newcomers and CI. Every target creates the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint format bench clean dashboards config-docs promtool-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/riskd demo $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	bash scripts/promtool-check.sh
	bash scripts/install-test-deps.sh
	bash scripts/freqtrade-env.sh
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) -m benchmarks

dashboards: $(STAMP)
	$(PY) grafana/build.py

config-docs: $(STAMP)
	$(PY) -m riskd.commands.reference --write

promtool-check:
	bash scripts/promtool-check.sh

clean:
	rm -rf $(VENV) .venv-freqtrade .pytest_cache .ruff_cache
