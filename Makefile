# Two commands on a fresh machine: `make run` (the demo) and `make test`.
# Both create .venv when missing and install the project into it first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

# No telemetry prompt, no network calls at run time.
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export MPLBACKEND := Agg

.PHONY: run test test-fast install viz mlflow-ui serve ablation-quick clean

# Running needs the project alone; the tests add pytest, the notebook runner and Ray.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	touch $(TEST_STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kedro run --pipelines=train

# The whole suite: unit, integration and end-to-end tiers (5-6 minutes on a 2-core AVX512 CPU, about 9 on an AVX2 one).
test: $(TEST_STAMP)
	$(BIN)/python -m pytest

# The in-process unit tier alone (about a minute and a half on 2 cores).
test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest tests/unit

viz: $(STAMP)
	$(BIN)/kedro viz run --host 127.0.0.1 --no-browser

# The seed's ablation ladder at its quick scale (tiny widths, the demo digits, CPU).
ablation-quick: $(STAMP)
	$(BIN)/python -m classwise.ablation --scale quick

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1

# Serve a registered model on 127.0.0.1 (POST /invocations); e.g. make serve MODEL=models:/classwise/3 PORT=5002.
# MLflow's scoring app with the model read as data (none of its code runs) and requests bounded:
# docs/reliability.md.
MODEL ?= models:/classwise/latest
PORT ?= 5001
serve: $(STAMP)
	MLFLOW_TRACKING_URI=sqlite:///mlflow.db $(BIN)/python -m classwise.serving.server -m $(MODEL) -p $(PORT)

# Every output of a run; a user's images in data/01_raw stay.
clean:
	find data -mindepth 1 -path data/01_raw -prune -o -type f ! -name .gitkeep -exec rm -f {} +
	rm -rf mlflow.db mlruns mlartifacts build
