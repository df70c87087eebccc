"""The hub's tests run on both databases: a SQLite file and a fresh PostgreSQL database.

PostgreSQL comes from the admin URL in WICKET_TEST_PG (``make test`` sets it, starting the
Debian cluster when run as root: see .ci/postgres). Without it the PostgreSQL half fails with
a message saying so: it is never skipped silently.

Signing keys live in a key store (cloud/fleet/key_store.py): ``key_store`` is "wrapped" unless a
test asks for "token" (``@pytest.mark.parametrize("key_store", [...], indirect=True)``), which
points the hub at a throwaway SoftHSM2 token made for the test run (``softhsm``).
"""

from __future__ import annotations

import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from cloud.core.db import init_db, make_engine

PG_ADMIN = os.environ.get("WICKET_TEST_PG", "")


class _Databases:
    """Where each test's hub database comes from, once per test process.

    Migrating a new database from nothing took a second or more per test, and dropping a
    PostgreSQL database waits for a checkpoint: most of the hub tests' time went there. So the
    first test of a process migrates a *template* of each kind (a SQLite file; a PostgreSQL
    database nobody connects to), and every test after it gets a copy (a file copy; ``CREATE
    DATABASE … TEMPLATE``), already at the newest revision. A test of the migrations
    themselves asks for an empty database with ``@pytest.mark.empty_hub``. PostgreSQL
    databases are dropped by a thread of the process while the next tests run, a batch at a
    time (``DROP_BATCH``); the run waits for the last drops when it ends."""

    def __init__(self, base):
        self.base = base
        self.sqlite_template = None
        self.pg_template = None
        self.admin = None
        self.drops: queue.Queue = queue.Queue()
        self.dropper = None

    def sqlite(self, path, empty: bool) -> str:
        url = f"sqlite:///{path}"
        if empty:
            return url
        if self.sqlite_template is None:
            template = self.base / "template.db"
            init_db(f"sqlite:///{template}")
            with sqlite3.connect(template) as db:  # everything in the file, nothing in a WAL
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.sqlite_template = template
        shutil.copyfile(self.sqlite_template, path)
        return url

    def postgresql(self, empty: bool) -> str:
        if self.admin is None:
            self.admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        template = ""
        if not empty:
            if self.pg_template is None:
                name = f"wicket_template_{uuid.uuid4().hex[:12]}"
                self._create(name, "")
                init_db(self._url(name))
                _freeze(self._url(name))
                self.pg_template = name
            template = f' TEMPLATE "{self.pg_template}"'
        name = f"wicket_{uuid.uuid4().hex[:12]}"
        self._create(name, template)
        return self._url(name)

    def _create(self, name: str, template: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{template}')

    @staticmethod
    def _url(name: str) -> str:
        return sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(
            hide_password=False)

    def drop_later(self, url: str) -> None:
        if self.dropper is None:
            self.dropper = threading.Thread(target=self._drop_all, daemon=True,
                                            name="drop-test-databases")
            self.dropper.start()
        self.drops.put(sa.engine.make_url(url).database)

    def _drop_all(self) -> None:
        done = False
        while not done:
            batch: list[str] = []
            while len(batch) < DROP_BATCH and (name := self.drops.get()) is not None:
                batch.append(name)
            done = len(batch) < DROP_BATCH
            for name in batch:
                try:
                    _drop(self.admin, name)
                except Exception as e:  # noqa: BLE001 - a database left behind is no failure
                    print(f"could not drop test database {name}: {e}", file=sys.stderr)

    def close(self) -> None:
        if self.dropper is not None:
            self.drops.put(None)
            self.dropper.join(timeout=600)
        if self.pg_template is not None:
            _drop(self.admin, self.pg_template)
        if self.admin is not None:
            self.admin.dispose()


# Databases are dropped DROP_BATCH at a time: every drop makes the server write a checkpoint,
# and a copy made while one is written took ten times as long (half a second).
DROP_BATCH = 30


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_url(request, tmp_path, _databases):
    """A hub database of either kind, at the newest revision (empty, not migrated, under
    ``@pytest.mark.empty_hub``); fixtures and tests may still ``init_db`` it (nothing to do)."""
    empty = request.node.get_closest_marker("empty_hub") is not None
    if request.param == "sqlite":
        yield _databases.sqlite(tmp_path / "hub.db", empty)
        return
    if not PG_ADMIN:
        pytest.fail("WICKET_TEST_PG is not set: run the tests with `make test` (as root it "
                    "starts PostgreSQL), or point WICKET_TEST_PG at a PostgreSQL admin URL")
    url = _databases.postgresql(empty)
    try:
        yield url
    finally:
        _databases.drop_later(url)


@pytest.fixture
def engine(hub_url):
    """A migrated hub database of either kind (``hub_url``) and an engine on it."""
    init_db(hub_url)
    e = make_engine(hub_url)
    yield e
    e.dispose()


def _freeze(url: str) -> None:
    """Vacuum and freeze a new template's rows, catalogs included. Copying a database whose
    rows were just written (by the migrations) took half a second of the server's CPU, each
    copy; frozen, a twentieth of that."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM (FREEZE, ANALYZE)")
    finally:
        engine.dispose()


def _drop(admin: sa.Engine, name: str) -> None:
    """Drop a test database. An autovacuum worker on it belongs to the superuser, and the test
    role may not end it (InsufficientPrivilege): wait for it to finish, with a deadline."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except sa.exc.ProgrammingError as e:
            if "pg_signal_backend" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so",
                   "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                   "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so")


@dataclass(frozen=True)
class SoftToken:
    module: str
    label: str
    pin: str
    conf: str

    def env(self) -> dict[str, str]:
        """What a hub (this process through monkeypatch, or a child) needs to use the token."""
        return {"WICKET_HUB_PKCS11_MODULE": self.module, "WICKET_HUB_PKCS11_TOKEN": self.label,
                "WICKET_HUB_PKCS11_PIN": self.pin, "SOFTHSM2_CONF": self.conf}


def make_softhsm_token(base, label: str = "wicket-test", pin: str = "20261206") -> SoftToken:
    """A SoftHSM2 token in ``base`` (its own configuration and token folder), initialised
    with ``softhsm2-util``; the environment is left as it was: ``env()`` names the
    configuration for whoever uses the token."""
    module = next((m for m in SOFTHSM_MODULES if os.path.exists(m)), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        pytest.fail("SoftHSM2 is not installed: `apt-get install softhsm2` (make test's "
                    "bootstrap installs it from .ci/debian-packages)")
    (base / "tokens").mkdir(parents=True, exist_ok=True)
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
    subprocess.run([util, "--init-token", "--free", "--label", label, "--pin", pin,
                    "--so-pin", pin + "0"], check=True, capture_output=True,
                   env={**os.environ, "SOFTHSM2_CONF": str(conf)})
    return SoftToken(module, label, pin, str(conf))


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory):
    """One throwaway token for the test run: SoftHSM2 reads its configuration when the library
    is initialised, once per process, so every test of the run shares this one (keys made in
    it have random ids, so tests never meet each other's)."""
    return make_softhsm_token(tmp_path_factory.mktemp("softhsm"))


@pytest.fixture
def key_store(request, monkeypatch):
    """Where new signing keys are made: "wrapped" (the default) or "token"."""
    store = getattr(request, "param", "wrapped")
    for name in ("WICKET_HUB_PKCS11_MODULE", "WICKET_HUB_PKCS11_TOKEN", "WICKET_HUB_PKCS11_PIN",
                 "WICKET_HUB_PKCS11_PIN_FILE"):
        monkeypatch.delenv(name, raising=False)
    if store == "token":
        for name, value in request.getfixturevalue("softhsm").env().items():
            monkeypatch.setenv(name, value)
    return store
