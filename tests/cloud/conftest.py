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
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from cloud.core.db import init_db, make_engine

PG_ADMIN = os.environ.get("WICKET_TEST_PG", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    if not PG_ADMIN:
        pytest.fail("WICKET_TEST_PG is not set: run the tests with `make test` (as root it "
                    "starts PostgreSQL), or point WICKET_TEST_PG at a PostgreSQL admin URL")
    name = f"wicket_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(
            hide_password=False)
    finally:
        try:
            _drop(admin, name)
        finally:
            admin.dispose()


@pytest.fixture
def engine(hub_url):
    """A migrated hub database of either kind (``hub_url``) and an engine on it."""
    init_db(hub_url)
    e = make_engine(hub_url)
    yield e
    e.dispose()


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
