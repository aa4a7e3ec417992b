# touchlens — the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= .demo
EXAMPLE ?= examples/outdoor_retail.yaml

.PHONY: install demo test lint typecheck unit bench lock clean

install: $(STAMP)

# Re-installs only when the dependency declarations change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $@

demo: install
	@rm -rf $(DEMO)
	@$(BIN)/touchlens init $(DEMO)
	@$(BIN)/touchlens --workspace $(DEMO) map import $(EXAMPLE)
	@$(BIN)/touchlens --workspace $(DEMO) touchpoints
	@$(BIN)/touchlens --workspace $(DEMO) matrix
	@$(BIN)/touchlens --workspace $(DEMO) map check

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q

test: lint typecheck unit

bench: install
	$(BIN)/python -m benchmarks

# Refreshes the constraints file from what is installed (run after changing pyproject.toml).
lock: install
	$(BIN)/python -m pip freeze --exclude-editable --exclude touchlens > constraints.txt

clean:
	rm -rf $(VENV) $(DEMO) .mypy_cache .ruff_cache .pytest_cache
