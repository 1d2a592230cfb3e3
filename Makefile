# Two commands for a new machine: `make run` (local stack) and `make test`.
# Both create .venv and install what they need on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt 2>/dev/null | cksum | cut -d' ' -f1)
PYTEST_WORKERS ?= 2
BUSINESS ?= demo
ROLE ?= admin
SUB ?=
URL ?= http://127.0.0.1:3000
FUZZ_EXAMPLES ?= 25

.PHONY: install run test lint fmt unit openapi token import bench fuzz clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

run: install ## start the local stack on 127.0.0.1:3000
	PYTHONPATH=shared $(PY) -m local

test: install lint ## lint, type-check, then every test (unit, integration, local stack)
	$(PY) -m pytest -n $(PYTEST_WORKERS)

unit: install
	$(PY) -m pytest tests/unit

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy shared functions local

fmt: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

openapi: install ## regenerate openapi.json from the handlers' routes
	PYTHONPATH=shared $(PY) -m local.openapi > openapi.json

token: install ## print a local JWT: make token BUSINESS=demo ROLE=admin [SUB=...]
	@PYTHONPATH=shared $(PY) -m local.token --business "$(BUSINESS)" --role "$(ROLE)" $(if $(SUB),--sub "$(SUB)")

import: install ## upload a CSV to the running local stack: make import FILE=customers.csv [URL=...] [BUSINESS=demo]
	@test -n "$(FILE)" || { echo "usage: make import FILE=customers.csv [URL=$(URL)] [BUSINESS=$(BUSINESS)]" >&2; exit 2; }
	@PYTHONPATH=shared $(PY) -m local.import_cli "$(FILE)" --url "$(URL)" --business "$(BUSINESS)"

fuzz: install ## schemathesis against openapi.json on the local stack, longer: make fuzz FUZZ_EXAMPLES=50
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_COVERAGE=1 $(PY) -m pytest -n $(PYTEST_WORKERS) tests/local/test_fuzz.py

bench: install ## run every benchmark under bench/ and print one table
	PYTHONPATH=shared $(PY) -m bench

clean:
	rm -rf $(VENV) .local .mypy_cache .ruff_cache
