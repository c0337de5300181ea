# Two commands do everything on a fresh machine: `make up` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build here (it lies on local disk); GPU users: make up TORCH_SPEC="torch==2.13.0 --index-url <cuda index>"
TORCH_SPEC ?= torch==2.13.0

CLIENTS ?= .venv-clients

.PHONY: install clients debs prerequisites protos up down test unit integration lint bench clean

# torch with pip (TORCH_SPEC may name a CUDA wheel index; here pip takes the CPU file
# on disk); the rest with uv, which resolves and fetches in parallel: ~30 s against
# pip's ~75 s here, the same packages. uv leaves the torch already installed alone.
# It reads no pip.conf: a private index goes in UV_INDEX_URL, or install with pip:
# make up INSTALLER="$(BIN)/python -m pip install"
INSTALLER ?= $(BIN)/uv pip install --compile-bytecode --python $(BIN)/python

$(BIN)/maas: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(INSTALLER) --quiet -e ".[dev]"
	touch $(BIN)/maas

install: $(BIN)/maas

# Triton's and KServe's clients in a venv of their own (tests/clients.txt): the OIP v2
# tests run them as a user would, beside the platform, not inside its environment.
$(CLIENTS)/.installed: tests/clients.txt
	test -x $(CLIENTS)/bin/python || $(PYTHON) -m venv $(CLIENTS)
	$(CLIENTS)/bin/python -m pip install --quiet uv
	$(CLIENTS)/bin/uv pip install --quiet --compile-bytecode --python $(CLIENTS)/bin/python \
		-r tests/clients.txt
	touch $@

clients: $(CLIENTS)/.installed

# The console's browser tests drive Debian's Chromium, headless, with Playwright (a dev
# dependency); a CJK font renders the Chinese example. tests/integration/test_postgres.py
# runs MLflow's store and the security database on Debian's PostgreSQL, which it starts
# itself (its own folder and port). Installed once, in one apt run (as root or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEST_DEBS := chromium fonts-wqy-zenhei postgresql
debs:
	@dpkg -s $(TEST_DEBS) >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(TEST_DEBS))

# The OIP v2 gRPC stubs (maas_ray/serving/proto) from their .proto; committed, so only
# an edit of the .proto needs this. An older grpcio-tools on purpose: generated code
# runs on protobuf/grpcio at least as new as what generated it (pyproject's floors).
PROTOC_VENV ?= /tmp/maas-protoc
protos:
	test -x $(PROTOC_VENV)/bin/python || $(PYTHON) -m venv $(PROTOC_VENV)
	$(PROTOC_VENV)/bin/python -m pip install --quiet "grpcio-tools==1.71.0"
	$(PROTOC_VENV)/bin/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
		--grpc_python_out=. maas_ray/serving/proto/predict_v2.proto

up: install
	$(BIN)/maas up
	$(BIN)/python -m examples.seed

down:
	@if [ -x $(BIN)/maas ]; then $(BIN)/maas down; else echo "nothing installed"; fi

# What the tests need, fetched side by side: the two environments and the Debian packages.
prerequisites:
	$(MAKE) -j3 --no-print-directory install clients debs

# Two pytest workers (tests/conftest.py schedules them): one runs the platform's tests
# (integration and reliability, in file order, on one session platform), the other the
# unit tier beside it.
test: prerequisites
	$(BIN)/python -m pytest -n 2 tests

unit: install
	$(BIN)/python -m pytest tests/unit

# Serving benchmark (under 10 min): wrk is its load generator, h2load (nghttp2-client)
# the gRPC one of benchmarks/protocols.py (Debian packages).
bench: install
	command -v wrk >/dev/null && command -v h2load >/dev/null || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk nghttp2-client)
	$(BIN)/python -m benchmarks.serving

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean: down
	rm -rf $(VENV) $(CLIENTS)
