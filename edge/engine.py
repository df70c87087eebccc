"""The validation engine: one function decides every scan, whoever asks.

``Engine.decide(scan, lane, now)`` looks the scan up, applies the gate's rules and records the
scan as an entry, all inside one ``BEGIN IMMEDIATE`` transaction. Two lanes scanning the same
ticket at the same instant are serialised by SQLite's write lock, so exactly one is admitted.
The decision is returned only after the entry is committed (``synchronous=FULL``): a lane never
opens for a scan the database could lose.

Nothing a person holds up to a reader can raise out of here: a malformed or hostile scan
becomes a recorded ``UNKNOWN`` or ``FORGED`` entry, and a failing database becomes a
``DEVICE_ERROR`` decision that keeps the lane shut. A lane that does not exist (or is
disabled) is the caller's mistake, not a scan: :class:`UnknownLane` is raised and nothing is
recorded.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from edge.holders import DocumentError, HolderVault, mask_document
from edge.reasons import Reason
from sync import codes, numbers
from sync.changes import normalize_uid
from sync.ids import uuid7
from sync.keys import KeyRing
from sync.timeutil import from_iso, to_iso, utcnow

log = logging.getLogger(__name__)

MAX_SCAN_REF = 256
MAX_CODE_CHARS = 1024  # far above the longest valid code (a 32-session pass)


class ScanKind(StrEnum):
    """How a scan came to be. Every reader's scan (a camera, a barcode or wedge scanner, a
    handheld's camera or scanner) is ``QR``, ``RFID`` or ``ID_CARD``; only ``MANUAL`` is a
    ticket number typed by a signed-in staff member, and ``OVERRIDE`` is a supervisor's "open
    anyway", which the gate screen records and the engine never decides."""

    QR = "qr"
    RFID = "rfid"
    ID_CARD = "id_card"
    MANUAL = "manual"
    OVERRIDE = "override"


MAX_STAFF = 64


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
    carries its document in ``document`` (also used for the ID shown with a ticket).
    ``staff`` names who typed a ``MANUAL`` scan (a staff member's user name, a handheld's
    name, ``cli:<user>``); a manual scan without one is refused."""

    kind: ScanKind
    data: str = ""
    device_id: str | None = None
    document: IdDocument | None = None
    staff: str | None = None


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
    by_number: bool = False  # admitted on a ticket number typed by ``staff``
    staff: str | None = None

    @property
    def verdict(self) -> str:
        return "admit" if self.reason is Reason.OK else "refuse"


@dataclass(frozen=True)
class GroupScan:
    """One scan of :meth:`Engine.decide_all`; ``on_record(conn, decision)`` runs in its savepoint."""

    scan: Scan
    lane: str
    now: datetime | None = None
    on_record: Callable[[sqlite3.Connection, Decision], None] | None = None
    late: Lateness | None = None  # a scan made offline: when it arrived, how old it may be


@dataclass(frozen=True)
class Lateness:
    """A scan decided at the time it was made (``GroupScan.now``) that reached the appliance
    only at ``arrived``, from a handheld's offline queue. Were it admitted, it is refused as
    ``EXPIRED`` instead when it arrived after the entry window it counts for had closed (the
    session's window at this gate, or the ticket's own validity), or, with ``max_age``, more
    than that after it was made."""

    arrived: datetime
    max_age: timedelta | None = None


class UnknownLane(LookupError):
    """The lane code names no lane of this appliance (``code = "unknown_lane"``) or a disabled
    one (``code = "lane_disabled"``); nothing was recorded."""

    def __init__(self, lane: str, disabled: bool = False):
        self.lane = lane
        self.code = "lane_disabled" if disabled else "unknown_lane"
        super().__init__(f"lane {lane} is disabled" if disabled else f"no such lane: {lane}")


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
    clock_offset_ms: int | None = None
    manual_entry: bool = False  # the gate admits on a ticket number typed by staff


@dataclass(frozen=True)
class _Session:
    id: int
    name: str
    venue_id: int
    starts_at: datetime
    ends_at: datetime
    gates_open_at: datetime | None

    def window(self, lane: _Lane) -> tuple[datetime, datetime]:
        """When the lane admits for this session: gates-open (or start) less the gate's early
        margin, to the end plus its late margin."""
        return ((self.gates_open_at or self.starts_at) - lane.open_before,
                self.ends_at + lane.close_after)


@dataclass
class _Ticket:
    """What the rules need to know of a ticket, from the allowlist or from its code alone,
    together with what the appliance holds against it (revocation, block list)."""

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
    state: str = "issued"
    current_serial: int = 0  # the serial of the ticket's newest code known here
    zone: str | None = None
    holder_id: int | None = None
    holder_hash: str | None = None
    holder_masked: HolderView | None = None
    revoked: bool = False
    revoked_below: int | None = None
    revoked_reason: str = ""
    blocked: bool = False
    holder_blocked: bool = False
    offline_code: bool = False
    admitted_before: bool = True  # False only when no admitted entry of it exists here


@dataclass
class _Outcome:
    reason: Reason
    detail: str = ""
    ticket: _Ticket | None = None
    session: _Session | None = None
    first_entry_at: str | None = None
    scan_ref: str = ""
    stage: int = -1
    by_number: bool = False


_KIND_NAMES = {codes.Kind.SESSION: "session", codes.Kind.SESSIONS: "sessions",
               codes.Kind.VENUES: "venues"}
_ROLE_NAMES = {codes.Role.TICKET: "ticket", codes.Role.STAFF: "staff",
               codes.Role.REGISTERED: "registered"}

# Per decision, one small statement says whether the configuration changed (every change to
# the configuration tables bumps config_version by trigger) and reads the cursor and clock offset.
# The cursor an entry carries is the furthest of the two streams: either one at c means every
# revocation up to c has been applied, which is what the hub judges an admission by.
_STATE_SQL = """
SELECT (SELECT value FROM appliance_state WHERE key = 'config_version'),
       (SELECT max(cursor) FROM sync_state WHERE stream IN ('allowlist', 'revocations')),
       (SELECT value FROM appliance_state WHERE key = 'clock_offset_ms')
"""
_LANE_SQL = """
SELECT l.id, l.code, l.direction, l.enabled, g.id, g.reentry, g.realname_mode,
       g.open_before_min, g.close_after_min,
       (SELECT group_concat(zone_id) FROM gate_zones WHERE gate_id = g.id),
       (SELECT id FROM venue LIMIT 1), (SELECT timezone FROM venue LIMIT 1), g.manual_entry
FROM lanes l JOIN gates g ON g.id = l.gate_id
WHERE l.code = ?
"""
# Everything known of a ticket in one statement: the allowlist row, its holder and zone, the
# revocation and block entries (which exist even for tickets not in the allowlist), and whether
# it was ever admitted here: most scans are first scans, and those need no look at the entries.
_TICKET_SQL = """
SELECT q.id, t.number, t.serial, t.kind, t.role, t.scope, t.zone_id, t.seat, t.valid_from,
       t.valid_until, t.daily_limit, t.realname, t.holder_id, t.state, t.code_digest,
       h.doc_hash, h.name_masked, h.doc_masked, z.name, r.ticket_id, r.serial_below, r.reason,
       EXISTS (SELECT 1 FROM blocklist b WHERE b.kind = 'ticket' AND b.value = CAST(q.id AS TEXT)),
       EXISTS (SELECT 1 FROM blocklist b WHERE b.kind = 'holder' AND b.value = h.doc_hash),
       EXISTS (SELECT 1 FROM entries e WHERE e.ticket_id = q.id AND e.admitted = 1)
FROM ({source}) q
LEFT JOIN tickets t ON t.id = q.id
LEFT JOIN holders h ON h.id = t.holder_id
LEFT JOIN zones z ON z.id = t.zone_id
LEFT JOIN revocations r ON r.ticket_id = q.id
"""
_BY_ID = _TICKET_SQL.format(source="SELECT ? AS id")
_BY_DIGEST = _TICKET_SQL.format(source="SELECT id FROM tickets WHERE code_digest = ?")
_BY_NUMBER = _TICKET_SQL.format(source="SELECT id FROM tickets WHERE number = ?")
_BY_UID = _TICKET_SQL.format(source="SELECT id FROM tickets WHERE rfid_uid = ?")
_BY_HOLDER = _TICKET_SQL.format(
    source="SELECT t2.id FROM tickets t2 JOIN holders h2 ON h2.id = t2.holder_id "
           "WHERE h2.doc_hash = ?") + " ORDER BY q.id"
_INSERT_ENTRY = """
INSERT INTO entries (id, at, day, lane_id, gate_id, device_id, direction, scan_kind, scan_ref,
                     ticket_id, session_id, admitted, reason, detail, offline_code, cursor,
                     clock_offset_ms, passage, staff)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _database_failure(lane: str, now: datetime, error: sqlite3.Error) -> Decision:
    """The answer when the database failed: nothing was recorded, so the lane stays shut."""
    return Decision(Reason.DEVICE_ERROR, False, None, now, lane, "in",
                    detail=f"database failure: {error}")


class Engine:
    """Decides scans against one appliance database. One Engine per connection and thread."""

    def __init__(self, conn: sqlite3.Connection, vault: HolderVault):
        self.conn = conn
        self.vault = vault
        self._config_version: str | None = None
        self._mark: tuple[int, int] | None = None  # (data_version, total_changes) after a decision
        self._data_version = 0
        self._state: tuple = ()
        self._lanes: dict[str, _Lane] = {}
        self._session_cache: dict[int, _Session] | None = None
        self._key_cache: tuple[KeyRing, dict[int, datetime]] | None = None

    # -- the one entry point -------------------------------------------------------------

    def decide(self, scan: Scan, lane: str, now: datetime | None = None, *,
               passage: bool = False) -> Decision:
        """``passage``: the lane has a turnstile that reports passages; an admitted entry is
        then recorded as waiting for one (``edge/passages.py`` confirms or annuls it).
        Raises :class:`UnknownLane`, recording nothing, for a lane that is not there."""
        now = now or utcnow()
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                decision = self._decide(scan, lane, now, passage)
                conn.execute("COMMIT")
                # no other writer can commit while this transaction holds the write lock, so
                # the data_version read inside it is still current
                self._mark = (self._data_version, conn.total_changes)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return decision
        except sqlite3.Error as e:
            log.error("lane %s: scan not recorded, the database failed: %s", lane, e)
            return _database_failure(lane, now, e)

    def decide_all(self, scans: Sequence[GroupScan]) -> list[Decision | Exception]:
        """Decide several scans in one transaction and one durable commit, in the order given:
        for a server answering many handhelds at once, where a commit per scan would make the
        disk's flush time the limit. Each scan sees the entries of those before it, exactly as
        if they had been decided one by one, and nothing is answered before the commit.

        Each scan runs in its own savepoint with its ``on_record`` hook, which is called after
        the entry is written, inside the transaction, so that what the caller keeps about the
        scan (a handheld's client scan id) commits with the entry or not at all. An exception
        other than a database error rolls back that scan only and stands in its place in the
        answer. A database error fails the whole group: every scan gets a ``DEVICE_ERROR``
        decision without an entry id, and nothing is recorded.
        """
        conn = self.conn
        out: list[Decision | Exception] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for n, item in enumerate(scans):
                    conn.execute("SAVEPOINT scan")
                    try:
                        decision = self._decide(item.scan, item.lane, item.now or utcnow(),
                                                fresh=n == 0, late=item.late)
                        if item.on_record is not None:
                            item.on_record(conn, decision)
                    except sqlite3.Error:
                        raise
                    except Exception as e:  # noqa: BLE001 - handed back in the scan's place
                        conn.execute("ROLLBACK TO scan")
                        conn.execute("RELEASE scan")
                        out.append(e)
                        continue
                    conn.execute("RELEASE scan")
                    out.append(decision)
                conn.execute("COMMIT")
                self._mark = (self._data_version, conn.total_changes)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return out
        except sqlite3.Error as e:
            log.error("%d scans not recorded, the database failed: %s", len(scans), e)
            return [_database_failure(item.lane, item.now or utcnow(), e) for item in scans]

    def check(self, scan: Scan, lane: str, now: datetime | None = None) -> Decision:
        """What :meth:`decide` would answer at ``lane`` now, without recording anything: the
        help desk's "check without admitting". The answer never opens a lane and has no
        entry id; a later scan of the same ticket is decided as if this check never happened.

        It reads inside one (deferred) transaction, so it sees one consistent state, and takes
        no write lock: checks never queue behind or ahead of the lanes.
        """
        now = now or utcnow()
        conn = self.conn
        try:
            conn.execute("BEGIN")
            try:
                decision = self._decide(scan, lane, now, record=False)
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            return dataclasses.replace(decision, open_lane=False)
        except sqlite3.Error as e:
            log.error("lane %s: check failed, the database failed: %s", lane, e)
            return _database_failure(lane, now, e)

    def _decide(self, scan: Scan, lane_code: str, now: datetime, passage: bool = False,
                record: bool = True, fresh: bool = True,
                late: Lateness | None = None) -> Decision:
        lane = self._lane(lane_code, fresh)
        if lane.id is None:
            raise UnknownLane(lane_code, disabled=lane.gate_id is not None)
        try:
            outcome = self._judge(scan, lane, now)
        except sqlite3.Error:
            raise
        except Exception:  # noqa: BLE001 - a bug must not reach the lane; it is recorded
            log.exception("lane %s: internal error while deciding a %s scan", lane_code,
                          scan.kind)
            outcome = _Outcome(Reason.DEVICE_ERROR, "internal error: see the appliance log")
        if late is not None and outcome.reason is Reason.OK:
            _refuse_if_late(outcome, lane, now, late)
        if not outcome.scan_ref:
            outcome.scan_ref = _scan_ref(scan)
        admitted = outcome.reason is Reason.OK
        t = outcome.ticket
        session = outcome.session
        if record:
            entry_id = str(uuid7())
            self.conn.execute(_INSERT_ENTRY, (
                entry_id, to_iso(now), _day(now, lane), lane.id,
                lane.gate_id, scan.device_id, lane.direction, str(scan.kind), outcome.scan_ref,
                t.id if t else None, session.id if session else None, int(admitted),
                str(outcome.reason), outcome.detail, int(bool(t and t.offline_code)),
                lane.cursor, lane.clock_offset_ms, "pending" if admitted and passage else None,
                _staff(scan),
            ))
        else:
            entry_id = None
        view = None
        if t is not None:
            if t.zone is None and t.zone_id:
                t.zone = self._zone_name(t.zone_id)
            view = TicketView(
                id=t.id, number=t.number, kind=t.kind, role=t.role, zone_id=t.zone_id,
                zone=t.zone, seat=t.seat, session_id=session.id if session else None,
                session=session.name if session else None)
        return Decision(
            reason=outcome.reason,
            open_lane=admitted,
            entry_id=entry_id,
            at=now,
            lane=lane_code,
            direction=lane.direction,
            ticket=view,
            holder_masked=t.holder_masked if t else None,
            detail=outcome.detail,
            first_entry_at=from_iso(outcome.first_entry_at) if outcome.first_entry_at else None,
            offline_code=bool(t and t.offline_code),
            by_number=admitted and outcome.by_number,
            staff=_staff(scan),
        )

    # -- configuration -------------------------------------------------------------------

    def _lane(self, code: str, fresh: bool = True) -> _Lane:
        """The lane's configuration, from memory unless the configuration changed since.
        ``fresh=False``: a later scan of the same write transaction, which nobody else can
        have changed the configuration in since its first scan looked."""
        # data_version moves when another connection commits, total_changes when this one
        # writes outside decide(); while neither moves, the configuration, cursor and clock
        # offset read last time are still true.
        if fresh:
            (self._data_version,) = self.conn.execute("PRAGMA data_version").fetchone()
            mark = (self._data_version, self.conn.total_changes)
            if mark != self._mark:
                self._state = self.conn.execute(_STATE_SQL).fetchone()
        version, cursor, offset = self._state
        if version != self._config_version:
            self._lanes.clear()
            self._session_cache = None
            self._key_cache = None
            self._config_version = version
        lane = self._lanes.get(code)
        if lane is None:
            row = self.conn.execute(_LANE_SQL, (code,)).fetchone()
            if row is None or not row[3]:  # gate_id says whether it exists, disabled
                return _Lane(None, code, "in", None if row is None else row[4], False, "ticket",
                             timedelta(), timedelta(), frozenset(), None, ZoneInfo("UTC"), 0)
            zones = frozenset(int(z) for z in row[9].split(",")) if row[9] else frozenset()
            lane = _Lane(
                id=row[0], code=row[1], direction=row[2], gate_id=row[4], reentry=bool(row[5]),
                realname_mode=row[6], open_before=timedelta(minutes=row[7]),
                close_after=timedelta(minutes=row[8]), zones=zones, venue_id=row[10],
                tz=ZoneInfo(row[11] or "UTC"), cursor=0, manual_entry=bool(row[12]))
            self._lanes[code] = lane
        lane.cursor = cursor or 0
        lane.clock_offset_ms = int(offset) if offset is not None else None
        return lane

    def _sessions(self) -> dict[int, _Session]:
        if self._session_cache is None:
            self._session_cache = {
                r[0]: _Session(r[0], r[1], r[2], from_iso(r[3]), from_iso(r[4]),
                               from_iso(r[5]) if r[5] else None)
                for r in self.conn.execute(
                    "SELECT id, name, venue_id, starts_at, ends_at, gates_open_at FROM sessions")}
        return self._session_cache

    def _keyring_for(self, now: datetime) -> KeyRing:
        """The hub keys trusted now: all but those retired before ``now``."""
        if self._key_cache is None:
            rows = self.conn.execute(
                "SELECT key_id, public_key, retired_at FROM hub_keys").fetchall()
            ring = KeyRing({kid: pub for kid, pub, _ in rows})
            retiring = {kid: from_iso(at) for kid, _, at in rows if at}
            self._key_cache = (ring, retiring)
        ring, retiring = self._key_cache
        if all(now < at for at in retiring.values()):
            return ring
        return KeyRing({kid: ring.get(kid) for kid in ring.key_ids()
                        if kid not in retiring or now < retiring[kid]})

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
            row = self.conn.execute(_BY_UID, (uid,)).fetchone()
            if row is None:
                return _Outcome(Reason.UNKNOWN, "card not in the allowlist", scan_ref=uid)
            return self._check(_from_row(row), scan, lane, now, scan_ref=uid)
        if scan.kind is ScanKind.MANUAL:
            return self._judge_typed(scan, lane, now)
        if scan.kind is not ScanKind.QR:
            return _Outcome(Reason.UNKNOWN, "not a scan a reader makes")
        return self._judge_code(scan, lane, now)

    def _judge_typed(self, scan: Scan, lane: _Lane, now: datetime) -> _Outcome:
        """Text typed by staff: a ticket number where the gate allows it, or a code.

        A ticket number is printed on the ticket and shown in every verdict, so it is never a
        credential on its own: it is looked up only when a named staff member typed it, at a
        gate whose policy admits by number. A signed code typed in full is judged as a code."""
        text = scan.data.strip()
        if len(text) >= codes.MIN_CHARS:
            return self._judge_code(scan, lane, now)
        if not text:
            return _Outcome(Reason.UNKNOWN, "empty scan")
        if not (scan.staff or "").strip():
            return _Outcome(Reason.UNKNOWN, "a ticket number is accepted only from signed-in "
                            "staff")
        if not lane.manual_entry:
            return _Outcome(Reason.UNKNOWN, "ticket numbers are not accepted at this gate")
        row = self.conn.execute(_BY_NUMBER, (text,)).fetchone()
        if row is None:
            typed = numbers.normalize(text)
            if numbers.looks_like_number(typed) and not numbers.is_number(typed):
                return _Outcome(Reason.UNKNOWN, "ticket number mistyped: its check character "
                                "does not match")
            row = self.conn.execute(_BY_NUMBER, (typed,)).fetchone()
        if row is None:
            return _Outcome(Reason.UNKNOWN, "neither a ticket code nor a known ticket number")
        outcome = self._check(_from_row(row), scan, lane, now)
        outcome.by_number = True
        return outcome

    def _judge_code(self, scan: Scan, lane: _Lane, now: datetime) -> _Outcome:
        text = scan.data.strip()
        if not text:
            return _Outcome(Reason.UNKNOWN, "empty scan")
        if len(text) > MAX_CODE_CHARS:
            return _Outcome(Reason.UNKNOWN, "too long to be a ticket code")
        if len(text) < codes.MIN_CHARS:
            # too short for a code; a ticket number, whatever read it, proves nothing
            return _Outcome(Reason.UNKNOWN, "not a ticket code")
        # The allowlist carries the fingerprint of each code the hub issued: a scan that matches
        # one is that code, and needs no parsing or signature check. Anything else must prove
        # itself by its signature (a ticket sold after the last sync, a forgery, a stale code).
        row = self.conn.execute(_BY_DIGEST, (codes.digest(text),)).fetchone()
        if row is not None:
            return self._check(_from_row(row), scan, lane, now)
        try:
            payload = codes.verify(codes.read(text), self._keyring_for(now))
            row = self.conn.execute(_BY_ID, (payload.ticket_id,)).fetchone()
        except codes.CodeError as e:
            reason, detail = _CODE_ERRORS.get(e.code, (Reason.FORGED, "invalid ticket code"))
            return _Outcome(reason, detail)
        if row[1] is None or payload.serial > row[2]:
            # Sold (or re-issued) after this appliance last synced: the signature vouches for it.
            return self._check(_from_payload(payload, row), scan, lane, now)
        ticket = _from_row(row)
        ticket.serial = payload.serial
        return self._check(ticket, scan, lane, now)

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
        rows = self.conn.execute(_BY_HOLDER, (doc_hash,)).fetchall()
        if not rows:
            return _Outcome(Reason.UNKNOWN, "no ticket for this document", scan_ref=ref)
        best: _Outcome | None = None
        for row in rows:
            outcome = self._check(_from_row(row), scan, lane, now, scan_ref=ref, identified=True)
            if outcome.reason is Reason.OK:
                return outcome
            if best is None or outcome.stage > best.stage:
                best = outcome
        return best

    # -- the rules -----------------------------------------------------------------------

    def _check(self, t: _Ticket, scan: Scan, lane: _Lane, now: datetime, scan_ref: str = "",
               identified: bool = False) -> _Outcome:
        outcome = _Outcome(Reason.OK, ticket=t, scan_ref=scan_ref)
        try:
            outcome.session = self._rules(t, scan, lane, now, identified, outcome)
        except _Refused as r:
            outcome.reason, outcome.detail, outcome.stage = r.reason, r.detail, r.stage
        return outcome

    def _rules(self, t: _Ticket, scan: Scan, lane: _Lane, now: datetime, identified: bool,
               outcome: _Outcome) -> _Session | None:
        # 1. revoked: by the hub's revocation list, the ticket's state, or a newer code
        if t.revoked and (t.revoked_below is None or t.serial < t.revoked_below):
            raise _Refused(Reason.REVOKED, f"revoked: {t.revoked_reason}", STAGE_REVOKED)
        if t.state != "issued":
            raise _Refused(Reason.REVOKED, f"ticket {t.state}", STAGE_REVOKED)
        if t.serial < t.current_serial:
            raise _Refused(Reason.REVOKED, "replaced by a newer code", STAGE_REVOKED)
        # 2. blocked
        if t.blocked:
            raise _Refused(Reason.BLOCKED, "ticket on the block list", STAGE_BLOCKED)
        if t.holder_blocked:
            raise _Refused(Reason.BLOCKED, "holder on the block list", STAGE_BLOCKED)
        # 3. scope and time
        session = self._session_for(t, lane, now)
        outcome.session = session  # a refusal from here on is recorded with its session too
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
            zone = t.zone or self._zone_name(t.zone_id)
            gates = self._gates_admitting(t.zone_id)
            where = f": go to {', '.join(gates)}" if gates else ""
            raise _Refused(Reason.WRONG_GATE, f"zone {zone} is not admitted at this gate"
                           f"{where}", STAGE_ZONE)
        # 5. real name
        if t.realname and lane.realname_mode != "ticket" and not identified:
            doc = scan.document
            if doc is None:
                raise _Refused(Reason.REALNAME_REQUIRED, "real-name ticket: read the holder's "
                               "ID card with the ticket", STAGE_REALNAME)
            if t.holder_hash is None:
                raise _Refused(Reason.REALNAME_REQUIRED, "holder not on this appliance yet: "
                               "send to the help desk", STAGE_REALNAME)
            try:
                presented = self.vault.doc_hash(doc.doc_type, doc.number)
            except DocumentError as e:
                raise _Refused(Reason.REALNAME_MISMATCH, f"unreadable document: {e.code}",
                               STAGE_REALNAME) from None
            if presented != t.holder_hash:
                raise _Refused(Reason.REALNAME_MISMATCH, "document is not the ticket holder's",
                               STAGE_REALNAME)
        # 6. usage: single entry, anti-passback, per-day limit
        if t.role != "staff" and t.admitted_before:
            self._check_usage(t, lane, now, session, outcome)
        return session

    def _session_for(self, t: _Ticket, lane: _Lane, now: datetime) -> _Session | None:
        """The session this scan counts for; refuses when none of the ticket's is open now."""
        sessions = self._sessions()
        if t.kind == "venues":
            if lane.venue_id not in t.scope:
                raise _Refused(Reason.WRONG_SESSION, "pass not valid at this venue", STAGE_SCOPE)
            open_now = [s for s in sessions.values()
                        if s.venue_id == lane.venue_id and _is_open(s.window(lane), now)]
            return min(open_now, key=lambda s: s.starts_at) if open_now else None
        mine = sorted((s for sid in t.scope if (s := sessions.get(sid)) is not None
                       and s.venue_id == lane.venue_id), key=lambda s: s.starts_at)
        if not mine:
            raise _Refused(Reason.WRONG_SESSION, "not for a session held at this venue",
                           STAGE_SCOPE)
        upcoming = None
        for session in mine:
            opens, closes = session.window(lane)
            if opens <= now <= closes:
                return session
            if now < opens and upcoming is None:
                upcoming = (session, opens)
        if upcoming:
            session, opens = upcoming
            raise _Refused(Reason.NOT_YET_VALID,
                           f"{session.name}: gates open {_local(opens, lane)}", STAGE_SCOPE)
        raise _Refused(Reason.EXPIRED, f"{mine[-1].name} is over", STAGE_SCOPE)

    def _check_usage(self, t: _Ticket, lane: _Lane, now: datetime, session: _Session | None,
                     outcome: _Outcome) -> None:
        day = _day(now, lane)
        if t.daily_limit:
            (count,) = self.conn.execute(
                "SELECT count(*) FROM entries WHERE ticket_id = ? AND admitted = 1 "
                "AND direction = 'in' AND day = ?", (t.id, day)).fetchone()
            if count >= t.daily_limit:
                outcome.first_entry_at = self._first_entry(t.id, "day = ?", day)
                raise _Refused(Reason.ALREADY_ENTERED,
                               f"daily limit of {t.daily_limit} entries reached", STAGE_USAGE)
        if session is not None:
            where, arg = "session_id = ?", session.id
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

    def _gates_admitting(self, zone_id: int, most: int = 5) -> list[str]:
        """The names of the gates whose entry lanes admit ``zone_id`` (a gate without a zone
        list admits every zone): where a WRONG_GATE refusal sends the holder."""
        return [name for (name,) in self.conn.execute(
            "SELECT coalesce(nullif(g.name, ''), g.code) FROM gates g WHERE EXISTS "
            "(SELECT 1 FROM lanes l WHERE l.gate_id = g.id AND l.enabled = 1 "
            "AND l.direction = 'in') AND (EXISTS (SELECT 1 FROM gate_zones z WHERE "
            "z.gate_id = g.id AND z.zone_id = ?) OR NOT EXISTS (SELECT 1 FROM gate_zones z "
            "WHERE z.gate_id = g.id)) ORDER BY g.code LIMIT ?", (zone_id, most))]

    def _zone_name(self, zone_id: int) -> str:
        row = self.conn.execute("SELECT name FROM zones WHERE id = ?", (zone_id,)).fetchone()
        return row[0] if row else f"#{zone_id}"


def _from_row(row: tuple) -> _Ticket:
    """A ticket from the allowlist (a _TICKET_SQL row whose ticket exists)."""
    return _Ticket(
        id=row[0], number=row[1], serial=row[2], kind=row[3], role=row[4],
        scope=tuple(map(int, row[5].split(","))), zone_id=row[6], seat=row[7],
        valid_from=from_iso(row[8]) if row[8] else None,
        valid_until=from_iso(row[9]) if row[9] else None, daily_limit=row[10],
        realname=bool(row[11]), holder_id=row[12], state=row[13], current_serial=row[2],
        holder_hash=row[15], holder_masked=HolderView(row[16], row[17]) if row[15] else None,
        zone=row[18], **_held_against(row),
    )


def _from_payload(p: codes.TicketPayload, row: tuple) -> _Ticket:
    """A ticket known only by its verified code (and what the appliance holds against it)."""
    return _Ticket(
        id=p.ticket_id, number=row[1], serial=p.serial, kind=_KIND_NAMES[p.kind],
        role=_ROLE_NAMES[p.role], scope=tuple(p.scope), zone_id=p.zone,
        seat=f"#{p.seat}" if p.seat else None, valid_from=p.valid_from,
        valid_until=p.valid_until, daily_limit=p.daily_limit, realname=p.realname,
        current_serial=p.serial, holder_id=row[12], holder_hash=row[15],
        holder_masked=HolderView(row[16], row[17]) if row[15] else None, offline_code=True,
        **_held_against(row),
    )


def _held_against(row: tuple) -> dict:
    return {"revoked": row[19] is not None, "revoked_below": row[20],
            "revoked_reason": row[21] or "", "blocked": bool(row[22]),
            "holder_blocked": bool(row[23]), "admitted_before": bool(row[24])}


def _day(now: datetime, lane: _Lane) -> str:
    """The venue-local date: passes count their entries per day where the venue is."""
    return now.astimezone(lane.tz).date().isoformat()


def _refuse_if_late(outcome: _Outcome, lane: _Lane, made: datetime, late: Lateness) -> None:
    """Turn the admission of an offline scan that arrived too late into an EXPIRED refusal.
    The entry window is judged by the appliance's own time of arrival, whatever times the
    handheld sent; ``max_age`` (from the handheld's scan time) is a further limit, never a
    way past the window."""
    if late.max_age is not None and late.arrived - made > late.max_age:
        minutes = int(late.max_age.total_seconds() // 60)
        outcome.reason = Reason.EXPIRED
        outcome.detail = f"offline scan arrived more than {minutes} minutes after it was made"
        return
    t = outcome.ticket
    closes = (outcome.session.window(lane)[1] if outcome.session is not None
              else t.valid_until if t is not None else None)
    if closes is not None and late.arrived > closes:
        outcome.reason = Reason.EXPIRED
        outcome.detail = ("offline scan arrived after its entry window closed at "
                          f"{_local(closes, lane)}")


def _is_open(window: tuple[datetime, datetime], now: datetime) -> bool:
    return window[0] <= now <= window[1]


def _local(dt: datetime, lane: _Lane) -> str:
    return dt.astimezone(lane.tz).strftime("%Y-%m-%d %H:%M")


def _staff(scan: Scan) -> str | None:
    """Who typed a manual scan, as recorded with its entry."""
    if scan.kind is not ScanKind.MANUAL:
        return None
    return (scan.staff or "").strip()[:MAX_STAFF] or None


def _scan_ref(scan: Scan) -> str:
    """What is kept of the scan: its text, shortened and made printable; never a document number."""
    if scan.kind is ScanKind.ID_CARD:
        return "doc:unread"
    text = scan.data.strip()
    if len(text) <= MAX_SCAN_REF and text.isascii() and text.isprintable():
        return text  # every real code and ticket number
    ref = text[:MAX_SCAN_REF].encode("unicode_escape").decode("ascii")
    if len(text) > MAX_SCAN_REF:
        ref += f"...(+{len(text) - MAX_SCAN_REF} chars)"
    return ref
