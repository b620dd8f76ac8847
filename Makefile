# Everything installs itself: the only prerequisites are Python 3.10+ and make.
PYTHON ?= python3
VENVS := .venvs
UV := $(VENVS)/tools/bin/uv
AIRFLOW_NEWEST := 3.3.2
AIRFLOW_OLDEST := 3.1.8
NEWEST := $(VENVS)/airflow-$(AIRFLOW_NEWEST)
OLDEST := $(VENVS)/airflow-$(AIRFLOW_OLDEST)
PYTEST_ARGS ?=
# google: the vertex_veo tests (the Google provider, for its google_cloud_platform connections).
EXTRAS := s3,google,dev,bench,docs
# The newest Airflow also gets the distributed suite's packages (Celery provider, PostgreSQL and Redis servers).
EXTRAS_$(AIRFLOW_NEWEST) := $(EXTRAS),distributed
# Pins a venv takes in place of Airflow's constraints file for that release (which lives outside the package
# registry, so `make` cannot fetch it): users install Airflow with its constraints, and the tests must see
# what they see. Airflow 3.1.x's get_fernet() sets an attribute on cryptography's MultiFernet, which
# cryptography 51 (a Rust type) refuses: with a fernet key, no encrypted Variable or connection can be
# written. Airflow's constraints for 3.1.x pin an older cryptography (they predate 51); Airflow 3.3 wraps
# MultiFernet instead and takes cryptography 51 as it is, so the newest venv (and the package's own
# dependencies) pin nothing.
# Remove this pin when the oldest supported Airflow is 3.3 or later.
PINS_$(AIRFLOW_OLDEST) := "cryptography<51"
BENCH_ARGS ?=

.PHONY: help demo airflow distributed docs docs-strict test lint typecheck test-newest test-oldest test-e2e test-distributed test-matrix bench clean

help:
	@echo "make demo   - run the example DAG end to end against the bundled simulator"
	@echo "make test   - lint, type-check and run the tests on Airflow $(AIRFLOW_NEWEST) and $(AIRFLOW_OLDEST)"
	@echo "make airflow - a full local Airflow (UI) with the simulator and the example DAGs"
	@echo "make distributed - Airflow scaled out: CeleryExecutor, PostgreSQL, Redis, two workers, two triggerers (UI)"
	@echo "make test-distributed - the distributed end-to-end suite alone (part of make test)"
	@echo "make docs   - build the documentation site into build/site/ (open build/site/index.html)"
	@echo "make bench  - run the benchmarks"

$(UV):
	$(PYTHON) -m venv $(VENVS)/tools
	$(VENVS)/tools/bin/python -m pip install --quiet --disable-pip-version-check uv

# --compile-bytecode: every Python process of the suites (Airflow's services, the CLI, fresh-process tests)
# reads compiled bytecode instead of compiling Airflow's sources again where the environment sets
# PYTHONDONTWRITEBYTECODE (importing Airflow: ~4.5 s without it, ~1.9 s with it on 2 cores).
$(VENVS)/airflow-%/.installed: pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENVS)/airflow-$*
	VIRTUAL_ENV=$(VENVS)/airflow-$* $(UV) pip install --quiet --compile-bytecode -e ".[$(or $(EXTRAS_$*),$(EXTRAS))]" "apache-airflow==$*" $(PINS_$*)
	touch $@

demo: $(NEWEST)/.installed
	$(NEWEST)/bin/python scripts/demo.py

airflow: $(NEWEST)/.installed
	$(NEWEST)/bin/python scripts/airflow_local.py

distributed: $(NEWEST)/.installed
	$(NEWEST)/bin/python scripts/airflow_distributed.py

# The documentation site (MkDocs, Material theme, API pages from the docstrings).
docs: $(NEWEST)/.installed
	NO_MKDOCS_2_WARNING=1 $(NEWEST)/bin/mkdocs build
	@echo "The docs are in build/site/: open build/site/index.html"

# Strict: a broken link, a missing page or image, or an API name that no longer exists fails the build.
docs-strict: $(NEWEST)/.installed
	NO_MKDOCS_2_WARNING=1 $(NEWEST)/bin/mkdocs build --strict

lint: $(NEWEST)/.installed
	$(NEWEST)/bin/ruff check .
	$(NEWEST)/bin/ruff format --check .

typecheck: $(NEWEST)/.installed
	$(NEWEST)/bin/mypy

test-newest: $(NEWEST)/.installed
	$(NEWEST)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# The fault matrix drives the provider's own HTTP code, whose behaviour does not depend on Airflow's
# version: it runs on the newest only (`make test-matrix` runs it alone).
test-oldest: $(OLDEST)/.installed
	$(OLDEST)/bin/python -m pytest -p no:cacheprovider -m "not fault_matrix" $(PYTEST_ARGS)

# The fault matrix alone; VIDEOGEN_FAULT_MATRIX=full runs the whole product instead of the covering sample.
test-matrix: $(NEWEST)/.installed
	$(NEWEST)/bin/python -m pytest -p no:cacheprovider -m fault_matrix tests/test_fault_matrix.py

test: lint typecheck docs-strict test-newest test-oldest

# The end-to-end suite alone (a real scheduler, triggerer, dag-processor and api-server); `make test` runs it too.
test-e2e: $(NEWEST)/.installed $(OLDEST)/.installed
	$(NEWEST)/bin/python -m pytest -p no:cacheprovider -m e2e tests/e2e
	$(OLDEST)/bin/python -m pytest -p no:cacheprovider -m e2e tests/e2e

# The distributed suite alone (CeleryExecutor on PostgreSQL and Redis, two workers, two triggerers, machines
# that die); `make test` runs it too, on the newest Airflow (it is skipped on the oldest).
test-distributed: $(NEWEST)/.installed
	$(NEWEST)/bin/python -m pytest -p no:cacheprovider -m distributed tests/e2e

bench: $(NEWEST)/.installed
	$(NEWEST)/bin/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENVS) .demo build dist *.egg-info
