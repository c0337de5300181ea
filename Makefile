# Two commands do everything on a fresh machine: `make up` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build here (it lies on local disk); GPU users: make up TORCH_SPEC="torch==2.13.0 --index-url <cuda index>"
TORCH_SPEC ?= torch==2.13.0

.PHONY: install up down test unit integration lint bench clean

$(BIN)/maas: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/maas

install: $(BIN)/maas

up: install
	$(BIN)/maas up
	$(BIN)/python -m examples.seed

down:
	@if [ -x $(BIN)/maas ]; then $(BIN)/maas down; else echo "nothing installed"; fi

test: install
	$(BIN)/python -m pytest tests

unit: install
	$(BIN)/python -m pytest tests/unit

# Serving benchmark (under 10 min): wrk is its load generator (Debian package).
bench: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m benchmarks.serving

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean: down
	rm -rf $(VENV)
