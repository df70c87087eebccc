"""The validation engine: one function decides every scan, whoever asks.

``Engine.decide(scan, lane, now)`` looks the scan up, applies the gate's rules and records the
scan as an entry, all inside one ``BEGIN IMMEDIATE`` transaction. Two lanes scanning the same
ticket at the same instant are serialised by SQLite's write lock, so exactly one is admitted.
The decision is returned only after the entry is committed (``synchronous=FULL``): a lane never
opens for a scan the database could lose.

The rules themselves are plain functions in :mod:`edge.rules`; this module finds the facts
they need (the lane, the ticket, its last movements) in the database, asks them in order and
writes the entry through :func:`edge.entries.write_entry`, the one writer of entry rows.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from edge import facts, rules
from edge.entries import STAMP_SQL, Stamp, write_entry
from edge.holders import DocumentError, HolderVault, mask_document
from edge.reasons import Reason
from edge.rules import Detail, HolderView, LaneConfig, Lateness, Refused, Session, TicketFacts
from sync import codes, numbers
from sync.changes import normalize_uid
from sync.keys import KeyRing
from sync.timeutil import from_iso, utcnow

__all__ = ["Decision", "Engine", "GroupScan", "HolderView", "IdDocument", "Lateness", "Scan",
           "ScanKind", "TicketView", "UnknownLane"]

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
class Decision:
    """``detail``: the English words of why (as kept with the entry); ``detail_code`` and
    ``detail_params``: the same as a code of :data:`edge.rules.DETAILS` and its parameters,
    by which screens word it in their language ("" and {} when there is nothing to say)."""

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
    detail_code: str = ""
    detail_params: Mapping[str, Any] = field(default_factory=dict)

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


class UnknownLane(LookupError):
    """The lane code names no lane of this appliance (``code = "unknown_lane"``) or a disabled
    one (``code = "lane_disabled"``); nothing was recorded."""

    def __init__(self, lane: str, disabled: bool = False):
        self.lane = lane
        self.code = "lane_disabled" if disabled else "unknown_lane"
        super().__init__(f"lane {lane} is disabled" if disabled else f"no such lane: {lane}")


@dataclass
class _Outcome:
    reason: Reason
    why: Detail | None = None
    ticket: TicketFacts | None = None
    session: Session | None = None
    first_entry_at: str | None = None
    scan_ref: str = ""
    stage: int = -1
    by_number: bool = False


def _unknown(what: str, /, scan_ref: str = "", **params: Any) -> _Outcome:
    return _Outcome(Reason.UNKNOWN, rules.detail(what, **params), scan_ref=scan_ref)


def _database_failure(lane: str, now: datetime, error: sqlite3.Error) -> Decision:
    """The answer when the database failed: nothing was recorded, so the lane stays shut."""
    why = rules.detail("database_failure", error=str(error))
    return Decision(Reason.DEVICE_ERROR, False, None, now, lane, "in", detail=why.text,
                    detail_code=why.code, detail_params=why.params)


class Engine:
    """Decides scans against one appliance database. One Engine per connection and thread."""

    def __init__(self, conn: sqlite3.Connection, vault: HolderVault):
        self.conn = conn
        self.vault = vault
        self._config_version: str | None = None
        self._mark: tuple[int, int] | None = None  # (data_version, total_changes) after a decision
        self._data_version = 0
        self._stamp = Stamp(None, 0, None)
        self._lanes: dict[str, LaneConfig] = {}
        self._session_cache: dict[int, Session] | None = None
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
            outcome = _Outcome(Reason.DEVICE_ERROR, rules.detail("internal_error"))
        if late is not None and outcome.reason is Reason.OK:
            why = rules.too_late(lane, now, late, outcome.session, outcome.ticket)
            if why is not None:
                outcome.reason, outcome.why = Reason.EXPIRED, why
        admitted = outcome.reason is Reason.OK
        t = outcome.ticket
        session = outcome.session
        staff = _staff(scan)
        entry_id = None
        if record:
            entry_id = write_entry(
                self.conn, lane, self._stamp, now, device_id=scan.device_id,
                scan_kind=str(scan.kind), scan_ref=outcome.scan_ref or _scan_ref(scan),
                ticket_id=t.id if t else None, session_id=session.id if session else None,
                reason=outcome.reason, why=outcome.why, offline_code=bool(t and t.offline_code),
                passage="pending" if admitted and passage else None, staff=staff)
        return self._decision(outcome, lane, now, entry_id, staff)

    def _decision(self, outcome: _Outcome, lane: LaneConfig, now: datetime,
                  entry_id: str | None, staff: str | None) -> Decision:
        t, session, why = outcome.ticket, outcome.session, outcome.why
        admitted = outcome.reason is Reason.OK
        view = None
        if t is not None:
            if t.zone is None and t.zone_id:
                t.zone = facts.zone_name(self.conn, t.zone_id)
            view = TicketView(
                id=t.id, number=t.number, kind=t.kind, role=t.role, zone_id=t.zone_id,
                zone=t.zone, seat=t.seat, session_id=session.id if session else None,
                session=session.name if session else None)
        return Decision(
            reason=outcome.reason,
            open_lane=admitted,
            entry_id=entry_id,
            at=now,
            lane=lane.code,
            direction=lane.direction,
            ticket=view,
            holder_masked=t.holder_masked if t else None,
            detail=why.text if why else "",
            first_entry_at=from_iso(outcome.first_entry_at) if outcome.first_entry_at else None,
            offline_code=bool(t and t.offline_code),
            by_number=admitted and outcome.by_number,
            staff=staff,
            detail_code=why.code if why else "",
            detail_params=why.params if why else {},
        )

    # -- configuration -------------------------------------------------------------------

    def _lane(self, code: str, fresh: bool = True) -> LaneConfig:
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
                self._stamp = Stamp.of(self.conn.execute(STAMP_SQL).fetchone())
        version = self._stamp.config_version
        if version != self._config_version:
            self._lanes.clear()
            self._session_cache = None
            self._key_cache = None
            self._config_version = version
        lane = self._lanes.get(code)
        if lane is None:
            row = facts.read_lane(self.conn, code)
            if row is None or not row.enabled:  # gate_id says whether it exists, disabled
                return facts.no_lane(code, None if row is None else row.gate_id)
            lane = self._lanes[code] = facts.lane_config(row)
        return lane

    def _sessions(self) -> dict[int, Session]:
        if self._session_cache is None:
            self._session_cache = facts.read_sessions(self.conn)
        return self._session_cache

    def _keyring_for(self, now: datetime) -> KeyRing:
        """The hub keys trusted now: all but those retired before ``now``."""
        if self._key_cache is None:
            self._key_cache = facts.read_keys(self.conn)
        ring, retiring = self._key_cache
        if all(now < at for at in retiring.values()):
            return ring
        return KeyRing({kid: ring.get(kid) for kid in ring.key_ids()
                        if kid not in retiring or now < retiring[kid]})

    # -- identifying the ticket ----------------------------------------------------------

    def _judge(self, scan: Scan, lane: LaneConfig, now: datetime) -> _Outcome:
        if scan.kind is ScanKind.ID_CARD:
            return self._judge_document(scan, lane, now)
        if scan.kind is ScanKind.RFID:
            uid = normalize_uid(scan.data)
            if not uid:
                return _unknown("not_rfid")
            if facts.blocked(self.conn, "rfid", uid):
                return _Outcome(Reason.BLOCKED, rules.detail("card_blocked"), scan_ref=uid)
            row = facts.read_ticket(self.conn, facts.BY_UID, uid)
            if row is None:
                return _unknown("card_unknown", scan_ref=uid)
            return self._check(facts.from_row(row), scan, lane, now, scan_ref=uid)
        if scan.kind is ScanKind.MANUAL:
            return self._judge_typed(scan, lane, now)
        if scan.kind is not ScanKind.QR:
            return _unknown("not_a_reader_scan")
        return self._judge_code(scan, lane, now)

    def _judge_typed(self, scan: Scan, lane: LaneConfig, now: datetime) -> _Outcome:
        """Text typed by staff: a ticket number where the gate allows it, or a code.

        A ticket number is printed on the ticket and shown in every verdict, so it is never a
        credential on its own: it is looked up only when a named staff member typed it, at a
        gate whose policy admits by number. A signed code typed in full is judged as a code."""
        text = scan.data.strip()
        if len(text) >= codes.MIN_CHARS:
            return self._judge_code(scan, lane, now)
        if not text:
            return _unknown("empty_scan")
        if not (scan.staff or "").strip():
            return _unknown("number_needs_staff")
        if not lane.manual_entry:
            return _unknown("numbers_not_accepted")
        row = facts.read_ticket(self.conn, facts.BY_NUMBER, text)
        if row is None:
            typed = numbers.normalize(text)
            if numbers.looks_like_number(typed) and not numbers.is_number(typed):
                return _unknown("number_mistyped")
            row = facts.read_ticket(self.conn, facts.BY_NUMBER, typed)
        if row is None:
            return _unknown("unknown_number")
        outcome = self._check(facts.from_row(row), scan, lane, now)
        outcome.by_number = True
        return outcome

    def _judge_code(self, scan: Scan, lane: LaneConfig, now: datetime) -> _Outcome:
        text = scan.data.strip()
        if not text:
            return _unknown("empty_scan")
        if len(text) > MAX_CODE_CHARS:
            return _unknown("code_too_long")
        if len(text) < codes.MIN_CHARS:
            # too short for a code; a ticket number, whatever read it, proves nothing
            return _unknown("not_a_code")
        # The allowlist carries the fingerprint of each code the hub issued: a scan that matches
        # one is that code, and needs no parsing or signature check. Anything else must prove
        # itself by its signature (a ticket sold after the last sync, a forgery, a stale code).
        row = facts.read_ticket(self.conn, facts.BY_DIGEST, codes.digest(text))
        if row is not None:
            return self._check(facts.from_row(row), scan, lane, now)
        try:
            payload = codes.verify(codes.read(text), self._keyring_for(now))
            row = facts.read_ticket(self.conn, facts.BY_ID, payload.ticket_id)
        except codes.CodeError as e:
            reason, why = rules.code_error(e.code)
            return _Outcome(reason, why)
        if row.number is None or payload.serial > row.serial:
            # Sold (or re-issued) after this appliance last synced: the signature vouches for it.
            return self._check(facts.from_payload(payload, row), scan, lane, now)
        ticket = facts.from_row(row)
        ticket.serial = payload.serial
        return self._check(ticket, scan, lane, now)

    def _judge_document(self, scan: Scan, lane: LaneConfig, now: datetime) -> _Outcome:
        doc = scan.document
        if doc is None:
            return _unknown("no_document")
        try:
            doc_hash = self.vault.doc_hash(doc.doc_type, doc.number)
        except DocumentError as e:
            return _unknown("unreadable_document", scan_ref="doc:invalid", code=e.code)
        ref = f"doc:{doc_hash}"
        if lane.realname_mode != "id_only":
            return _unknown("id_alone_refused", scan_ref=ref)
        if facts.blocked(self.conn, "holder", doc_hash):
            return _Outcome(Reason.BLOCKED, rules.detail("holder_blocked"), scan_ref=ref)
        rows = facts.read_tickets(self.conn, facts.BY_HOLDER, doc_hash)
        if not rows:
            return _unknown("no_ticket_for_document", scan_ref=ref)
        best: _Outcome | None = None
        for row in rows:
            outcome = self._check(facts.from_row(row), scan, lane, now, scan_ref=ref,
                                  identified=True)
            if outcome.reason is Reason.OK:
                return outcome
            if best is None or outcome.stage > best.stage:
                best = outcome
        return best

    # -- asking the rules ----------------------------------------------------------------

    def _check(self, t: TicketFacts, scan: Scan, lane: LaneConfig, now: datetime,
               scan_ref: str = "", identified: bool = False) -> _Outcome:
        outcome = _Outcome(Reason.OK, ticket=t, scan_ref=scan_ref)
        try:
            outcome.session = self._rules(t, scan, lane, now, identified, outcome)
        except Refused as r:
            outcome.reason, outcome.why, outcome.stage = r.reason, r.detail, r.stage
        return outcome

    def _rules(self, t: TicketFacts, scan: Scan, lane: LaneConfig, now: datetime,
               identified: bool, outcome: _Outcome) -> Session | None:
        """The stages of :mod:`edge.rules` in order, with the facts each needs looked up
        only when it is reached."""
        rules.check_standing(t)
        session = rules.session_for(t, lane, self._sessions(), now)
        outcome.session = session  # a refusal from here on is recorded with its session too
        rules.check_validity(t, lane, now)
        if lane.direction == "out":
            return session  # leaving is always allowed to a valid ticket, and recorded
        if not rules.zone_admitted(t, lane):
            raise rules.wrong_gate(t.zone or facts.zone_name(self.conn, t.zone_id),
                                   facts.gates_admitting(self.conn, t.zone_id))
        if t.realname:
            rules.check_realname(t, lane, scan.document, identified, self.vault.doc_hash,
                                 DocumentError)
        if rules.usage_limited(t):
            self._check_usage(t, lane, now, session, outcome)
        return session

    def _check_usage(self, t: TicketFacts, lane: LaneConfig, now: datetime,
                     session: Session | None, outcome: _Outcome) -> None:
        day = rules.day(now, lane.tz)
        conn = self.conn
        if t.daily_limit:
            try:
                rules.check_daily_limit(t, facts.admitted_on(conn, t.id, day))
            except Refused:
                outcome.first_entry_at = facts.first_entry(conn, t.id, "day = ?", day)
                raise
        where, arg = facts.movements(session, day)
        try:
            rules.check_reentry(t, lane, facts.last_direction(conn, t.id, where, arg))
        except Refused:
            outcome.first_entry_at = facts.first_entry(conn, t.id, where, arg)
            raise


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
