"""The hub database on SQLite and PostgreSQL: migrations, the change-log cursor contract, and
the pooled connections (rollbacks, reads outside a transaction, dropped connections)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cloud import cli
from cloud.core import db
from cloud.core.changes import changes_since, next_value, record_change
from cloud.core.db import alembic_config, current_revision, init_db, make_engine, one_statement
from cloud.schema import metadata
from sync.changes import ChangeError

ZONE = {"type": "zone", "op": "upsert", "id": 1, "code": "A", "name": "North Stand"}


def all_revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


@pytest.mark.empty_hub
def test_init_creates_and_then_finds_nothing_to_do(hub_url):
    revisions = all_revisions()
    assert revisions[:3] == ["0001", "0002", "0003"]
    assert init_db(hub_url) == revisions
    assert init_db(hub_url) == []
    engine = make_engine(hub_url)
    assert current_revision(engine) == revisions[-1]
    assert {"counters", "change_log", "venues", "seats"} <= set(
        sa.inspect(engine).get_table_names())
    engine.dispose()


def test_the_tables_in_code_match_the_migrations(hub_url):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_changes_are_recorded_checked_and_read_back_by_venue(hub_url):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        a = record_change(conn, 1, ZONE)
        b = record_change(conn, 2, {**ZONE, "id": 2})
        c = record_change(conn, 1, {**ZONE, "name": "North"})
    assert a < b < c
    with engine.connect() as conn:
        assert [r["seq"] for r in changes_since(conn, 1, 0)] == [a, c]
        assert changes_since(conn, 1, a) == [{**ZONE, "name": "North", "seq": c}]
    with pytest.raises(ChangeError, match="zone.id"):
        with engine.begin() as conn:
            record_change(conn, 1, {**ZONE, "id": "one"})
    with engine.connect() as conn:  # the refused change took nothing with it
        assert len(changes_since(conn, 1, 0)) == 2
        assert next_value(conn, "change_log") == c + 1
        conn.rollback()
    engine.dispose()


def test_a_rolled_back_change_leaves_no_row_and_on_sqlite_no_gap(hub_url):
    """The rolled-back change is never served. SQLite numbers from its counter row, which
    rolls back too; PostgreSQL's sequence does not roll back (that is what lets writers of
    different venues not wait on each other), so its seq is simply never used again."""
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        first = record_change(conn, 1, ZONE)
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            lost = record_change(conn, 1, ZONE)
            raise RuntimeError("the sale failed")
    with engine.begin() as conn:
        after = record_change(conn, 1, ZONE)
    assert after == (first + 1 if hub_url.startswith("sqlite") else lost + 1)
    with engine.connect() as conn:
        assert [r["seq"] for r in changes_since(conn, 1, 0)] == [first, after]
    engine.dispose()


def test_a_reader_paging_by_cursor_never_misses_a_change(hub_url):
    """Writers commit changes in overlapping transactions while a reader pages with
    seq > cursor; at the end the reader has seen every change exactly once."""
    init_db(hub_url)
    engine = make_engine(hub_url)
    writers, per_writer = 4, 25
    done = threading.Event()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(per_writer):
                with engine.begin() as conn:
                    record_change(conn, 1, {**ZONE, "id": n * 1000 + i + 1})
                    # hold the transaction open a little, as a sale with several seats would
                    conn.execute(sa.text("SELECT 1"))
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            errors.append(e)

    seen: list[int] = []

    def read() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            with engine.connect() as conn:
                page = changes_since(conn, 1, cursor, limit=7)
            seen.extend(r["seq"] for r in page)
            if page:
                cursor = page[-1]["seq"]
            elif finished:
                return

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join(timeout=60)
    assert not errors, errors
    assert seen == list(range(1, writers * per_writer + 1))
    engine.dispose()


@pytest.mark.empty_hub
def test_cli_init_and_bad_urls(hub_url, capsys):
    assert cli.main(["--db", hub_url, "init"]) == 0
    assert f"applied migrations {', '.join(all_revisions())}" in capsys.readouterr().out
    assert cli.main(["--db", hub_url, "init"]) == 0
    out = capsys.readouterr().out
    assert "up to date" in out and "wicket_test:wicket_test" not in out
    assert cli.main(["--db", "nonsense://", "init"]) == 2
    assert "bad database URL" in capsys.readouterr().err


def test_a_rollback_undoes_the_writes_and_the_connection_goes_on(engine):
    t = sa.table("audit_log", sa.column("id"), sa.column("action"))
    with engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO audit_log (at, actor, action, subject, source) "
                             "VALUES (:at, 'test', 'rolled.back', 'x', 'test')"),
                     {"at": "2026-12-07 10:00:00+00:00"})
        conn.rollback()
        with pytest.raises(sa.exc.DBAPIError):
            conn.execute(sa.text("SELECT no_such_column FROM audit_log"))
        conn.rollback()  # on PostgreSQL the transaction had failed: it is rolled back too
        found = conn.execute(sa.select(sa.func.count()).select_from(t)
                             .where(t.c.action == "rolled.back")).scalar_one()
    assert found == 0


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_reads_that_end_in_a_rollback_keep_the_prepared_statements(engine):
    # psycopg prepares a statement on its fifth run on a connection; a read ends with a
    # rollback, which must not make the connection forget it (or none would ever be prepared)
    query = sa.text("SELECT count(*) FROM audit_log WHERE actor = :actor")
    for _ in range(8):
        with engine.connect() as conn:
            conn.execute(query, {"actor": "nobody"}).scalar_one()
    with engine.connect() as conn:
        prepared = conn.execute(sa.text(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE "
            "'SELECT count(*) FROM audit_log WHERE actor = %'")).scalar_one()
    assert prepared == 1


def test_a_read_outside_a_transaction_leaves_the_pooled_connection_as_it_was(engine):
    postgres = engine.dialect.name == "postgresql"
    with one_statement(engine) as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        if postgres:
            assert conn.connection.driver_connection.autocommit is True
    with engine.connect() as conn:  # the same pooled connection, in a transaction again
        if postgres:
            assert conn.connection.driver_connection.autocommit is False
        conn.execute(sa.text("INSERT INTO audit_log (at, actor, action, subject, source) "
                             "VALUES (:at, 'test', 'not.kept', 'x', 'test')"),
                     {"at": "2026-12-07 10:00:00+00:00"})
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM audit_log WHERE action = 'not.kept'")).scalar_one() == 0


def _backend(conn: sa.Connection) -> int:
    return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def _kill(engine: sa.Engine, pid: int) -> None:
    """The backend ended: pg_terminate_backend with a timeout returns once it has exited
    (false if it has not within the minute), not as soon as the signal is sent."""
    killer = sa.create_engine(engine.url)
    with killer.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 60000)"),
                            {"pid": pid}).scalar()
    killer.dispose()


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_an_idle_connection_the_server_dropped_is_replaced_before_use(engine, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every connection counts as idle
    with engine.connect() as conn:
        gone = _backend(conn)
    _kill(engine, gone)
    with engine.connect() as conn:
        assert _backend(conn) != gone


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_a_connection_dropped_between_two_quick_uses_fails_once_then_the_pool_renews(
        engine, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)  # lent out again at once: no ping
    with engine.connect() as conn:
        gone = _backend(conn)
    _kill(engine, gone)
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as failed:
        _backend(conn)
    assert failed.value.connection_invalidated
    with engine.connect() as conn:
        assert _backend(conn) != gone
