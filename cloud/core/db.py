"""The hub's database: the one metadata, engines for SQLite and PostgreSQL, migrations, and the
column types every area's tables use (``UtcDateTime``) and the value they store money as
(``Money``). Each area defines its tables on :data:`metadata` in its own ``tables.py``.

SQLite is the default (a file, no set-up: demos, small venues, tests); PostgreSQL is the
production database. Both are first-class: every hub test runs on both. Schema changes are
Alembic migrations (``cloud/migrations``); ``init_db`` brings any database to the newest one.

Statements on the busiest paths (a partner's signed order, a hold) are built once, with bound
parameters, and executed with their values: building a Core statement and its cache key costs
about as much CPU as sending it, and these run many times a second. :func:`per_dialect` builds
the ones that differ between the two databases (an upsert) once for each. On PostgreSQL the
driver prepares a statement a connection has run five times, and a rollback keeps them
(:func:`_rollback_keeping_statements`): the server then parses each once per connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite

from cloud.core.seal import CONN_INFO

try:
    from psycopg import pq
except ImportError:  # SQLite only
    pq = None

T = TypeVar("T")

DEFAULT_URL = "sqlite:///wicket-hub.db"
MIGRATIONS = Path(__file__).parents[1] / "migrations"
# a pooled PostgreSQL connection idle longer than this is pinged before it is lent out again
PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "wicket_idle_since"
_ROLLBACK_RAW = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR) if pq else ()

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class UtcDateTime(sa.types.TypeDecorator):
    """A moment in time, stored in UTC and always read back with its zone: PostgreSQL keeps the
    zone itself; SQLite stores the UTC wall time, and this type puts UTC back on it."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


@dataclass(frozen=True)
class Money:
    """An amount of money: a whole number of the currency's minor unit (fen for CNY, cents for
    USD), never a float, and the three-letter ISO 4217 currency code."""

    amount: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("an amount of money is a whole number of the minor unit")
        if not is_currency(self.currency):
            raise ValueError(f"{self.currency!r} is not a three-letter ISO 4217 code")


def is_currency(code: str) -> bool:
    return isinstance(code, str) and len(code) == 3 and code.isalpha() and code.isupper()


def per_dialect(build: Callable[[ModuleType], T]) -> Callable[[sa.Connection], T]:
    """A statement built once for each database from its dialect's module
    (``sqlalchemy.dialects.postgresql`` or ``.sqlite``, for ``insert … on_conflict``): call the
    result with a connection to get the statement for its database."""
    built: dict[str, T] = {}

    def statement(conn: sa.Connection) -> T:
        name = conn.dialect.name
        got = built.get(name)
        if got is None:
            got = built[name] = build(postgresql if name == "postgresql" else sqlite)
        return got
    return statement


def make_engine(url: str = DEFAULT_URL, data_key: str | None = None) -> sa.Engine:
    """An engine for a database URL; SQLite files get WAL, a busy timeout, foreign keys and
    secure delete (a deleted or rewritten value is zeroed in the file, not left in a free page).
    ``data_key`` names the data key file its connections seal with (``cloud/core/seal.py``;
    without it, the one the environment names)."""
    engine = _engine(url)
    if data_key:
        @sa.event.listens_for(engine, "connect")
        def _data_key(_dbapi_conn, record):
            record.info[CONN_INFO] = data_key
    return engine


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 10})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA secure_delete = ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            # take the write lock up front: a transaction that reads and then writes must not
            # fail halfway because another writer came first
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        # let SQLAlchemy, not the driver, open transactions (so BEGIN IMMEDIATE above is used)
        @sa.event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

        return engine
    engine = sa.create_engine(url)
    engine.dialect.do_rollback = _rollback_keeping_statements

    @sa.event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn, record):
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        # a connection lent out again at once is not pinged: a round trip on every
        # checkout was a tenth of a busy request's; one the server dropped while it was in use
        # fails that request and SQLAlchemy then replaces every connection of the pool
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as e:
            raise sa.exc.DisconnectionError("the connection was gone; the pool opens another") \
                from e

    return engine


@contextmanager
def one_statement(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for one statement in a transaction of its own (a token's read, a log
    row): on PostgreSQL the statement's own, without a BEGIN and a COMMIT or ROLLBACK, two
    round trips, around it; on SQLite an ordinary transaction, committed at the end."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def _rollback_keeping_statements(dbapi_conn) -> None:
    """Roll back a PostgreSQL transaction without forgetting the connection's prepared
    statements. psycopg prepares a statement the fifth time a connection runs it (the server
    then parses it once and may keep its plan) but forgets them all on ``rollback()``, and a
    read ends with a rollback: on the hub no statement would ever reach its fifth run. A
    rollback does not undo a prepared statement on the server; the hub changes no schema in
    its transactions (migrations run on their own connection, and psycopg still forgets its
    statements when one of its own runs a DROP or an ALTER)."""
    pgconn = dbapi_conn.pgconn
    if pgconn.transaction_status not in _ROLLBACK_RAW:
        dbapi_conn.rollback()  # idle, busy or lost: psycopg knows what to do (or to raise)
        return
    if pgconn.exec_(b"ROLLBACK").status != pq.ExecStatus.COMMAND_OK:
        dbapi_conn.rollback()  # let psycopg raise its error for a connection that failed


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def init_db(url: str = DEFAULT_URL, data_key: str | None = None) -> list[str]:
    """Create or upgrade the database to the newest migration; returns the revisions applied.
    A migration that seals personal data uses the data key file ``data_key`` names."""
    engine = make_engine(url, data_key)
    try:
        before = current_revision(engine)
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()
    script = ScriptDirectory.from_config(cfg)
    applied = [r.revision for r in script.iterate_revisions("heads", before or "base")
               if r.revision != before]
    return list(reversed(applied))


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
