# Two commands for a new user: `make demo` (a full promotion on the embedded local runtime, no AWS account)
# and `make test`. Both create .venv and install the pinned requirements on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AWS_DEFAULT_REGION ?= us-east-1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: venv synth demo up test lint typecheck unit property integration infra e2e jobs bench mutation layer-lock deploy clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

# Scanners the tests run (tests/infra/test_security_scans.py): checkov in its own venv (its pins conflict with
# requirements-dev.txt) and asl-validator from package-lock.json. Reinstalled only when their pin files change.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: tools
tools: $(TOOLS_STAMP) $(NODE_STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	rm -rf $(TOOLS_VENV)
	$(PYTHON) -m venv $(TOOLS_VENV)
	echo '*' > $(TOOLS_VENV)/.gitignore  # keeps the venv out of git without touching .gitignore
	$(TOOLS_VENV)/bin/pip install -q --upgrade pip
	$(TOOLS_VENV)/bin/pip install -q -r requirements-tools.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: venv
	$(PY) app.py

demo: venv
	$(PY) -m local demo

up: venv
	$(PY) -m local up

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check layers functions local stacks app.py

typecheck: venv
	$(VENV)/bin/mypy layers/promotion/python/promotion functions local stacks jobs toolkit promote app.py

test: venv tools lint typecheck
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=20

bench: venv
	$(PY) -m bench

# Mutation testing of production writes, approvals, claims, validation, rollback and the result (about an hour on
# two cores; bench/results/mutation.json). Not part of `make test` or `make bench`.
mutation: venv
	$(VENV)/bin/pip install -q -r requirements-mutation.txt
	$(PY) -m bench mutation

# The Lambda layer's wheels pinned by SHA-256 (requirements-layer.txt), after a change of requirements.txt.
layer-lock: venv
	PYTHONPATH=layers/promotion/python $(PY) -m stacks.assets lock

deploy: venv
	npx --yes aws-cdk@2 deploy --app "$(PY) app.py"

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache .hypothesis .local-runs
