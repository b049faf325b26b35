# Two commands do all set-up: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test lint format bench install browser clean audit

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# The settings' Wattics default is its production host: the local run talks to the simulator.
run: install
	WATTICS_BASE_URL=$${WATTICS_BASE_URL:-http://127.0.0.1:8102} $(BIN)/python manage.py runportal

# Browser tests need Debian's chromium; bin/ensure-chromium installs it where it can.
browser:
	bash bin/ensure-chromium

test: install browser
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/run_all.py

# pip-audit of the pinned requirements against PyPI's advisory data. Not part of `make test`
# or CI: it needs the advisory service. In a venv of its own, so its dependencies never
# enter the portal's. --strict: a requirement that could not be audited fails the run.
AUDIT_VENV ?= .venv-audit
audit:
	test -x $(AUDIT_VENV)/bin/pip-audit || { $(PYTHON) -m venv $(AUDIT_VENV) && \
		$(AUDIT_VENV)/bin/python -m pip install --quiet pip-audit==2.10.1; }
	$(AUDIT_VENV)/bin/pip-audit --strict --progress-spinner off -r requirements-dev.txt

clean:
	rm -rf .pytest_cache test-artifacts
