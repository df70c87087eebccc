"""What the engine reads of the appliance's database to decide a scan: a lane's
configuration, a ticket's facts, its earlier movements, the sessions and hub keys.

Each statement's rows are named (:class:`LaneRow`, :class:`TicketRow`, built from the
columns in the statement's order; a test compares the field names with the statement's
column names), and turned into the values :mod:`edge.rules` decides on. Reads only: the
engine holds the transaction around them.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from edge.rules import HolderView, LaneConfig, Session, TicketFacts
from sync import codes
from sync.keys import KeyRing
from sync.names import KIND_NAMES, ROLE_NAMES
from sync.timeutil import from_iso


class LaneRow(NamedTuple):
    """A row of :data:`LANE_SQL`, by its column names."""

    id: int
    code: str
    direction: str
    enabled: int
    gate_id: int
    reentry: int
    realname_mode: str
    open_before_min: int
    close_after_min: int
    zone_ids: str | None
    venue_id: int | None
    timezone: str | None
    manual_entry: int


LANE_SQL = """
SELECT l.id, l.code, l.direction, l.enabled, g.id AS gate_id, g.reentry, g.realname_mode,
       g.open_before_min, g.close_after_min,
       (SELECT group_concat(zone_id) FROM gate_zones WHERE gate_id = g.id) AS zone_ids,
       (SELECT id FROM venue LIMIT 1) AS venue_id,
       (SELECT timezone FROM venue LIMIT 1) AS timezone, g.manual_entry
FROM lanes l JOIN gates g ON g.id = l.gate_id
WHERE l.code = ?
"""


class TicketRow(NamedTuple):
    """A row of :data:`TICKET_SQL`, by its column names. The ticket columns are NULL for a
    ticket known here only by what is held against it (a revocation, a block)."""

    id: int
    number: str | None
    serial: int | None
    kind: str | None
    role: str | None
    scope: str | None
    zone_id: int | None
    seat: str | None
    valid_from: str | None
    valid_until: str | None
    daily_limit: int | None
    realname: int | None
    holder_id: int | None
    state: str | None
    code_digest: bytes | None
    doc_hash: str | None
    name_masked: str | None
    doc_masked: str | None
    zone_name: str | None
    revoked_id: int | None
    serial_below: int | None
    revoked_reason: str | None
    ticket_blocked: int
    holder_blocked: int
    admitted_before: int


# Everything known of a ticket in one statement: the allowlist row, its holder and zone, the
# revocation and block entries (which exist even for tickets not in the allowlist), and whether
# it was ever admitted here: most scans are first scans, and those need no look at the entries.
TICKET_SQL = """
SELECT q.id, t.number, t.serial, t.kind, t.role, t.scope, t.zone_id, t.seat, t.valid_from,
       t.valid_until, t.daily_limit, t.realname, t.holder_id, t.state, t.code_digest,
       h.doc_hash, h.name_masked, h.doc_masked, z.name AS zone_name, r.ticket_id AS revoked_id,
       r.serial_below, r.reason AS revoked_reason,
       EXISTS (SELECT 1 FROM blocklist b WHERE b.kind = 'ticket' AND b.value = CAST(q.id AS TEXT))
           AS ticket_blocked,
       (EXISTS (SELECT 1 FROM blocklist b WHERE b.kind = 'holder' AND b.value = h.doc_hash)
        OR EXISTS (SELECT 1 FROM blocklist b WHERE b.doc_hash = h.doc_hash))
           AS holder_blocked,
       EXISTS (SELECT 1 FROM entries e WHERE e.ticket_id = q.id AND e.admitted = 1)
           AS admitted_before
FROM ({source}) q
LEFT JOIN tickets t ON t.id = q.id
LEFT JOIN holders h ON h.id = t.holder_id
LEFT JOIN zones z ON z.id = t.zone_id
LEFT JOIN revocations r ON r.ticket_id = q.id
"""
BY_ID = TICKET_SQL.format(source="SELECT ? AS id")
BY_DIGEST = TICKET_SQL.format(source="SELECT id FROM tickets WHERE code_digest = ?")
BY_NUMBER = TICKET_SQL.format(source="SELECT id FROM tickets WHERE number = ?")
BY_UID = TICKET_SQL.format(source="SELECT id FROM tickets WHERE rfid_uid = ?")
BY_HOLDER = TICKET_SQL.format(
    source="SELECT t2.id FROM tickets t2 JOIN holders h2 ON h2.id = t2.holder_id "
           "WHERE h2.doc_hash = ?") + " ORDER BY q.id"



def lane_config(row: LaneRow) -> LaneConfig:
    """An enabled lane's configuration from its :data:`LANE_SQL` row."""
    zones = frozenset(int(z) for z in row.zone_ids.split(",")) if row.zone_ids else frozenset()
    return LaneConfig(
        id=row.id, code=row.code, direction=row.direction, gate_id=row.gate_id,
        reentry=bool(row.reentry), realname_mode=row.realname_mode,
        open_before=timedelta(minutes=row.open_before_min),
        close_after=timedelta(minutes=row.close_after_min), zones=zones,
        venue_id=row.venue_id, tz=ZoneInfo(row.timezone or "UTC"),
        manual_entry=bool(row.manual_entry))


def no_lane(code: str, gate_id: int | None) -> LaneConfig:
    """The stand-in for a lane that is not there (``gate_id`` None) or disabled."""
    return LaneConfig(None, code, "in", gate_id, False, "ticket", timedelta(), timedelta(),
                      frozenset(), None, ZoneInfo("UTC"))


_named = tuple.__new__  # a row as its NamedTuple, without a Python-level constructor call


def read_lane(conn: sqlite3.Connection, code: str) -> LaneRow | None:
    row = conn.execute(LANE_SQL, (code,)).fetchone()
    return None if row is None else _named(LaneRow, row)


def read_ticket(conn: sqlite3.Connection, sql: str, key) -> TicketRow | None:
    """The first row of one of the ``BY_*`` statements for ``key``."""
    row = conn.execute(sql, (key,)).fetchone()
    return None if row is None else _named(TicketRow, row)


def read_tickets(conn: sqlite3.Connection, sql: str, key) -> list[TicketRow]:
    return [_named(TicketRow, row) for row in conn.execute(sql, (key,))]


def from_row(row: TicketRow) -> TicketFacts:
    """A ticket from the allowlist (a :data:`TICKET_SQL` row whose ticket exists)."""
    return TicketFacts(
        id=row.id, number=row.number, serial=row.serial, kind=row.kind, role=row.role,
        scope=tuple(map(int, row.scope.split(","))), zone_id=row.zone_id, seat=row.seat,
        valid_from=from_iso(row.valid_from) if row.valid_from else None,
        valid_until=from_iso(row.valid_until) if row.valid_until else None,
        daily_limit=row.daily_limit, realname=bool(row.realname), holder_id=row.holder_id,
        state=row.state, current_serial=row.serial, holder_hash=row.doc_hash,
        holder_masked=HolderView(row.name_masked, row.doc_masked) if row.doc_hash else None,
        zone=row.zone_name, **_held_against(row),
    )


def from_payload(p: codes.TicketPayload, row: TicketRow) -> TicketFacts:
    """A ticket known only by its verified code (and what the appliance holds against it)."""
    return TicketFacts(
        id=p.ticket_id, number=row.number, serial=p.serial, kind=KIND_NAMES[p.kind],
        role=ROLE_NAMES[p.role], scope=tuple(p.scope), zone_id=p.zone,
        seat=f"#{p.seat}" if p.seat else None, valid_from=p.valid_from,
        valid_until=p.valid_until, daily_limit=p.daily_limit, realname=p.realname,
        current_serial=p.serial, holder_id=row.holder_id, holder_hash=row.doc_hash,
        holder_masked=HolderView(row.name_masked, row.doc_masked) if row.doc_hash else None,
        offline_code=True, **_held_against(row),
    )


def _held_against(row: TicketRow) -> dict:
    return {"revoked": row.revoked_id is not None, "revoked_below": row.serial_below,
            "revoked_reason": row.revoked_reason or "", "blocked": bool(row.ticket_blocked),
            "holder_blocked": bool(row.holder_blocked),
            "admitted_before": bool(row.admitted_before)}


def read_sessions(conn: sqlite3.Connection) -> dict[int, Session]:
    return {
        sid: Session(sid, name, venue_id, from_iso(starts), from_iso(ends),
                     from_iso(opens) if opens else None)
        for sid, name, venue_id, starts, ends, opens in conn.execute(
            "SELECT id, name, venue_id, starts_at, ends_at, gates_open_at FROM sessions")}


def read_keys(conn: sqlite3.Connection) -> tuple[KeyRing, dict[int, datetime]]:
    """The hub keys, and when those being retired stop being trusted."""
    rows = conn.execute("SELECT key_id, public_key, retired_at FROM hub_keys").fetchall()
    ring = KeyRing({kid: pub for kid, pub, _ in rows})
    return ring, {kid: from_iso(at) for kid, _, at in rows if at}


def blocked(conn: sqlite3.Connection, kind: str, value: str) -> bool:
    """Whether the blocklist holds ``value`` of ``kind``; a holder (by this appliance's keyed
    document hash) also when a block names the holder's document (``doc_hash``)."""
    if kind == "holder":
        return conn.execute(
            "SELECT 1 FROM blocklist WHERE (kind = 'holder' AND value = ?) OR doc_hash = ?",
            (value, value)).fetchone() is not None
    return conn.execute("SELECT 1 FROM blocklist WHERE kind = ? AND value = ?",
                        (kind, value)).fetchone() is not None


def admitted_on(conn: sqlite3.Connection, ticket_id: int, day: str) -> int:
    """How many times the ticket was admitted in on the venue-local ``day``."""
    (count,) = conn.execute(
        "SELECT count(*) FROM entries WHERE ticket_id = ? AND admitted = 1 "
        "AND direction = 'in' AND day = ?", (ticket_id, day)).fetchone()
    return count


def movements(session: Session | None, day: str) -> tuple[str, object]:
    """Which entries count as the ticket's movements for a session (or, for a pass with no
    session open, for the day): a condition on ``entries`` and its argument."""
    if session is not None:
        return "session_id = ?", session.id
    return "session_id IS NULL AND day = ?", day


def last_direction(conn: sqlite3.Connection, ticket_id: int, where: str, arg) -> str | None:
    row = conn.execute(
        f"SELECT direction FROM entries WHERE ticket_id = ? AND admitted = 1 AND {where} "
        "ORDER BY seq DESC LIMIT 1", (ticket_id, arg)).fetchone()
    return None if row is None else row[0]


def first_entry(conn: sqlite3.Connection, ticket_id: int, where: str, arg) -> str | None:
    row = conn.execute(
        f"SELECT at FROM entries WHERE ticket_id = ? AND admitted = 1 AND direction = 'in' "
        f"AND {where} ORDER BY seq LIMIT 1", (ticket_id, arg)).fetchone()
    return row[0] if row else None


def gates_admitting(conn: sqlite3.Connection, zone_id: int, most: int = 5) -> list[str]:
    """The names of the gates whose entry lanes admit ``zone_id`` (a gate without a zone
    list admits every zone): where a WRONG_GATE refusal sends the holder."""
    return [name for (name,) in conn.execute(
        "SELECT coalesce(nullif(g.name, ''), g.code) FROM gates g WHERE EXISTS "
        "(SELECT 1 FROM lanes l WHERE l.gate_id = g.id AND l.enabled = 1 "
        "AND l.direction = 'in') AND (EXISTS (SELECT 1 FROM gate_zones z WHERE "
        "z.gate_id = g.id AND z.zone_id = ?) OR NOT EXISTS (SELECT 1 FROM gate_zones z "
        "WHERE z.gate_id = g.id)) ORDER BY g.code LIMIT ?", (zone_id, most))]


def zone_name(conn: sqlite3.Connection, zone_id: int) -> str:
    row = conn.execute("SELECT name FROM zones WHERE id = ?", (zone_id,)).fetchone()
    return row[0] if row else f"#{zone_id}"
