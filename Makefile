# touchlens — the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= .demo
EXAMPLE ?= examples/outdoor_retail.yaml
CUSTOMERS ?= 5000
PORT ?= 8000

.PHONY: install demo map-demo test test-fast lint typecheck unit browser postgres java bench bench-scale lock clean

install: $(STAMP)

# Re-installs only when the dependency declarations change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $@

demo: install
	@$(BIN)/touchlens --workspace $(DEMO) demo --no-serve --customers $(CUSTOMERS)
	@$(BIN)/touchlens --workspace $(DEMO) touchpoints
	@$(BIN)/touchlens --workspace $(DEMO) matrix
	@$(BIN)/touchlens --workspace $(DEMO) map check
	@$(BIN)/touchlens --workspace $(DEMO) quarantine list
	@$(BIN)/touchlens --workspace $(DEMO) analyze scorecard
	@$(BIN)/touchlens --workspace $(DEMO) roadmap suggest
	@$(BIN)/touchlens --workspace $(DEMO) serve --port $(PORT) --admin demo

# The map alone, without demo data: `make map-demo EXAMPLE=examples/food_delivery.yaml`.
map-demo: install
	@rm -rf $(DEMO)-map
	@$(BIN)/touchlens init $(DEMO)-map
	@$(BIN)/touchlens --workspace $(DEMO)-map map import $(EXAMPLE)
	@$(BIN)/touchlens --workspace $(DEMO)-map touchpoints
	@$(BIN)/touchlens --workspace $(DEMO)-map matrix
	@$(BIN)/touchlens --workspace $(DEMO)-map map check

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

unit: install browser postgres java
	$(BIN)/pytest -q -n 2 --dist loadscope --no-loadscope-reorder

# The browser tests drive Debian's chromium (Playwright downloads no browser); installed when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The metadata-store tests start a throwaway PostgreSQL server (tests/pg.py); Debian's is installed when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

# The engine parity tests run PySpark in local mode, which needs a Java runtime (17 or 21: Spark 3.5 and 4.0 both
# take 17); Debian's default one is installed when `java` is missing.
java:
	@command -v java >/dev/null 2>&1 || { \
	  SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq default-jre-headless >/dev/null; }

test: lint typecheck unit

# The quick loop while writing code (about 2 minutes on two cores): every test but the oracle, engine, browser and slow
# ones (docs/testing.md), on both cores; loadscope keeps a file's tests, and its module fixtures, on one worker.
# `make test` still runs them all.
test-fast: install
	$(BIN)/pytest -q -m "not oracle and not engine and not browser and not slow" -n 2 --dist loadscope

bench: install
	$(BIN)/python -m benchmarks

# 100 million events on one machine, and Spark against DuckDB on 10 million (about an hour; docs/scale.md).
bench-scale: install java
	$(BIN)/python -m benchmarks scale

# Refreshes the constraints file from what is installed (run after changing pyproject.toml).
lock: install
	$(BIN)/python -m pip freeze --exclude-editable --exclude touchlens > constraints.txt

clean:
	rm -rf $(VENV) $(DEMO) .mypy_cache .ruff_cache .pytest_cache
