# Two commands do all the set-up on a fresh machine:
#   make run    creates .venv if missing, installs, runs the nightly Airflow DAG once, here
#               (SQLite Airflow under ./var/airflow, local Spark, files under ./var); DATASET=ml-1m
#               or DATASET=/path/to/ratings picks other data; OFFLINE=1 never downloads and, unless
#               DATASET is given, asks for synthetic data by name (synthetic:ml-latest-small), as
#               make run does by itself when the default data set cannot be downloaded
#   make test   creates .venv if missing, installs, runs every test (slow ones included) + ruff
PYTHON ?= python3
OFFLINE ?=
ifneq ($(OFFLINE),)
DATASET ?= synthetic:ml-latest-small
OFFLINE_FLAG := --offline
else
DATASET ?= ml-latest-small
OFFLINE_FLAG :=
endif
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN)/python)

.PHONY: install run test test-fast lint format dist clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all]'
	@# apache-airflow-providers-apache-spark pulls pyspark-client, whose Python files overwrite
	@# pyspark's and break pandas UDFs. Reinstall pyspark last so Python and JVM sides match.
	$(BIN)/python -m pip install -q --no-deps --force-reinstall \
		"pyspark==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("pyspark"))')"
	@touch $(STAMP)

# With the default data set and no network, make run says so and asks for synthetic data of the
# same shape by name; a DATASET you give is used as is (a missing one fails the night).
run: $(STAMP)
	@if [ "$(origin DATASET)" = "file" ] && [ -z "$(OFFLINE)" ] && \
		! $(BIN)/recsys data get $(DATASET) --dest data >/dev/null 2>&1; then \
		echo "make run: $(DATASET) could not be downloaded (offline?); running the night on" \
			"synthetic data of its shape, asked for by name: synthetic:$(DATASET)"; \
		$(BIN)/recsys nightly --dataset synthetic:$(DATASET); \
	else \
		$(BIN)/recsys nightly --dataset $(DATASET) $(OFFLINE_FLAG); \
	fi

test: $(STAMP) lint
	$(BIN)/python -m pytest -m "slow or not slow" -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# A zip of the recsys package for spark-submit --py-files (what a cluster user ships).
dist: $(STAMP)
	$(BIN)/python -m recsys.package dist/recsys.zip

clean:
	rm -rf $(VENV) dist .pytest_cache
