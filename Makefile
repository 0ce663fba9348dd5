# The commands the README gives. `demo` and `test` create the virtual environment when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo dev test test-ui test-postgres lint format bench bench-ingest bench-train bench-quality bench-live bench-backfill bench-replay clean

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
	$(BIN)/pytest -q --ignore=tests/ui

# The Dagster UI in headless Chromium: Debian's chromium (apt-get when missing) driven by Playwright.
test-ui: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,ui]'
	$(BIN)/pytest -q tests/ui

# deploy/dagster.yaml against a throw-away PostgreSQL server (installed with apt-get when missing):
# the training job on the tiny simulated tournament, its run and materialisations read back.
test-postgres: $(STAMP)
	PYTHON=$(BIN)/python bash deploy/test_postgres.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks (results appended to bench/RESULTS.md; not run by CI). `bench` runs the quick ones;
# bench-ingest generates the full-scale tournament first (about 25 minutes on 2 cores).
bench: bench-train bench-quality bench-live bench-backfill

bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

bench-train: $(STAMP)
	$(BIN)/python bench/train.py

bench-quality: $(STAMP)
	$(BIN)/python bench/quality.py

bench-live: $(STAMP)
	$(BIN)/python bench/live.py

bench-backfill: $(STAMP)
	$(BIN)/python bench/backfill.py

# Walk-forward replay: the service (train, then submit per round through `sim serve`) against the
# example LightGBM on the same held-out eras of the `eval` tournament, two seeds (hours on 2 cores).
bench-replay: $(STAMP)
	$(BIN)/python bench/replay.py

clean:
	rm -rf .numerai-demo .pytest_cache
