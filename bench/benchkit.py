"""What the PostgreSQL benchmarks share: a scratch database and data key for one run."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from cloud.core import seal

PG_ADMIN = os.environ.get("WICKET_TEST_PG") or \
    "postgresql+psycopg://wicket_test:wicket_test@127.0.0.1:5432/postgres"


def note(text: str) -> None:
    """Progress, on stderr (the figures go to stdout)."""
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def scratch_hub(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on $WICKET_TEST_PG (an admin URL; default the test
    cluster's) and a data key of its own in a temporary folder ($WICKET_HUB_DATA_KEY, with
    $WICKET_HUB_INSTANCE for the page secret): the database's URL. Both go at the end."""
    work = tempfile.mkdtemp(prefix=f"{prefix}-")
    os.environ[seal.ENV] = os.path.join(work, "data.key")
    os.environ["WICKET_HUB_INSTANCE"] = work
    seal.create_key_file(os.environ[seal.ENV])
    name = f"wicket_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)
