"""The one writer of entry rows: the engine's decisions and the supervisor's override.

Every entry carries the same stamp whoever writes it: the venue-local day it counts for, the
allowlist cursor (the furthest of the allowlist and revocation streams: either one at ``c``
means every revocation up to ``c`` has been applied, which is what the hub judges an
admission by) and the appliance's clock offset. The caller holds the write transaction;
:func:`write_entry` only inserts.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

from edge.reasons import Reason
from edge.rules import Detail, day, detail
from sync.ids import uuid7
from sync.timeutil import to_iso

# One small statement says whether the configuration changed (every change to the
# configuration tables bumps config_version by trigger) and reads the cursor and clock offset.
STAMP_SQL = """
SELECT (SELECT value FROM appliance_state WHERE key = 'config_version') AS config_version,
       (SELECT max(cursor) FROM sync_state WHERE stream IN ('allowlist', 'revocations'))
           AS cursor,
       (SELECT value FROM appliance_state WHERE key = 'clock_offset_ms') AS clock_offset_ms
"""
_INSERT = """
INSERT INTO entries (id, at, day, lane_id, gate_id, device_id, direction, scan_kind, scan_ref,
                     ticket_id, session_id, admitted, reason, detail, detail_code,
                     detail_params, offline_code, cursor, clock_offset_ms, passage, staff)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_json = json.JSONEncoder(ensure_ascii=False).encode  # one encoder, not one per entry


class Stamp(NamedTuple):
    """What the appliance's state adds to every entry (and whether its configuration moved)."""

    config_version: str | None
    cursor: int
    clock_offset_ms: int | None

    @classmethod
    def of(cls, row: tuple) -> Stamp:
        version, cursor, offset = row
        return cls(version, cursor or 0, int(offset) if offset is not None else None)


def read_stamp(conn: sqlite3.Connection) -> Stamp:
    return Stamp.of(conn.execute(STAMP_SQL).fetchone())


class Place(Protocol):
    """Where an entry happened: a lane of a gate, in the venue's time zone."""

    id: int | None
    gate_id: int | None
    direction: str
    tz: ZoneInfo


class LanePlace(NamedTuple):
    id: int
    gate_id: int
    direction: str
    tz: ZoneInfo


def write_entry(conn: sqlite3.Connection, lane: Place, stamp: Stamp, at: datetime, *,
                device_id: str | None, scan_kind: str, scan_ref: str, ticket_id: int | None,
                session_id: int | None, reason: Reason, why: Detail | None,
                offline_code: bool = False, passage: str | None = None,
                staff: str | None = None) -> str:
    """Insert one entry inside the caller's transaction and return its id (a UUIDv7).
    ``why`` is kept as its code and parameters beside its English words."""
    entry_id = str(uuid7())
    admitted = reason is Reason.OK
    if why is None:
        text = code = params = None
    else:
        text, code = why.text, why.code
        params = _json(why.params) if why.params else None
    conn.execute(_INSERT, (
        entry_id, to_iso(at), day(at, lane.tz), lane.id, lane.gate_id, device_id,
        lane.direction, scan_kind, scan_ref, ticket_id, session_id, int(admitted), str(reason),
        text or "", code, params, int(offline_code), stamp.cursor, stamp.clock_offset_ms,
        passage, staff))
    return entry_id


class OverrideRefused(Exception):
    """An override that cannot be recorded: ``code`` is ``unknown_lane`` (no enabled lane of
    that code), ``unknown_entry`` (the refused scan it answers is not here) or
    ``already_admitted`` (admitting it twice would count the person twice)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class Override(NamedTuple):
    entry_id: str
    lane_id: int
    ticket_id: int | None


def record_override(conn: sqlite3.Connection, lane_code: str, user: str, why: str,
                    refused_id: str | None, now: datetime) -> Override:
    """A supervisor's "open anyway" at ``lane_code``, recorded as an admitted entry whose
    detail says who and why; ``refused_id``: the refused entry it answers, whose ticket and
    session carry over. Runs inside the caller's write transaction."""
    row = conn.execute(
        "SELECT id, gate_id, direction, (SELECT timezone FROM venue LIMIT 1) AS timezone "
        "FROM lanes WHERE code = ? AND enabled = 1", (lane_code,)).fetchone()
    if row is None:
        raise OverrideRefused("unknown_lane")
    lane_id, gate_id, direction, timezone = row
    ticket_id = session_id = None
    if refused_id is not None:
        ref = conn.execute("SELECT ticket_id, session_id, admitted FROM entries WHERE id = ?",
                           (refused_id,)).fetchone()
        if ref is None:
            raise OverrideRefused("unknown_entry")
        ticket_id, session_id, admitted = ref
        if admitted:
            raise OverrideRefused("already_admitted")
    place = LanePlace(lane_id, gate_id, direction, ZoneInfo(timezone or "UTC"))
    entry_id = write_entry(
        conn, place, read_stamp(conn), now, device_id=f"web:{user}", scan_kind="override",
        scan_ref=f"override:{refused_id or '-'}", ticket_id=ticket_id, session_id=session_id,
        reason=Reason.OK, why=detail("override", user=user, why=why), staff=user)
    return Override(entry_id, lane_id, ticket_id)
