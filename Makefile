# Two commands matter: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)
# uv ignores pip's configuration; read pip's find-links (they hold the CPU torch wheel) and
# pass them on, or the torch pin resolves to the CUDA build.
FIND_LINKS := $(shell pip config list 2>/dev/null | sed -n "s/^[^=]*find-links='\(.*\)'$$/\1/p" | head -n1)
UV_FLAGS := $(foreach f,$(FIND_LINKS),--find-links $(f))
# The embedded chain (research_lib/chain.py): anvil and the Uniswap artifacts from npm, pinned
# by package-lock.json. `npm install` with the lock present installs the locked versions; not
# `npm ci`, which refuses a lock that lacks anvil's other-platform binary packages (optional
# dependencies this machine's registry does not serve, so no lock made here can list them).
# anvil's postinstall (a download fallback) is skipped: the binary ships in its platform package.
NODE_STAMP := node_modules/.installed-$(shell cat package-lock.json | sha256sum | cut -c1-12)
DASHBOARD_PORT ?= 8866
NBVAL_DATA := .nbval

.PHONY: help setup demo test lint nbtest dashboard lab lock clean bench

help:
	@echo "make demo       set up .venv and run the demo pipeline (reports/<run_id>/)"
	@echo "make test       set up .venv, lint, run the tests and every notebook (nbval)"
	@echo "make dashboard  serve the Voila overview dashboard on 127.0.0.1:$(DASHBOARD_PORT)"
	@echo "make lab        open JupyterLab on the notebooks"
	@echo "make lock       re-resolve requirements.lock and environment.yml from pyproject.toml"

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install -q "uv==$(UV_VERSION)"
	$(UV) pip install --python $(PY) $(UV_FLAGS) -r requirements.lock
	$(UV) pip install --python $(PY) $(UV_FLAGS) --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm install --ignore-scripts --no-audit --no-fund
	@touch $@

setup: $(STAMP) $(NODE_STAMP)

demo: setup
	$(PY) -m research_lib.pipeline run --profile demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The notebooks run against their own data folder, so tests never touch a researcher's lake.
nbtest: setup
	RESEARCH_DATA_DIR=$(NBVAL_DATA)/data RESEARCH_REPORTS_DIR=$(NBVAL_DATA)/reports \
		$(PY) -m pytest --nbval-lax --nbval-current-env -p no:randomly notebooks/

test: lint
	$(PY) -m pytest tests
	$(PY) -m pytest --doctest-modules research_lib kernels
	$(MAKE) --no-print-directory nbtest

# Kernel timings vs TA-Lib, the memory bound and vectorbt -> reports/bench/kernels.{json,md}.
bench: setup
	$(PY) tests/benchmarks/run.py

dashboard: setup
	@echo "Voila dashboard: http://127.0.0.1:$(DASHBOARD_PORT)/"
	$(VENV)/bin/voila notebooks/dashboards/overview.ipynb --no-browser \
		--Voila.ip=127.0.0.1 --port=$(DASHBOARD_PORT)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 $(UV_FLAGS) \
		--no-header --quiet -o requirements.lock
	python3 .ci/sync_environment.py

clean:
	rm -rf $(NBVAL_DATA) .pytest_cache
