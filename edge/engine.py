"""The validation engine: one function decides every scan, whoever asks.

``Engine.decide(scan, lane, now)`` looks the scan up, applies the gate's rules and records the
scan as an entry, all inside one ``BEGIN IMMEDIATE`` transaction. Two lanes scanning the same
ticket at the same instant are serialised by SQLite's write lock, so exactly one is admitted.
The decision is returned only after the entry is committed (``synchronous=FULL``): a lane never
opens for a scan the database could lose.

Nothing a person holds up to a reader can raise out of here: a malformed or hostile scan
becomes a recorded ``UNKNOWN`` or ``FORGED`` entry, and a failing database becomes a
``DEVICE_ERROR`` decision that keeps the lane shut.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from edge.db import immediate
from edge.holders import DocumentError, HolderVault, mask_document
from edge.reasons import Reason
from sync import codes
from sync.changes import normalize_uid
from sync.ids import uuid7
from sync.keys import KeyRing
from sync.timeutil import from_iso, to_iso, utcnow

log = logging.getLogger(__name__)

MAX_SCAN_REF = 256
MAX_CODE_CHARS = 1024  # far above the longest valid code (a 32-session pass)


class ScanKind(StrEnum):
    QR = "qr"
    RFID = "rfid"
    ID_CARD = "id_card"
    MANUAL = "manual"


@dataclass(frozen=True)
class IdDocument:
    """A document read by an ID-card reader. Its repr is masked: scans get logged."""

    doc_type: str
    number: str = field(repr=False)
    name: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"IdDocument({self.doc_type!r}, {mask_document(self.number)!r})"


@dataclass(frozen=True)
class Scan:
    """What a reader saw. ``data`` is the code text, RFID UID or typed text; an ID-card scan
    carries its document in ``document`` (also used for the ID shown with a ticket)."""

    kind: ScanKind
    data: str = ""
    device_id: str | None = None
    document: IdDocument | None = None


@dataclass(frozen=True)
class TicketView:
    id: int
    number: str | None
    kind: str
    role: str
    zone_id: int
    zone: str | None
    seat: str | None
    session_id: int | None
    session: str | None


@dataclass(frozen=True)
class HolderView:
    name: str
    document: str


@dataclass(frozen=True)
class Decision:
    reason: Reason
    open_lane: bool
    entry_id: str | None
    at: datetime
    lane: str
    direction: str
    ticket: TicketView | None = None
    holder_masked: HolderView | None = None
    detail: str = ""
    first_entry_at: datetime | None = None
    offline_code: bool = False

    @property
    def verdict(self) -> str:
        return "admit" if self.reason is Reason.OK else "refuse"


class _Refused(Exception):
    """A rule said no; carries the reason and the stage it was reached at."""

    def __init__(self, reason: Reason, detail: str = "", stage: int = 0):
        super().__init__(reason, detail)
        self.reason, self.detail, self.stage = reason, detail, stage


# How far a ticket got before a rule refused it; for ID-card-alone lookups the ticket that
# got furthest explains the refusal best.
STAGE_REVOKED, STAGE_BLOCKED, STAGE_SCOPE, STAGE_ZONE, STAGE_REALNAME, STAGE_USAGE = range(6)

_CODE_ERRORS = {
    "bad_alphabet": (Reason.UNKNOWN, "not a ticket code"),
    "truncated": (Reason.UNKNOWN, "incomplete ticket code"),
    "unknown_version": (Reason.UNKNOWN, "ticket code of an unknown version"),
    "unknown_key": (
        Reason.UNKNOWN,
        "signed with a key this appliance does not know yet: sync the appliance",
    ),
    "bad_signature": (Reason.FORGED, "signature does not match"),
    "trailing_bytes": (Reason.FORGED, "extra data after the signature"),
    "out_of_range": (Reason.FORGED, "impossible values in the ticket code"),
}


@dataclass
class _Lane:
    id: int | None
    code: str
    direction: str
    gate_id: int | None
    reentry: bool
    realname_mode: str
    open_before: timedelta
    close_after: timedelta
    zones: frozenset[int]
    venue_id: int | None
    tz: ZoneInfo
    cursor: int
    clock_offset_ms: int | None


@dataclass
class _Ticket:
    """What the rules need to know of a ticket, from the allowlist or from its code alone."""

    id: int
    number: str | None
    serial: int
    kind: str
    role: str
    scope: tuple[int, ...]
    zone_id: int
    seat: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    daily_limit: int
    realname: bool
    holder_id: int | None
    current_serial: int = 0  # the serial of the ticket's newest code known here
    offline_code: bool = False


@dataclass
class _Outcome:
    reason: Reason
    detail: str = ""
    ticket: _Ticket | None = None
    session: tuple | None = None
    first_entry_at: str | None = None
    scan_ref: str = ""
    stage: int = -1


_KIND_NAMES = {codes.Kind.SESSION: "session", codes.Kind.SESSIONS: "sessions",
               codes.Kind.VENUES: "venues"}
_ROLE_NAMES = {codes.Role.TICKET: "ticket", codes.Role.STAFF: "staff",
               codes.Role.REGISTERED: "registered"}

_LANE_SQL = """
SELECT l.id, l.code, l.direction, l.enabled, g.id, g.reentry, g.realname_mode,
       g.open_before_min, g.close_after_min,
       (SELECT group_concat(zone_id) FROM gate_zones WHERE gate_id = g.id),
       (SELECT id FROM venue LIMIT 1), (SELECT timezone FROM venue LIMIT 1),
       (SELECT cursor FROM sync_state WHERE stream = 'allowlist'),
       (SELECT value FROM appliance_state WHERE key = 'clock_offset_ms')
FROM lanes l JOIN gates g ON g.id = l.gate_id
WHERE l.code = ?
"""
_TICKET_COLUMNS = ("id, number, serial, kind, role, scope, zone_id, seat, valid_from, valid_until,"
                   " daily_limit, realname, holder_id, state")
_INSERT_ENTRY = """
INSERT INTO entries (id, at, day, lane_id, gate_id, device_id, direction, scan_kind, scan_ref,
                     ticket_id, session_id, admitted, reason, detail, offline_code, cursor,
                     clock_offset_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


class Engine:
    """Decides scans against one appliance database. One Engine per connection and thread."""

    def __init__(self, conn: sqlite3.Connection, vault: HolderVault):
        self.conn = conn
        self.vault = vault
        self._keys_rows: tuple = ()
        self._keyring = KeyRing()

    # -- the one entry point -------------------------------------------------------------

    def decide(self, scan: Scan, lane: str, now: datetime | None = None) -> Decision:
        now = now or utcnow()
        try:
            with immediate(self.conn):
                return self._decide(scan, lane, now)
        except sqlite3.Error as e:
            log.error("lane %s: scan not recorded, the database failed: %s", lane, e)
            return Decision(Reason.DEVICE_ERROR, False, None, now, lane, "in",
                            detail=f"database failure: {e}")

    def _decide(self, scan: Scan, lane_code: str, now: datetime) -> Decision:
        lane = self._lane(lane_code)
        if lane.id is None:
            outcome = _Outcome(Reason.DEVICE_ERROR, f"lane {lane_code!r} is not configured")
        else:
            try:
                outcome = self._judge(scan, lane, now)
            except sqlite3.Error:
                raise
            except Exception:  # noqa: BLE001 - a bug must not reach the lane; it is recorded
                log.exception("lane %s: internal error while deciding a %s scan", lane_code,
                              scan.kind)
                outcome = _Outcome(Reason.DEVICE_ERROR, "internal error: see the appliance log")
        if not outcome.scan_ref:
            outcome.scan_ref = _scan_ref(scan)
        admitted = outcome.reason is Reason.OK
        entry_id = str(uuid7())
        t = outcome.ticket
        session_id = outcome.session[0] if outcome.session else None
        self.conn.execute(_INSERT_ENTRY, (
            entry_id, to_iso(now), now.astimezone(lane.tz).date().isoformat(), lane.id,
            lane.gate_id, scan.device_id, lane.direction, str(scan.kind), outcome.scan_ref,
            t.id if t else None, session_id, int(admitted), str(outcome.reason),
            outcome.detail, int(bool(t and t.offline_code)), lane.cursor, lane.clock_offset_ms,
        ))
        return Decision(
            reason=outcome.reason,
            open_lane=admitted,
            entry_id=entry_id,
            at=now,
            lane=lane_code,
            direction=lane.direction,
            ticket=self._ticket_view(t, outcome.session) if t else None,
            holder_masked=self._holder_view(t.holder_id) if t and t.holder_id else None,
            detail=outcome.detail,
            first_entry_at=from_iso(outcome.first_entry_at) if outcome.first_entry_at else None,
            offline_code=bool(t and t.offline_code),
        )

    # -- configuration -------------------------------------------------------------------

    def _lane(self, code: str) -> _Lane:
        row = self.conn.execute(_LANE_SQL, (code,)).fetchone()
        if row is None or not row[3]:
            return _Lane(None, code, "in", None, False, "ticket", timedelta(), timedelta(),
                         frozenset(), None, ZoneInfo("UTC"), 0, None)
        zones = frozenset(int(z) for z in row[9].split(",")) if row[9] else frozenset()
        return _Lane(
            id=row[0], code=row[1], direction=row[2], gate_id=row[4], reentry=bool(row[5]),
            realname_mode=row[6], open_before=timedelta(minutes=row[7]),
            close_after=timedelta(minutes=row[8]), zones=zones, venue_id=row[10],
            tz=ZoneInfo(row[11] or "UTC"), cursor=row[12] or 0,
            clock_offset_ms=int(row[13]) if row[13] is not None else None,
        )

    def _keys(self, now: datetime) -> KeyRing:
        rows = tuple(self.conn.execute(
            "SELECT key_id, public_key FROM hub_keys WHERE retired_at IS NULL OR retired_at > ?"
            " ORDER BY key_id", (to_iso(now),)))
        if rows != self._keys_rows:
            self._keyring = KeyRing({kid: pub for kid, pub in rows})
            self._keys_rows = rows
        return self._keyring

    # -- identifying the ticket ----------------------------------------------------------

    def _judge(self, scan: Scan, lane: _Lane, now: datetime) -> _Outcome:
        if scan.kind is ScanKind.ID_CARD:
            return self._judge_document(scan, lane, now)
        if scan.kind is ScanKind.RFID:
            uid = normalize_uid(scan.data)
            if not uid:
                return _Outcome(Reason.UNKNOWN, "not an RFID UID")
            if self._blocked("rfid", uid):
                return _Outcome(Reason.BLOCKED, "card on the block list", scan_ref=uid)
            row = self.conn.execute(
                f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE rfid_uid = ?", (uid,)).fetchone()
            if row is None:
                return _Outcome(Reason.UNKNOWN, "card not in the allowlist", scan_ref=uid)
            return self._check(self._from_row(row, code_serial=None), row[13], scan, lane, now,
                               scan_ref=uid)
        return self._judge_code(scan, lane, now)

    def _judge_code(self, scan: Scan, lane: _Lane, now: datetime) -> _Outcome:
        text = scan.data.strip()
        if not text:
            return _Outcome(Reason.UNKNOWN, "empty scan")
        if len(text) > MAX_CODE_CHARS:
            return _Outcome(Reason.UNKNOWN, "too long to be a ticket code")
        if len(text) < codes.MIN_CHARS:  # too short for a code: a printed or typed ticket number
            row = self.conn.execute(
                f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE number = ?", (text,)).fetchone()
            if row is None:
                return _Outcome(Reason.UNKNOWN, "neither a ticket code nor a known ticket number")
            return self._check(self._from_row(row, code_serial=None), row[13], scan, lane, now)
        try:
            payload = codes.decode(text, self._keys(now))
        except codes.CodeError as e:
            reason, detail = _CODE_ERRORS.get(e.code, (Reason.FORGED, "invalid ticket code"))
            return _Outcome(reason, detail)
        row = self.conn.execute(
            f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE id = ?", (payload.ticket_id,)).fetchone()
        if row is None or payload.serial > row[2]:
            # Sold (or re-issued) after this appliance last synced: the signature vouches for it.
            ticket = self._from_payload(payload, holder_id=row[12] if row else None)
            return self._check(ticket, "issued", scan, lane, now)
        return self._check(self._from_row(row, code_serial=payload.serial), row[13], scan, lane,
                           now)

    def _judge_document(self, scan: Scan, lane: _Lane, now: datetime) -> _Outcome:
        doc = scan.document
        if doc is None:
            return _Outcome(Reason.UNKNOWN, "no document data from the reader")
        try:
            doc_hash = self.vault.doc_hash(doc.doc_type, doc.number)
        except DocumentError as e:
            return _Outcome(Reason.UNKNOWN, f"unreadable document: {e.code}",
                            scan_ref="doc:invalid")
        ref = f"doc:{doc_hash}"
        if lane.realname_mode != "id_only":
            return _Outcome(Reason.UNKNOWN, "an ID card alone is not accepted at this gate: "
                            "scan the ticket", scan_ref=ref)
        if self._blocked("holder", doc_hash):
            return _Outcome(Reason.BLOCKED, "holder on the block list", scan_ref=ref)
        rows = self.conn.execute(
            f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE holder_id IN "
            "(SELECT id FROM holders WHERE doc_hash = ?) ORDER BY id", (doc_hash,)).fetchall()
        if not rows:
            return _Outcome(Reason.UNKNOWN, "no ticket for this document", scan_ref=ref)
        best: _Outcome | None = None
        best_stage = -1
        for row in rows:
            outcome = self._check(self._from_row(row, code_serial=None), row[13], scan, lane,
                                  now, scan_ref=ref, identified=True)
            if outcome.reason is Reason.OK:
                return outcome
            if outcome.stage > best_stage:
                best, best_stage = outcome, outcome.stage
        assert best is not None
        return best

    def _from_row(self, row: tuple, code_serial: int | None) -> _Ticket:
        return _Ticket(
            id=row[0], number=row[1], serial=row[2] if code_serial is None else code_serial,
            kind=row[3], role=row[4], scope=tuple(json.loads(row[5])), zone_id=row[6],
            seat=row[7], valid_from=from_iso(row[8]) if row[8] else None,
            valid_until=from_iso(row[9]) if row[9] else None, daily_limit=row[10],
            realname=bool(row[11]), holder_id=row[12], current_serial=row[2],
        )

    def _from_payload(self, p: codes.TicketPayload, holder_id: int | None) -> _Ticket:
        return _Ticket(
            id=p.ticket_id, number=None, serial=p.serial, kind=_KIND_NAMES[p.kind],
            role=_ROLE_NAMES[p.role], scope=tuple(p.scope), zone_id=p.zone,
            seat=f"#{p.seat}" if p.seat else None, valid_from=p.valid_from,
            valid_until=p.valid_until, daily_limit=p.daily_limit, realname=p.realname,
            holder_id=holder_id, current_serial=p.serial, offline_code=True,
        )

    # -- the rules -----------------------------------------------------------------------

    def _check(self, t: _Ticket, state: str, scan: Scan, lane: _Lane, now: datetime,
               scan_ref: str = "", identified: bool = False) -> _Outcome:
        outcome = _Outcome(Reason.OK, ticket=t, scan_ref=scan_ref)
        try:
            outcome.session = self._rules(t, state, scan, lane, now, identified, outcome)
        except _Refused as r:
            outcome.reason, outcome.detail, outcome.stage = r.reason, r.detail, r.stage
        return outcome

    def _rules(self, t: _Ticket, state: str, scan: Scan, lane: _Lane, now: datetime,
               identified: bool, outcome: _Outcome) -> tuple | None:
        # 1. revoked: by the hub's revocation list, the ticket's state, or a newer code
        rev = self.conn.execute(
            "SELECT serial_below, reason FROM revocations WHERE ticket_id = ?", (t.id,)).fetchone()
        if rev is not None and (rev[0] is None or t.serial < rev[0]):
            raise _Refused(Reason.REVOKED, f"revoked: {rev[1]}", STAGE_REVOKED)
        if state != "issued":
            raise _Refused(Reason.REVOKED, f"ticket {state}", STAGE_REVOKED)
        if t.serial < t.current_serial:
            raise _Refused(Reason.REVOKED, "replaced by a newer code", STAGE_REVOKED)
        # 2. blocked
        if self._blocked("ticket", str(t.id)):
            raise _Refused(Reason.BLOCKED, "ticket on the block list", STAGE_BLOCKED)
        holder = None
        if t.holder_id is not None:
            holder = self.conn.execute("SELECT doc_hash FROM holders WHERE id = ?",
                                       (t.holder_id,)).fetchone()
            if holder and self._blocked("holder", holder[0]):
                raise _Refused(Reason.BLOCKED, "holder on the block list", STAGE_BLOCKED)
        # 3. scope and time
        session = self._session_for(t, lane, now)
        if t.valid_from and now < t.valid_from:
            raise _Refused(Reason.NOT_YET_VALID, f"valid from {_local(t.valid_from, lane)}",
                           STAGE_SCOPE)
        if t.valid_until and now > t.valid_until:
            raise _Refused(Reason.EXPIRED, f"valid until {_local(t.valid_until, lane)}",
                           STAGE_SCOPE)
        if lane.direction == "out":
            return session  # leaving is always allowed to a valid ticket, and recorded
        # 4. zone -> gate
        if t.zone_id and lane.zones and t.zone_id not in lane.zones:
            raise _Refused(Reason.WRONG_GATE, f"zone {self._zone_name(t.zone_id)} is not "
                           "admitted at this gate", STAGE_ZONE)
        # 5. real name
        if t.realname and lane.realname_mode != "ticket" and not identified:
            doc = scan.document
            if doc is None:
                raise _Refused(Reason.REALNAME_REQUIRED, "real-name ticket: read the holder's "
                               "ID card with the ticket", STAGE_REALNAME)
            if holder is None:
                raise _Refused(Reason.REALNAME_REQUIRED, "holder not on this appliance yet: "
                               "send to the help desk", STAGE_REALNAME)
            try:
                presented = self.vault.doc_hash(doc.doc_type, doc.number)
            except DocumentError as e:
                raise _Refused(Reason.REALNAME_MISMATCH, f"unreadable document: {e.code}",
                               STAGE_REALNAME) from None
            if presented != holder[0]:
                raise _Refused(Reason.REALNAME_MISMATCH, "document is not the ticket holder's",
                               STAGE_REALNAME)
        # 6. usage: single entry, anti-passback, per-day limit
        if t.role != "staff":
            self._check_usage(t, lane, now, session, outcome)
        return session

    def _session_for(self, t: _Ticket, lane: _Lane, now: datetime) -> tuple | None:
        """The session this scan counts for; refuses when none of the ticket's is open now."""
        if t.kind == "venues":
            if lane.venue_id not in t.scope:
                raise _Refused(Reason.WRONG_SESSION, "pass not valid at this venue", STAGE_SCOPE)
            rows = self.conn.execute(
                "SELECT id, name, starts_at, ends_at, gates_open_at FROM sessions "
                "WHERE venue_id = ?", (lane.venue_id,)).fetchall()
            open_now = [r for r in rows if _is_open(self._window(r, lane), now)]
            return min(open_now, key=lambda r: r[2]) if open_now else None
        marks = ",".join("?" * len(t.scope))
        rows = self.conn.execute(
            f"SELECT id, name, starts_at, ends_at, gates_open_at FROM sessions "
            f"WHERE id IN ({marks}) AND venue_id = ? ORDER BY starts_at",
            (*t.scope, lane.venue_id)).fetchall()
        if not rows:
            raise _Refused(Reason.WRONG_SESSION, "not for a session held at this venue",
                           STAGE_SCOPE)
        upcoming = None
        for row in rows:
            opens, closes = self._window(row, lane)
            if opens <= now <= closes:
                return row
            if now < opens and upcoming is None:
                upcoming = (row, opens)
        if upcoming:
            row, opens = upcoming
            raise _Refused(Reason.NOT_YET_VALID, f"{row[1]}: gates open {_local(opens, lane)}",
                           STAGE_SCOPE)
        raise _Refused(Reason.EXPIRED, f"{rows[-1][1]} is over", STAGE_SCOPE)

    @staticmethod
    def _window(row: tuple, lane: _Lane) -> tuple[datetime, datetime]:
        opens = from_iso(row[4] or row[2]) - lane.open_before
        return opens, from_iso(row[3]) + lane.close_after

    def _check_usage(self, t: _Ticket, lane: _Lane, now: datetime, session: tuple | None,
                     outcome: _Outcome) -> None:
        day = now.astimezone(lane.tz).date().isoformat()
        if t.daily_limit:
            (count,) = self.conn.execute(
                "SELECT count(*) FROM entries WHERE ticket_id = ? AND admitted = 1 "
                "AND direction = 'in' AND day = ?", (t.id, day)).fetchone()
            if count >= t.daily_limit:
                outcome.first_entry_at = self._first_entry(t.id, "day = ?", day)
                raise _Refused(Reason.ALREADY_ENTERED,
                               f"daily limit of {t.daily_limit} entries reached", STAGE_USAGE)
        if session is not None:
            where, arg = "session_id = ?", session[0]
        else:
            where, arg = "session_id IS NULL AND day = ?", day
        last = self.conn.execute(
            f"SELECT direction FROM entries WHERE ticket_id = ? AND admitted = 1 AND {where} "
            "ORDER BY seq DESC LIMIT 1", (t.id, arg)).fetchone()
        if last is None:
            return
        if last[0] == "out" and (lane.reentry or t.role == "registered"):
            return
        outcome.first_entry_at = self._first_entry(t.id, where, arg)
        detail = "already inside" if last[0] == "in" else "re-entry not allowed at this gate"
        raise _Refused(Reason.ALREADY_ENTERED, detail, STAGE_USAGE)

    def _first_entry(self, ticket_id: int, where: str, arg) -> str | None:
        row = self.conn.execute(
            f"SELECT at FROM entries WHERE ticket_id = ? AND admitted = 1 AND direction = 'in' "
            f"AND {where} ORDER BY seq LIMIT 1", (ticket_id, arg)).fetchone()
        return row[0] if row else None

    def _blocked(self, kind: str, value: str) -> bool:
        return self.conn.execute("SELECT 1 FROM blocklist WHERE kind = ? AND value = ?",
                                 (kind, value)).fetchone() is not None

    # -- what the screen shows -----------------------------------------------------------

    def _zone_name(self, zone_id: int) -> str:
        row = self.conn.execute("SELECT name FROM zones WHERE id = ?", (zone_id,)).fetchone()
        return row[0] if row else f"#{zone_id}"

    def _ticket_view(self, t: _Ticket, session: tuple | None) -> TicketView:
        return TicketView(
            id=t.id, number=t.number, kind=t.kind, role=t.role, zone_id=t.zone_id,
            zone=self._zone_name(t.zone_id) if t.zone_id else None, seat=t.seat,
            session_id=session[0] if session else None, session=session[1] if session else None,
        )

    def _holder_view(self, holder_id: int) -> HolderView | None:
        row = self.conn.execute("SELECT name_masked, doc_masked FROM holders WHERE id = ?",
                                (holder_id,)).fetchone()
        return HolderView(row[0], row[1]) if row else None


def _is_open(window: tuple[datetime, datetime], now: datetime) -> bool:
    return window[0] <= now <= window[1]


def _local(dt: datetime, lane: _Lane) -> str:
    return dt.astimezone(lane.tz).strftime("%Y-%m-%d %H:%M")


def _scan_ref(scan: Scan) -> str:
    """What is kept of the scan: its text, shortened and made printable; never a document number."""
    if scan.kind is ScanKind.ID_CARD:
        return "doc:unread"
    text = scan.data.strip()
    ref = text[:MAX_SCAN_REF].encode("unicode_escape").decode("ascii")
    if len(text) > MAX_SCAN_REF:
        ref += f"...(+{len(text) - MAX_SCAN_REF} chars)"
    return ref
