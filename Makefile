# Wicket: `make test` bootstraps a virtualenv (and Debian packages when run as root), then
# runs ruff and the whole test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# One test process per core; a module's tests stay in one process (their module fixtures,
# such as a whole demo for the language crawl, are made once), handed out in the order
# tests/conftest.py gives them (the longest first). The slowest tests are listed at the end,
# to keep the run's time in view.
PYTEST_ARGS ?= -n auto --dist loadscope --no-loadscope-reorder --durations=15

.PHONY: test lint venv deps bench clean demo walkthrough faults presale-proof

# The hub's tests run on SQLite and on PostgreSQL: as root, .ci/postgres starts the Debian
# cluster and creates the test role; otherwise set WICKET_TEST_PG to an admin URL. Without
# PostgreSQL the run stops here, rather than erring in every PostgreSQL case.
test: venv
	$(VENV)/bin/ruff check .
	pg="$${WICKET_TEST_PG:-$$(.ci/postgres)}" && WICKET_TEST_PG="$$pg" $(PY) -m pytest $(PYTEST_ARGS)

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

# `make demo`: the whole system on this machine (the hub, one appliance's web, gates and sync
# services, the device simulators) until Ctrl-C; ARGS="--for 60" runs it for a fixed time and
# prints a summary. See docs/demo.md.
ARGS ?=
demo: venv
	$(PY) -m tools.demo $(ARGS)

# The README's appliance walkthrough in demo/walkthrough/: a signing key, a sample venue signed
# with it, an appliance database that trusts the key (there is no hub to sync it from), and
# scans of each kind through the command line.
walkthrough: venv
	@rm -rf demo/walkthrough && mkdir -p demo/walkthrough
	@$(VENV)/bin/wicket-codes keygen --key-id 1 --out demo/walkthrough/hub-key.json
	@$(VENV)/bin/wicket-codes sample --key demo/walkthrough/hub-key.json --tickets 500 --out demo/walkthrough/allowlist.jsonl --codes demo/walkthrough/codes.tsv
	@$(VENV)/bin/wicket-edge --config demo/walkthrough/edge.toml init
	@$(VENV)/bin/wicket-edge --config demo/walkthrough/edge.toml trust-key "$$($(VENV)/bin/wicket-codes pubkey --key demo/walkthrough/hub-key.json)"
	@$(VENV)/bin/wicket-edge --config demo/walkthrough/edge.toml import demo/walkthrough/allowlist.jsonl
	@for case in "N1 seated" "N2 seated" "N1 refunded" "N1 unsynced" "N1 wrong_gate" "S1 realname"; do \
	  set -- $$case; echo; echo "== lane $$1, $$2 ticket"; \
	  $(VENV)/bin/wicket-edge --config demo/walkthrough/edge.toml scan --lane $$1 "$$(awk -F'\t' -v n=$$2 '$$1 == n { print $$3 }' demo/walkthrough/codes.tsv)" || true; \
	done
	@echo; echo "== lane S1, realname ticket with the holder's ID card"
	@awk -F'\t' '$$1 == "realname" { print $$4 }' demo/walkthrough/codes.tsv | \
	  $(VENV)/bin/wicket-edge --config demo/walkthrough/edge.toml scan --lane S1 --id-number - "$$(awk -F'\t' '$$1 == "realname" { print $$3 }' demo/walkthrough/codes.tsv)"
	@echo; $(VENV)/bin/wicket-edge --config demo/walkthrough/edge.toml entries

# The long fault run (docs/fault-testing.md): seeded schedules of network faults and agent
# kills against a real hub process; prints its counts, and the seed of any failing schedule.
faults: venv
	$(PY) -m tests.faults.run $(or $(ARGS),--schedules 1000 --seed 1)

# The presale lottery's proof at the issue's scale: 2,000 applicants for 300 tickets through
# real processes (make test runs the same journey at 600 for 90).
presale-proof: venv
	WICKET_PRESALE_APPLICANTS=2000 $(PY) -m pytest -q -s -p no:cacheprovider tests/e2e/test_presale_lottery.py

bench: venv
	$(PY) bench/edge_decide.py
	$(PY) bench/handheld_api.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
