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
    assert db_mod.migrate(db)[0] == "m008_acked_mark"
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
    conn.execute("UPDATE entries SET acked_at = 't' WHERE id = 'd'")
    assert db_mod.advance_acked_mark(conn) == d
    conn.execute("UPDATE entries SET acked_at = NULL WHERE id = 'd'")  # by hand: not the product
    assert db_mod.advance_acked_mark(conn) == d  # the mark never goes back


def test_without_its_mark_the_queue_is_every_unacknowledged_entry(conn):
    _entry(conn, "a", acked=True)
    _entry(conn, "b")
    conn.execute("DELETE FROM appliance_state WHERE key = ?", (db_mod.ACKED_MARK_KEY,))
    assert db_mod.acked_mark(conn) == 0
    assert _queue(conn) == ["b"]
    assert db_mod.advance_acked_mark(conn) == db_mod.acked_mark(conn) > 0
    assert _queue(conn) == ["b"]


def test_entries_are_kept_until_acknowledged_and_the_newest_always(conn):
    a, b = _entry(conn, "a", acked=True), _entry(conn, "b")
    with pytest.raises(sqlite3.IntegrityError, match="entries are kept"):
        conn.execute("DELETE FROM entries WHERE id = 'b'")  # not acknowledged
    conn.execute("UPDATE entries SET acked_at = 't' WHERE id = 'b'")
    with pytest.raises(sqlite3.IntegrityError, match="entries are kept"):
        conn.execute("DELETE FROM entries WHERE id = 'b'")  # the newest: its seq would come back
    conn.execute("DELETE FROM entries WHERE id = 'a'")  # an older acknowledged entry may go
    assert _entry(conn, "c") == b + 1 and a < b


def test_the_upgrade_drops_autoincrement_and_keeps_every_entry_and_its_links(tmp_path):
    path = tmp_path / "old.db"
    old = db_mod.open_db(path)
    db_mod.migrate(old, stop_before="m009_entries_without_autoincrement")
    seqs = [_entry(old.conn, i, acked=True) for i in "abc"]
    old.execute("INSERT INTO devices (id, kind, name) VALUES ('h1', 'handheld', 'H1')")
    old.execute("INSERT INTO handheld_scans (client_scan_id, device_id, entry_id, fingerprint, "
                "verdict) VALUES ('s1', 'h1', 'b', 'f', '{}')")
    assert db_mod.advance_acked_mark(old.conn) == seqs[2]
    old.execute("DELETE FROM entries WHERE id = 'c'")  # seq 3 was given once, then deleted
    old.close()

    db = db_mod.open_db(path)
    assert db_mod.migrate(db)[0] == "m009_entries_without_autoincrement"
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'entries'").fetchone()
    assert "AUTOINCREMENT" not in sql and "CHECK (direction IN ('in', 'out'))" in sql
    assert db.execute("SELECT count(*) FROM sqlite_sequence WHERE name = 'entries'"
                      ).fetchone() == (0,)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert [r[0] for r in db.execute("SELECT id FROM entries ORDER BY seq")] == ["a", "b"]
    # the mark comes down to the highest seq there is, so the seq given again is not hidden
    assert db_mod.acked_mark(db.conn) == seqs[1]
    new = _entry(db.conn, "d")
    assert new == seqs[2] and _queue(db.conn) == ["d"]
    assert {i.name for i in db["entries"].indexes} >= {"entries_ticket", "entries_passage_pending"}
    db.conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO handheld_scans (client_scan_id, device_id, entry_id, fingerprint,"
                   " verdict) VALUES ('s2', 'h1', 'nope', 'f', '{}')")
    assert db.execute("SELECT entry_id FROM handheld_scans").fetchall() == [("b",)]


def test_the_upgrade_keys_handheld_scan_ids_by_device_and_keeps_every_scan(tmp_path):
    path = tmp_path / "old.db"
    old = db_mod.open_db(path)
    db_mod.migrate(old, stop_before="m011_handheld_scan_ids")
    _entry(old.conn, "a")
    old.execute("INSERT INTO devices (id, kind, name) VALUES ('h1', 'handheld', 'H1')")
    old.execute("INSERT INTO devices (id, kind, name) VALUES ('h2', 'handheld', 'H2')")
    old.execute("INSERT INTO handheld_scans (client_scan_id, device_id, entry_id, fingerprint, "
                "scanned_at, verdict) VALUES ('s1', 'h1', 'a', 'f', 't', '{}')")
    old.close()

    db = db_mod.open_db(path)
    assert "m011_handheld_scan_ids" in db_mod.migrate(db)
    assert db.execute("SELECT device_id, client_scan_id, entry_id, fingerprint, scanned_at, "
                      "verdict FROM handheld_scans").fetchall() == [("h1", "s1", "a", "f", "t",
                                                                     "{}")]
    _entry(db.conn, "b")
    db.execute("INSERT INTO handheld_scans (client_scan_id, device_id, entry_id, fingerprint, "
               "verdict) VALUES ('s1', 'h2', 'b', 'f', '{}')")  # another handheld, same id
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO handheld_scans (client_scan_id, device_id, entry_id, "
                   "fingerprint, verdict) VALUES ('s1', 'h2', 'a', 'g', '{}')")
    db.conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO handheld_scans (client_scan_id, device_id, entry_id, fingerprint,"
                   " verdict) VALUES ('s9', 'h1', 'nope', 'f', '{}')")
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_upgrade_keeps_overrides_apart_from_typed_ticket_numbers(tmp_path):
    """Before m010 a supervisor's override was recorded as a manual scan; after it, it is an
    override naming its supervisor, so it never counts as an admission by ticket number."""
    path = tmp_path / "old.db"
    old = db_mod.open_db(path)
    db_mod.migrate(old, stop_before="m010_manual_entry")
    old.execute("INSERT INTO entries (id, at, day, device_id, direction, scan_kind, scan_ref, "
                "admitted, reason) VALUES ('o', 't', 'd', 'web:sue', 'in', 'manual', "
                "'override:-', 1, 'OK'), ('m', 't', 'd', 'web:al', 'in', 'manual', "
                "'T00001001', 1, 'OK')")
    old.execute("INSERT INTO gates (id, code, name) VALUES (1, 'G1', 'Gate 1')")
    old.close()
    db = db_mod.open_db(path)
    assert "m010_manual_entry" in db_mod.migrate(db)
    assert db.execute("SELECT id, scan_kind, staff FROM entries ORDER BY id").fetchall() == [
        ("m", "manual", None), ("o", "override", "sue")]
    assert db.execute("SELECT manual_entry FROM gates").fetchall() == [(0,)]
