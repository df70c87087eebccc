"""What the sync agent keeps in the appliance's database between steps: ``appliance_state``
(key and value: hub link, clock offset, snapshot in progress, commands carried out) and
``sync_state`` (per stream: cursor, changes received, last success and error). A leaf that the
agent, the snapshot, the service and the status read and write through."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from sync.timeutil import to_iso, utcnow


def set_state(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    if value is None:
        conn.execute("DELETE FROM appliance_state WHERE key = ?", (key,))
    else:
        conn.execute("INSERT INTO appliance_state (key, value) VALUES (?, ?) ON CONFLICT(key) "
                     "DO UPDATE SET value = excluded.value", (key, value))


def get_state(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM appliance_state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def stream_ok(conn: sqlite3.Connection, stream: str) -> None:
    conn.execute("UPDATE sync_state SET last_ok_at = ?, last_error = NULL WHERE stream = ?",
                 (to_iso(utcnow()), stream))


def stream_failed(conn: sqlite3.Connection, stream: str, error: str) -> None:
    conn.execute("UPDATE sync_state SET last_error = ?, last_error_at = ? WHERE stream = ?",
                 (error[:300], to_iso(utcnow()), stream))


class StreamCursor(NamedTuple):
    """How far a stream has come: its cursor, and the changes received up to it."""

    cursor: int
    changes: int


def cursor_of(conn: sqlite3.Connection, stream: str) -> StreamCursor:
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    row = cur.execute("SELECT cursor, changes FROM sync_state WHERE stream = ?",
                      (stream,)).fetchone()
    return StreamCursor(cursor=int(row["cursor"]), changes=int(row["changes"]))
