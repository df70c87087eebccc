# Wicket: `make test` bootstraps a virtualenv (and Debian packages when run as root), then
# runs ruff and the whole test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: test lint venv deps bench clean

# The hub's tests run on SQLite and on PostgreSQL: as root, .ci/postgres starts the Debian
# cluster and creates the test role; otherwise set WICKET_TEST_PG to an admin URL.
test: venv
	$(VENV)/bin/ruff check .
	WICKET_TEST_PG="$${WICKET_TEST_PG:-$$(.ci/postgres)}" $(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml .ci/debian-packages
	@.ci/debian-deps
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Wicket needs Python 3.11 or newer; this is " + sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

bench: venv
	$(PY) bench/edge_decide.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
