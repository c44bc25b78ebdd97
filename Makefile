# The README names these targets; .ci/run calls `make test` on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
# The tests start `python -m bcm` hundreds of times: let Python keep its compiled modules, even where
# the environment says not to (PYTHONDONTWRITEBYTECODE), instead of compiling bcm afresh each time.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo test test-fast lint typecheck unit bench schema clean

# Install exactly the tested versions (constraints.txt) into a local virtualenv.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The main job on embedded defaults (Prefect's embedded server, SQLite in .bcm/, the transcript
# instead of Slack): validate the library, list it, run a runbook end to end as an exercise, then
# play a tabletop exercise at 60 times speed (an hour of play in a minute) with its scripted responses and write its after-action
# report (the latest run of that exercise) to .bcm/aar.html.
demo: $(STAMP)
	$(BIN)/bcm validate
	$(BIN)/bcm list
	$(BIN)/bcm run dc-power-loss --mode exercise --auto-approve -p site=lon-dc1
	$(BIN)/bcm exercise run dc-power-loss-tabletop --speed 60 --auto-respond
	$(BIN)/bcm report aar dc-power-loss-tabletop --out .bcm/aar.html

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Three workers on two cores: the tests mostly wait (subprocesses, Prefect, HTTP), so this halves the time;
# work stealing keeps a worker from idling while another still holds a queue of slow tests.
PYTEST_WORKERS ?= 3
unit: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

test: lint typecheck unit

# For every change: lint and the tests that need no Prefect server and no PostgreSQL (under a minute).

FAST_WORKERS ?= 3
test-fast: lint
	$(BIN)/pytest -n $(FAST_WORKERS) --dist worksteal -m "not prefect and not postgres"

bench: $(STAMP)
	$(BIN)/python benchmarks/validate.py
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/notify.py
	$(BIN)/python benchmarks/decision.py
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/serve.py

schema: $(STAMP)
	$(BIN)/bcm schema > runbooks/runbook.schema.json
	$(BIN)/bcm schema --exercise > runbooks/exercise.schema.json

clean:
	rm -rf $(VENV) .bcm .pytest_cache .mypy_cache .ruff_cache
