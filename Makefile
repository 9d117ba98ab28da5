# Everything bootstraps from python3 + pip + npm: uv is installed with pip, the
# environment comes from the committed uv.lock and the CDK CLI from package-lock.json.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(PYTHON) -m uv
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help bootstrap run test lint typecheck imports unit integration infra-test api-test bench synth fmt clean

help:
	@echo "make run    start the local stack (llmops serve)"
	@echo "make test   lint, type checks, import direction, all tests"
	@echo "make bench  benchmarks, report under reports/"
	@echo "make synth  synthesize the CDK app offline"

$(VENV)/.installed: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) sync --frozen --all-extras --all-groups
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bootstrap: $(VENV)/.installed node_modules/.installed

run: $(VENV)/.installed
	$(BIN)/llmops serve

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

imports: $(VENV)/.installed
	PYTHONPATH=shared:. $(BIN)/lint-imports

test: bootstrap lint typecheck imports
	$(BIN)/pytest -n 2 --dist loadgroup -q

bench: bootstrap
	$(BIN)/llmops bench --out reports

synth: bootstrap
	npx cdk synth --quiet

clean:
	rm -rf $(VENV) node_modules cdk.out .llmops reports .mypy_cache .ruff_cache .pytest_cache
