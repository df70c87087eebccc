"""A fresh copy of the allowlist from cursor 0, swapped in while the gates keep working.

Taken when the hub answers 410 (the cursor is older than its compaction horizon), when the
count of changes received differs from the hub's checksum, or when the hub asks (``resync``).

The download goes into a *staging database* beside the live one (``edge.db.snapshot``), built
by the same migrations and filled by the same page-at-a-time apply as a normal pull, so it can
be interrupted and resumes from its own cursor. The lanes go on deciding from the live
database the whole time. When the staging copy is caught up and its checksum agrees, one
``BEGIN IMMEDIATE`` transaction on the live database replaces the allowlist tables with the
staging copy's and moves the cursors.

Why tables are copied into the live file rather than the staging file renamed over it: the web,
gate and sync processes each hold the live file open, and a rename would leave them writing
entries into the old, unlinked file — entries lost. Copying inside the live database keeps
every table that is not allowlist (entries and their outbox state, devices, staff users, the
audit log, appliance state) exactly where it is, untouched by construction. The price is one
write transaction as long as the copy (about a second for 100,000 tickets); scans read
throughout (WAL), and a scan's entry write waits for it within the busy timeout.

Revocations that the revocation stream applied to the live database while the snapshot was
downloading, and that are newer than the snapshot's cursor, are kept through the swap: a
refund the appliance already knew never stops counting.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Protocol

from edge import db as db_mod
from edge.config import Config
from edge.db import immediate
from edge.uplink.state import get_state, set_state
from sync.client import CursorExpired, HubUnavailable
from sync.timeutil import to_iso, utcnow

log = logging.getLogger(__name__)

# Replaced whole: nothing local refers to them.
REPLACED = ("gate_zones", "tickets", "holders", "revocations", "blocklist", "sessions",
            "hub_keys", "venue")
# Merged: lanes are set up on the appliance (devices refer to them) and refer to gates, so
# zones, gates and lanes are updated from the snapshot, lanes are never removed, and a gate or
# zone the hub no longer has goes only once nothing on the appliance refers to it.
MERGED = {"zones": ("code", "name", "version"),
          "gates": ("code", "name", "reentry", "realname_mode", "open_before_min",
                    "close_after_min", "manual_entry", "version"),
          "lanes": ("code", "name", "gate_id", "direction", "passage_timeout_s", "enabled")}


class Puller(Protocol):
    """What a snapshot needs of the agent (:class:`edge.uplink.agent.Agent`): its settings, the
    live database, and a pull of the allowlist into a given database."""

    cfg: Config
    conn: sqlite3.Connection

    def pull_into(self, conn: sqlite3.Connection) -> tuple[int, bool]: ...


def staging_path(cfg: Config) -> Path:
    return cfg.database.with_name(cfg.database.name + ".snapshot")


def pending(cfg: Config, conn: sqlite3.Connection) -> bool:
    """A snapshot was started and not yet swapped in (it resumes)."""
    return get_state(conn, "snapshot_started_at") is not None


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


def take(agent: Puller, reason: str = "") -> int:
    """Download (or resume) the staging copy, check it, swap it in; returns changes applied."""
    cfg, conn = agent.cfg, agent.conn
    path = staging_path(cfg)
    if not pending(cfg, conn):
        _remove(path)
        with immediate(conn):
            set_state(conn, "snapshot_started_at", to_iso(utcnow()))
            set_state(conn, "snapshot_reason", reason or "resync")
        log.info("taking an allowlist snapshot from cursor 0 (%s)", reason or "resync")
    for attempt in range(2):
        staging = db_mod.open_db(path)
        try:
            db_mod.migrate(staging)
            applied, ok = agent.pull_into(staging.conn)
        except CursorExpired:
            staging.conn.close()
            if attempt:
                raise
            _remove(path)  # the staging copy fell behind a compaction: start it again
            continue
        finally:
            staging.conn.close()  # closing twice is harmless
        if not ok:
            _remove(path)
            raise HubUnavailable("the snapshot's change count differs from the hub's checksum; "
                                 "it will be taken again")
        break
    swap(conn, path)
    _remove(path)
    log.info("allowlist snapshot swapped in")
    return applied


def swap(conn: sqlite3.Connection, path: Path) -> None:
    """Replace the live allowlist with the staging copy's, in one transaction."""
    conn.execute("ATTACH DATABASE ? AS snap", (str(path),))
    try:
        with immediate(conn):
            conn.execute("PRAGMA defer_foreign_keys = ON")
            cursor, changes = conn.execute(
                "SELECT cursor, changes FROM snap.sync_state WHERE stream = 'allowlist'"
            ).fetchone()
            conn.execute("CREATE TEMP TABLE kept_revocations AS SELECT * FROM main.revocations "
                         "WHERE version > ?", (cursor,))
            for table in REPLACED:
                conn.execute(f"DELETE FROM main.{table}")
            for table, columns in MERGED.items():
                sets = ", ".join(f"{c} = excluded.{c}" for c in columns)
                conn.execute(f"INSERT INTO main.{table} SELECT * FROM snap.{table} WHERE true "
                             f"ON CONFLICT(id) DO UPDATE SET {sets}")
            for table in reversed(REPLACED):
                conn.execute(f"INSERT INTO main.{table} SELECT * FROM snap.{table}")
            conn.execute("DELETE FROM main.gates WHERE id NOT IN (SELECT id FROM snap.gates) "
                         "AND id NOT IN (SELECT gate_id FROM main.lanes)")
            conn.execute("DELETE FROM main.zones WHERE id NOT IN (SELECT id FROM snap.zones) "
                         "AND id NOT IN (SELECT zone_id FROM main.gate_zones)")
            conn.execute(
                "INSERT INTO main.revocations SELECT * FROM temp.kept_revocations WHERE true "
                "ON CONFLICT(ticket_id) DO UPDATE SET serial_below = excluded.serial_below, "
                "reason = excluded.reason, revoked_at = excluded.revoked_at, "
                "version = excluded.version WHERE excluded.version > revocations.version")
            conn.execute("DROP TABLE temp.kept_revocations")
            now = to_iso(utcnow())
            conn.execute("UPDATE main.sync_state SET cursor = ?, changes = ?, last_ok_at = ? "
                         "WHERE stream = 'allowlist'", (cursor, changes, now))
            conn.execute("UPDATE main.sync_state SET cursor = max(cursor, ?) "
                         "WHERE stream = 'revocations'", (cursor,))
            set_state(conn, "snapshot_started_at", None)
            set_state(conn, "snapshot_reason", None)
            set_state(conn, "last_snapshot_at", now)
    finally:
        conn.execute("DETACH DATABASE snap")
