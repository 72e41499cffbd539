# SI64 billing backend. Two commands matter: `make run` and `make test`.
# Every target creates .venv (python3 -m venv) and installs the pinned
# requirements when missing or when a requirements file changed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.si64-installed
BUILD  ?= build
STAGE  ?= prod
PYTEST_ARGS ?=
# pytest on several workers (pytest-xdist), opt-in until two full runs in a row are clean:
#   make test PYTEST_WORKERS="-n 2 --dist loadfile --no-loadscope-reorder"
# (one file per worker at a time, so a file's module-scoped stack stays in one process, in
# collection order, so the long end-to-end files start first)
PYTEST_WORKERS ?=

export AWS_DEFAULT_REGION ?= us-east-1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv run test unit bench load soak package localstack devnet-smoke lint format clean distclean

help:
	@echo "make run      start the local stack (API, AWS emulator, Solana chain, event runner)"
	@echo "make test     make lint (ruff, mypy, cfn-lint), then the whole pytest suite"
	@echo "make package  chalice package --stage $(STAGE) merged with infra/resources.yaml into $(BUILD)/"
	@echo "make bench    calls, latency, write units, sweep work, cold import against a local stack"
	@echo "make load     ~200 device agents and ~50 renters for ~60 s against a local stack (.local/load.json)"
	@echo "make soak     the whole-system property test with many more examples (minutes)"
	@echo "make localstack  deploy the packaged stack to a LocalStack endpoint (AWS_ENDPOINT_URL)"
	@echo "make devnet-smoke  rent, extend, settle, refund against a stage on devnet (SI64_API_URL; skipped offline)"
	@echo "make lint     ruff check, ruff format --check, mypy --strict, cfn-lint (make test runs it first)"
	@echo "make format   ruff format + ruff check --fix (rewrites files)"
	@echo "make clean / distclean"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml packages/si64/pyproject.toml
	@echo "[make] installing the pinned dependencies into $(VENV) (about 1.5 min the first time; then only when a requirements file changes) ..."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --config-settings editable_mode=compat -e packages/si64
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m dev.stack

$(BUILD)/sam.yaml: $(STAMP) app.py .chalice/config.json $(wildcard .chalice/policy-$(STAGE)*.json) infra/resources.yaml infra/observability.yaml infra/edge.yaml infra/package.py requirements.txt $(wildcard vendor/si64_protocol/*.py) $(shell find chalicelib -name '*.py' 2>/dev/null)
	$(PY) infra/package.py --stage $(STAGE) --out $(BUILD)

package: $(BUILD)/sam.yaml

localstack: $(STAMP)
	$(PY) infra/localstack.py --stage $(STAGE) --build $(BUILD)

devnet-smoke: $(STAMP)
	$(PY) -m dev.devnet_smoke

lint: $(STAMP) $(BUILD)/sam.yaml
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint infra/resources.yaml infra/web.yaml $(BUILD)/sam.yaml

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

soak: $(STAMP)
	SI64_SOAK=1 $(PY) -m pytest tests/properties -q -p no:cacheprovider

load: $(STAMP)
	$(PY) -m dev.load $(LOAD_ARGS)

bench: $(STAMP)
	$(PY) -m dev.bench
	$(PY) -m dev.bench.refunds
	$(PY) -m dev.bench.webhooks --out .local/bench.json
	$(PY) -m dev.bench.chain_timing
	$(PY) -m dev.bench.ratelimit --rpc --out .local/bench.json

clean:
	rm -rf $(BUILD) .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .local
