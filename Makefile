# The commands the README gives. `demo` and `test` create the virtual environment when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo dev test lint format bench clean

# Exact pins from constraints.txt; torch==2.13.0 is the CPU build on these machines.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/numerai-pipeline demo

dev: $(STAMP)
	mkdir -p $${DAGSTER_HOME:-$(CURDIR)/.numerai/dagster}
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.numerai/dagster} $(BIN)/dagster dev -w workspace.yaml

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf .numerai-demo .pytest_cache
