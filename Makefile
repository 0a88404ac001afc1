# Two commands for a fresh machine: `make run` (the chat UI on the bundled corpus) and `make test`.
# Each creates ./.venv on first use and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench eval clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,llm]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/rag ui

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check rag ingest ui evals tests benchmarks
	$(BIN)/mypy rag ingest ui evals tests benchmarks

test: lint
	$(BIN)/pytest

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/ingest_speed.py

eval: $(VENV)/.installed
	$(BIN)/python -m evals.run --split test --fresh-index --out eval-out

clean:
	rm -rf $(VENV) .rag
