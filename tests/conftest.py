"""Fixtures that build real things: signing keys, a migrated SQLite file, a sample venue."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from werkzeug.routing import Rule

from edge import db as db_mod
from edge.allowlist import apply_changes
from edge.engine import Engine
from edge.holders import HolderVault, generate_holder_key
from sync import sample
from sync.changes import parse_change
from sync.keys import generate_signing_key

# 10:30 in Shanghai: the sample's first session (09:00-12:00 local) is open.
NOW = datetime(2026, 7, 1, 2, 30, tzinfo=UTC)


# The hub makes admins sign in with a one-time password as well (TOTP_REQUIRED_ROLES); tests
# about something else, and every hub they start (in process, or as a process from a fixture of
# any scope, or from a harness that copied the environment at import), sign in with the password
# alone. Set when the tests are collected; tests/cloud/test_two_step.py turns the rule back on.
os.environ["WICKET_HUB_TOTP_ROLES"] = ""

# No example may fail for taking long: on a busy machine any example can be slow, and a
# deadline would fail it (and Hypothesis then reports the replay as flaky). Loaded before the
# test modules are imported, so their own @settings start from it.
settings.register_profile("wicket", deadline=None)
settings.load_profile("wicket")


def _url_builders_made_once() -> None:
    """Every app the tests make has the same few hundred URL rules, and for each rule it adds
    Werkzeug writes and compiles two Python functions that build its URLs: a tenth of a second
    an app, minutes of the whole run. Keep them per process, keyed by all they are made from
    (the rule's parts, whether unknown arguments go to the query string, its defaults); the
    function reads the rule's converters from the rule it is bound to at each call."""
    made_by_werkzeug = Rule._compile_builder
    made: dict[tuple, Any] = {}

    def compile_builder(self: Rule, append_unknown: bool = True):
        defaults = self.defaults or {}
        key = (append_unknown, tuple(self._trace), tuple(str(k) for k in defaults),
               tuple((name, self._converters[name].to_url(defaults[name]))
                     for dynamic, name in self._trace if dynamic and name in defaults))
        if key not in made:
            made[key] = made_by_werkzeug(self, append_unknown)
        return made[key]

    Rule._compile_builder = compile_builder


_url_builders_made_once()


@pytest.fixture(scope="session")
def hub_key():
    return generate_signing_key(1)


@pytest.fixture(scope="session")
def venue(hub_key):
    return sample.build(hub_key, NOW, tickets=40)


@pytest.fixture
def holder_key():
    return generate_holder_key()


@pytest.fixture
def vault(holder_key):
    return HolderVault(holder_key)


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "edge.db"
    db_mod.migrate(db_mod.open_db(path))
    return path


@pytest.fixture
def conn(db_path):
    c = db_mod.connect(db_path)
    yield c
    c.close()


@pytest.fixture
def loaded(conn, vault, venue):
    """A connection to a database holding the sample venue's allowlist."""
    apply_changes(conn, vault, [parse_change(c) for c in venue.changes])
    return conn


@pytest.fixture
def engine(loaded, vault):
    return Engine(loaded, vault)


# libpcsclite reads PCSCLITE_CSOCK_NAME once, when the process first talks to PC/SC: each test
# process names the socket of its own pcscd (the fixture below) before any test can talk to
# PC/SC, so that the tests run in several processes (make test) each reach their own daemon
# whichever test of theirs talks to PC/SC first.
PCSCD_DIR = Path(tempfile.mkdtemp(prefix="wicket-pcscd-"))
atexit.register(shutil.rmtree, PCSCD_DIR, True)
os.environ["PCSCLITE_CSOCK_NAME"] = str(PCSCD_DIR / "run" / "pcscd.comm")


@pytest.fixture(scope="session")
def pcscd():
    """pcscd with vsmartcard's two virtual slots, started for this test run, stopped after it.

    The daemon keeps its socket path for the whole run (a test that stops it starts it
    again): the one this process named when the tests were collected."""
    from drivers.sim.pcscd import VirtualPcscd

    daemon = VirtualPcscd(PCSCD_DIR)
    os.environ.update(daemon.env)
    daemon.start()
    yield daemon
    daemon.stop()


def _hub_data_key() -> str:
    """The hub's data key file (cloud/core/seal.py) for the whole run, made when the tests are
    collected and named in the environment before any test module copies it: every hub the
    tests start, in process or as a subprocess, seals with it."""
    import atexit
    import os
    import shutil
    import tempfile

    from cloud.core.seal import ENV, create_key_file

    folder = tempfile.mkdtemp(prefix="wicket-hub-data-key-")
    atexit.register(shutil.rmtree, folder, True)
    path = os.path.join(folder, "data.key")
    create_key_file(path)
    os.environ[ENV] = path
    return path


HUB_DATA_KEY = _hub_data_key()


# The longest modules (whole systems of processes, browsers, fault runs) are handed out first,
# the longest of them before the others (`make test` runs pytest-xdist without its own order,
# which puts the modules of most tests first): the tests are spread over processes a module at a
# time, and a long module handed out last would run alone at the end of the run. After them, the
# modules of most tests first.
FIRST = ("tests/e2e/test_i18n_crawl.py", "tests/e2e/test_demo.py", "tests/e2e/test_sync_agent.py",
         "tests/cloud/test_pages_query_fuzz.py", "tests/faults/test_fault_run.py",
         "tests/e2e/test_gate_runtime.py", "tests/e2e/test_presale_lottery.py",
         "tests/e2e/test_ops_dashboard.py", "tests/e2e/test_buyer_journey.py",
         "tests/e2e/test_storefront_pages.py", "tests/edge/test_concurrency.py",
         "tests/edge/test_crash.py", "tests/edge/web/test_browser.py",
         "tests/e2e/test_handheld_page.py", "tests/e2e/", "tests/faults/",
         "tests/edge/web/test_gate_browser.py", "tests/edge/web/test_browser_devices.py")


def pytest_collection_modifyitems(session, config, items):
    modules = Counter(item.nodeid.split("::")[0] for item in items)

    def rank(item) -> tuple[int, int]:
        module = item.nodeid.split("::")[0]
        first = next((n for n, prefix in enumerate(FIRST) if module.startswith(prefix)),
                     len(FIRST))
        return first, -modules[module]

    items.sort(key=rank)  # stable: the order within a module is kept


@pytest.fixture(scope="session")
def _databases(tmp_path_factory):
    """The hub databases' templates of this test process (tests/cloud/conftest.py
    ``_Databases``): here, so that every test module using ``hub_url`` finds it, in
    tests/cloud or not."""
    from tests.cloud.conftest import _Databases

    made = _Databases(tmp_path_factory.mktemp("hub-templates"))
    yield made
    made.close()
