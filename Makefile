# Two commands: `make repro` (set up if needed, run the pipeline on the demo data)
# and `make test` (set up if needed, run the test suite). pip installs without compiling, then
# compileall compiles the packages on every core (the install in 40 s instead of 65 s).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup repro test test-fast lint bench exp figures report browser lock clean-venv

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11" \
	  "or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib
	$(BIN)/python -c "import bambi, shap, dvc, distributed, statsmodels, sklearn, pandas, numpy, \
	  joblib, yaml, matplotlib, pyarrow, jinja2"
	touch $(STAMP)

# params.yaml is checked first: DVC itself stops on some mistakes (`labels: EmoClass`, not a list)
# while reading dvc.yaml, before its `check` stage could say what is wrong
repro: $(STAMP)
	$(BIN)/python -m stages.check
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

# the linter and the formatter (ruff, settings in pyproject.toml); `ruff format .` fixes the layout
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the edit-test loop: every test but the slow ones that run dvc on a copy of the project
test-fast: lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

# the DVC experiments' presence tables in 80 columns: label, chosen configuration, balanced
# accuracy, interval, p, verdict
exp: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m smp_balr.report --table

# rewrite the README's figures from the metrics of the last `make repro` (docs/figures.json)
figures: $(STAMP)
	$(BIN)/python -m smp_balr.docs --collect

# the presence study and its report are pipeline stages (study@<label>, report): `make repro`
# runs them;
# this target brings reports/presence.{md,html} up to date and nothing else
report: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro report

# Debian's chromium, for the test that renders reports/presence.html offline (not needed otherwise)
browser:
	bash .ci/install-chromium

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# regenerate the pinned set from requirements.txt (needs the network)
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -r requirements.txt
	.lockenv/bin/pip freeze --exclude-editable > requirements.lock && rm -rf .lockenv

clean-venv:
	rm -rf $(VENV)
