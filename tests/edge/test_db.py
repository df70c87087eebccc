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
    assert db_mod.migrate(db) == ["m002_entry_outbox", "m003_config_version",
                                  "m004_sync_agent"]
    assert db_mod.schema_version(db) == ["m001_initial", "m002_entry_outbox",
                                         "m003_config_version", "m004_sync_agent"]
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
