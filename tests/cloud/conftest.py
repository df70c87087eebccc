"""The hub's tests run on both databases: a SQLite file and a fresh PostgreSQL database.

PostgreSQL comes from the admin URL in WICKET_TEST_PG (``make test`` sets it, starting the
Debian cluster when run as root: see .ci/postgres). Without it the PostgreSQL half fails with
a message saying so: it is never skipped silently.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import sqlalchemy as sa

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
