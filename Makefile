# Each target creates .venv when missing and installs what it needs (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STATE_DIR ?= .vapixlog-state
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: serve test lint unit clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "vapixlog needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	@command -v curl >/dev/null || (apt-get update -q && apt-get install -y -q curl)
	touch $@

serve: $(VENV)/.installed-run
	$(BIN)/vapixlog serve --host $(HOST) --port $(PORT) --state-dir $(STATE_DIR) $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(STATE_DIR) .pytest_cache .mypy_cache .ruff_cache
