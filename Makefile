# Everything runs from a virtualenv in .venv, made on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo consumers serve test lint typecheck check bench bench-smoke messages clean

$(BIN)/cornerstore: pyproject.toml audit_verifier/pyproject.toml client_sdk/pyproject.toml \
		reference_consumers/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./audit_verifier -e '.[dev]' -e ./client_sdk -e ./reference_consumers
	touch $@

install: $(BIN)/cornerstore

## Install, load demo data into SQLite (./cornerstore-data) and serve on :8000.
demo: install
	$(BIN)/cornerstore demo

## A demo hub, the warehouse and both reference consumers, each its own process, and the
## loop walked around them: request, approve, read, forecast, order, deliver, revoke, purge.
consumers: install
	$(BIN)/cornerstore-consumers loop

serve: install
	$(BIN)/cornerstore serve

## The whole test suite, on SQLite and on PostgreSQL.
## At most 4 workers: each holds a hub (its pool, the consent counter's pool, the
## audit writer's connection) and some tests start four hub processes, so more
## workers would run PostgreSQL out of its 100 connections on a many-core machine.
test: install
	bash .ci/system-packages
	$(BIN)/pytest -n auto --maxprocesses 4

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

## Benchmarks at full size (minutes; needs PostgreSQL).
bench: install
	$(BIN)/python -m bench all

## Every benchmark at a tiny size, so that none of them rots.
bench-smoke: install
	$(BIN)/python -m bench all --smoke

## Extract the web console's strings and merge them into each language's .po file.
messages: install
	$(BIN)/pybabel extract -F web_console/babel.cfg -o web_console/locales/messages.pot --no-location --omit-header .
	$(BIN)/pybabel update -i web_console/locales/messages.pot -l zh_Hans -w 100 -o web_console/locales/zh_Hans/LC_MESSAGES/messages.po

clean:
	rm -rf $(VENV) cornerstore-data .mypy_cache .ruff_cache .pytest_cache
