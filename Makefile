# Each target creates .venv when missing and installs what it needs (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CLI's default too (DECISIONS 15): $VAPIXLOG_STATE_DIR, else ./.vapixlog-state.
STATE_DIR ?= $(or $(VAPIXLOG_STATE_DIR),.vapixlog-state)
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: serve test lint clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "vapixlog needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# The tests also use Debian's curl (an HTTP client), chromium (driven by Playwright; no
# browser download) and rsyslog with its TLS driver (the remote syslog receiver).
DEBIAN_TEST_PACKAGES := curl chromium rsyslog rsyslog-gnutls

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	@missing=$$(for p in $(DEBIAN_TEST_PACKAGES); do \
		command -v $$p >/dev/null || dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	touch $@

serve: $(VENV)/.installed-run
	@echo "The vapixlog command is $(BIN)/vapixlog ('. $(BIN)/activate' puts it on PATH)."
	$(BIN)/vapixlog serve --host $(HOST) --port $(PORT) --state-dir $(STATE_DIR) $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Two workers, one test file each at a time (module fixtures stay in one process): the
# end-to-end tests mostly wait on their servers. PYTEST_WORKERS=0 runs them in one process.
PYTEST_WORKERS ?= 2
test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(STATE_DIR) .pytest_cache .mypy_cache .ruff_cache

# SIGKILL a loaded server 200 times; checks that no acknowledged entry is lost, doubled or torn.
.PHONY: crash-test
crash-test: $(VENV)/.installed-test
	$(BIN)/python tests/crashtest.py --kills 200 $(CRASH_ARGS)

# Issue 15's acceptance at full size: SIGKILL `vapixlog capture` at random moments across 200
# devices and rerun until done; checks one capture and one reboot per device, persistent off.
.PHONY: capture-kill-test
capture-kill-test: $(VENV)/.installed-test
	$(BIN)/python tests/capturekill.py --devices 200 --kills 10 $(CAPTURE_KILL_ARGS)

# Benchmarks (issue 6; not part of `make test` or CI): the server on core 0, the load
# generator on core 1. Installs Debian's wrk, rsyslog (issue 14's receiver) and the bench-only
# Python tools if missing. One scenario alone: BENCH_ARGS="--only requests|forwarding|fleet|insight"
# (fleet: 10,000 devices, one address each, unless --fleet N).
BENCH_TOOLS := py-spy pyinstrument granian fastjsonschema jsonschema-rs
BENCH_ARGS ?=

.PHONY: bench
bench: $(VENV)/.installed-run
	@command -v wrk >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk)
	@command -v taskset >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q util-linux)
	@test -x /usr/sbin/rsyslogd && dpkg -s rsyslog-gnutls >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsyslog rsyslog-gnutls)
	$(BIN)/pip install -q $(BENCH_TOOLS)
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	case "$(BENCH_ARGS)" in *--only*) ;; *) $(BIN)/python bench/compare.py ;; esac
