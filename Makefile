# Bootstrap a local virtual environment, build the Cython kernels, run the two README commands.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYX    := $(wildcard csrc_cython/*.pyx csrc_cython/*.pxd csrc_cython/*.h)

.PHONY: all install build demo test test-fast lint bench clean client-no-compiler jvm-client

all: test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Editable install with the dev extra; re-run when packaging metadata changes.
$(STAMP): $(PY) pyproject.toml setup.py
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Compile the Cython extensions in place; re-run when a .pyx changes.
build: $(STAMP) $(PYX)
	$(PY) setup.py --quiet build_ext --inplace
	$(PY) -c "import crypten_lite.ring._ring_cy, crypten_lite.encoding._encoding_cy" \
		|| (echo "the Cython kernels did not build (is a C compiler installed?)" >&2; exit 1)

# The edge client installs and runs without a C compiler (the extensions are optional):
# a fresh venv, a non-editable install with the compiler disabled, the client tests.
client-no-compiler:
	bash .ci/client-no-compiler

# The JVM/Android edge client (clients/jvm): Debian's grpc-java, Maven offline, its unit
# tests, then its integration test against real Python servers (see .ci/jvm-client).
jvm-client: build
	bash .ci/jvm-client

install: build

demo: build
	$(VENV)/bin/crypten-lite-launch -n 2 --clients 10 examples/federated_demo.py

lint: build
	$(VENV)/bin/ruff check $(wildcard crypten_lite benchmarks tests examples launcher)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The whole suite: static checks, then the tests against the compiled and the pure backend.
test: lint
	$(VENV)/bin/pytest
	CRYPTEN_LITE_PURE=1 $(VENV)/bin/pytest

test-fast: build
	$(VENV)/bin/pytest -x

bench: build
	$(VENV)/bin/crypten-lite-bench

clean:
	rm -rf build $(VENV) crypten_lite/**/*.so csrc_cython/*.c
