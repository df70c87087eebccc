import sqlite3

import pytest

from edge import db as db_mod


def test_connection_pragmas(db_path):
    conn = db_mod.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (db_mod.BUSY_TIMEOUT_MS,)
    assert conn.isolation_level is None


def test_migrations_upgrade_a_first_migration_database_in_place(tmp_path):
    path = tmp_path / "old.db"
    old = db_mod.open_db(path)
    assert db_mod.migrate(old, stop_before="m002_entry_outbox") == ["m001_initial"]
    old.execute(
        "INSERT INTO entries (id, at, day, direction, scan_kind, scan_ref, admitted, reason) "
        "VALUES ('e1', '2026-07-01T00:00:00.000000Z', '2026-07-01', 'in', 'qr', 'X', 1, 'OK')")
    assert "acked_at" not in old["entries"].columns_dict
    old.close()

    db = db_mod.open_db(path)
    applied = db_mod.migrate(db)
    assert applied[:3] == ["m002_entry_outbox", "m003_config_version", "m004_sync_agent"]
    assert applied == [m.name for m in db_mod.migrations._migrations[1:]]
    assert db_mod.schema_version(db) == ["m001_initial", *applied]
    assert {"batch_id", "acked_at", "ack_status"} <= set(db["entries"].columns_dict)
    assert db.execute("SELECT id, reason, acked_at FROM entries").fetchall() == [("e1", "OK", None)]
    assert db_mod.migrate(db) == []  # idempotent


def test_configuration_changes_bump_the_config_version(conn):
    def version():
        return conn.execute("SELECT value FROM appliance_state WHERE key = 'config_version'"
                            ).fetchone()[0]

    before = version()
    conn.execute("INSERT INTO gates (id, code, name) VALUES (1, 'G1', 'Gate 1')")
    conn.execute("UPDATE gates SET reentry = 1 WHERE id = 1")
    assert int(version()) == int(before) + 2
    conn.execute("INSERT INTO entries (id, at, day, direction, scan_kind, scan_ref, admitted, "
                 "reason) VALUES ('e', 't', 'd', 'in', 'qr', 'x', 0, 'UNKNOWN')")
    assert int(version()) == int(before) + 2  # entries are not configuration


def test_immediate_rolls_back_on_error(conn):
    with pytest.raises(RuntimeError):
        with db_mod.immediate(conn):
            conn.execute("INSERT INTO appliance_state (key, value) VALUES ('k', 'v')")
            raise RuntimeError("boom")
    assert conn.execute("SELECT count(*) FROM appliance_state WHERE key = 'k'").fetchone() == (0,)
    assert not conn.in_transaction


def test_immediate_takes_the_write_lock_up_front(db_path):
    a, b = db_mod.connect(db_path), db_mod.connect(db_path)
    b.execute("PRAGMA busy_timeout = 0")
    with db_mod.immediate(a):
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            b.execute("BEGIN IMMEDIATE")


def test_constraints_refuse_half_formed_rows(conn):
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO entries (id, at, day, direction, scan_kind, scan_ref, admitted,"
                     " reason) VALUES ('e', 'now', 'd', 'sideways', 'qr', 'x', 1, 'OK')")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO gates (id, code, name, realname_mode) "
                     "VALUES (1, 'G', 'G', 'face')")


def _entry(conn, i: str, acked: bool = False, passage: str | None = None) -> int:
    conn.execute(
        "INSERT INTO entries (id, at, day, direction, scan_kind, scan_ref, admitted, reason, "
        "acked_at, passage) VALUES (?, '2026-07-01T00:00:00.000000Z', '2026-07-01', 'in', 'qr', "
        "'X', 1, 'OK', ?, ?)", (i, "2026-07-01T00:01:00.000000Z" if acked else None, passage))
    return conn.execute("SELECT seq FROM entries WHERE id = ?", (i,)).fetchone()[0]


def _queue(conn) -> list[str]:
    return [r[0] for r in conn.execute(f"SELECT id FROM entries WHERE {db_mod.UNACKED} "
                                       "ORDER BY seq")]


def test_the_upgrade_sets_the_acked_mark_below_the_first_unacknowledged_entry(tmp_path):
    path = tmp_path / "old.db"
    old = db_mod.open_db(path)
    db_mod.migrate(old, stop_before="m008_acked_mark")
    seqs = [_entry(old.conn, "a", acked=True), _entry(old.conn, "b", acked=True),
            _entry(old.conn, "c"), _entry(old.conn, "d", acked=True), _entry(old.conn, "e")]
    old.close()
    db = db_mod.open_db(path)
    assert db_mod.migrate(db) == ["m008_acked_mark"]
    assert db_mod.acked_mark(db.conn) == seqs[1]
    assert _queue(db.conn) == ["c", "e"]
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'entries_unacked'"
                      ).fetchone() == (0,)


def test_the_acked_mark_follows_acknowledgements_and_waits_for_the_oldest(conn):
    assert db_mod.acked_mark(conn) == 0
    assert db_mod.advance_acked_mark(conn) == 0  # no entries yet
    a, b, c = _entry(conn, "a"), _entry(conn, "b", passage="pending"), _entry(conn, "c")
    conn.execute("UPDATE entries SET acked_at = 't' WHERE id IN ('a', 'c')")
    assert db_mod.advance_acked_mark(conn) == a == b - 1  # b still waits for its passage
    assert _queue(conn) == ["b"]
    conn.execute("UPDATE entries SET acked_at = 't' WHERE id = 'b'")
    assert db_mod.advance_acked_mark(conn) == c
    assert _queue(conn) == []
    d = _entry(conn, "d")  # a new entry is after the mark, in the queue at once
    assert d > c and _queue(conn) == ["d"]
    conn.execute("DELETE FROM entries WHERE id = 'd'")
    assert db_mod.advance_acked_mark(conn) == c  # the mark never goes back


def test_without_its_mark_the_queue_is_every_unacknowledged_entry(conn):
    _entry(conn, "a", acked=True)
    _entry(conn, "b")
    conn.execute("DELETE FROM appliance_state WHERE key = ?", (db_mod.ACKED_MARK_KEY,))
    assert db_mod.acked_mark(conn) == 0
    assert _queue(conn) == ["b"]
    assert db_mod.advance_acked_mark(conn) == db_mod.acked_mark(conn) > 0
    assert _queue(conn) == ["b"]
