"""Handheld scanners: pairing, tokens, idempotent scans, offline batches and heartbeats.

A handheld (a PDA with a scanner, or a phone running the handheld page) is a device of kind
``handheld`` in the ``devices`` table. It joins with a one-time pairing code that an admin
created on the appliance's page, and from then on proves itself with a bearer token. Only the
hashes of codes and tokens are stored.

Every scan a handheld sends carries an id the handheld chose (``client_scan_id``), its own:
another handheld's scan with the same id is another scan. The first
time an id arrives the scan is decided by the engine, and the id is written with the entry in
the same transaction; every later arrival of the id returns the verdict of that first decision
and decides nothing. A handheld can therefore resend whatever it is unsure about, as often as
it likes, and no scan is ever counted twice.

Scans queued while the handheld was out of Wi-Fi arrive in a batch, in the order they were
made, each with the handheld's own clock time. The batch is checked whole before anything is
decided: one malformed item refuses the batch with every bad item named, and nothing in it is
decided, so nothing is lost and the handheld can resend the good items.

These are plain functions over a connection; the web blueprint only translates HTTP.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge import audit
from edge.db import immediate
from edge.engine import (
    Decision,
    Engine,
    GroupScan,
    IdDocument,
    Lateness,
    Scan,
    ScanKind,
    UnknownLane,
)
from edge.group_commit import GroupCommit
from edge.holders import DOC_TYPES, DocumentError
from edge.reasons import Reason, colour, words
from sync.timeutil import from_iso, to_iso, utcnow

log = logging.getLogger(__name__)

DEVICE_KIND = "handheld"
PAIRING_TTL = timedelta(minutes=10)
MAX_PAIRING_TTL = timedelta(hours=24)
# An unambiguous alphabet (no 0/O, 1/I/L) of 32 letters and digits: 8 of them are 40 bits,
# far beyond what can be tried against the pairing endpoint before a code expires.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
# Pairing attempts: at most this many failed ones per client address, and in all, within
# PAIR_WINDOW; more are answered 429 with Retry-After
PAIR_WINDOW = timedelta(minutes=1)
PAIR_FAILURES_PER_CLIENT = 5
PAIR_FAILURES_OVERALL = 30
MAX_BATCH = 500
MAX_NAME = 64
MAX_CLIENT_SCAN_ID = 64
MAX_DATA = 2048
MAX_APP_VERSION = 64
# qr and rfid are what the handheld's camera or scanner read, judged as a code or a card only;
# manual is a ticket number typed on the handheld, admitted only where the gate's policy allows
# and recorded with the handheld's name (a handheld has no staff sign-in of its own)
SCAN_KINDS = (ScanKind.QR, ScanKind.RFID, ScanKind.MANUAL)
_CLIENT_SCAN_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")


class HandheldError(Exception):
    """A refused request, with a fixed ``code``; ``items`` names the bad items of a batch."""

    def __init__(self, code: str, message: str, items: list[dict] | None = None):
        super().__init__(message)
        self.code, self.message, self.items = code, message, items


@dataclass(frozen=True)
class Pairing:
    code: str  # shown once, as ``ABCD-EFGH``
    name: str
    lanes: tuple[str, ...]
    expires_at: datetime


@dataclass(frozen=True)
class Paired:
    device_id: str
    token: str  # shown once to the handheld
    name: str
    lanes: tuple[str, ...]


@dataclass(frozen=True)
class Handheld:
    """An authenticated handheld. ``lanes`` empty means it may scan for every enabled lane."""

    device_id: str
    name: str
    lanes: tuple[str, ...]


@dataclass(frozen=True)
class ScanRequest:
    client_scan_id: str
    lane: str
    kind: ScanKind
    data: str
    document: IdDocument | None = None
    scanned_at: datetime | None = None  # the handheld's clock


class _AlreadyRecorded(Exception):
    """Another request recorded the same client scan id first: roll this decision back."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def normalize_code(text: str) -> str:
    """A pairing code as typed: case, spaces and dashes do not matter."""
    return re.sub(r"[\s-]", "", text or "").upper()


# -- pairing -------------------------------------------------------------------------------


def create_pairing(conn: sqlite3.Connection, name: str, lanes: list[str] | tuple[str, ...],
                   actor: str, ttl: timedelta = PAIRING_TTL,
                   now: datetime | None = None) -> Pairing:
    """A one-time code for one handheld, valid for ``ttl``; the code itself is not stored."""
    now = now or utcnow()
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise HandheldError("bad_name", f"a handheld needs a name of 1 to {MAX_NAME} characters")
    if not timedelta(minutes=1) <= ttl <= MAX_PAIRING_TTL:
        raise HandheldError("bad_ttl", "a pairing code is valid for 1 minute to 24 hours")
    lanes = tuple(dict.fromkeys(lanes))
    with immediate(conn):
        known = {r[0] for r in conn.execute("SELECT code FROM lanes")}
        unknown = [lane for lane in lanes if lane not in known]
        if unknown:
            raise HandheldError("unknown_lane", f"no such lane: {', '.join(unknown)}")
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        expires = now + ttl
        conn.execute(
            "INSERT INTO handheld_pairings (code_hash, name, lanes, created_at, created_by, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (_hash(code), name, json.dumps(list(lanes)), to_iso(now), actor, to_iso(expires)))
        audit.record(conn, actor, "handheld.pairing_create", name,
                     {"lanes": list(lanes), "expires_at": to_iso(expires)})
    return Pairing(f"{code[:4]}-{code[4:]}", name, lanes, expires)


class TooManyAttempts(HandheldError):
    """Pairing refused for now: too many failed attempts in the window; try after
    ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__("too_many_attempts", message)
        self.retry_after = retry_after


def _claim_attempt(conn: sqlite3.Connection, client: str, now: datetime) -> int:
    """Count this pairing attempt against the limits, or refuse it: at most
    PAIR_FAILURES_PER_CLIENT failed (or unfinished) attempts per client address and
    PAIR_FAILURES_OVERALL in all within PAIR_WINDOW. The counting and the claim are one
    transaction in the shared database, so the web service's workers share the limit."""
    since = to_iso(now - PAIR_WINDOW)
    with immediate(conn):
        conn.execute("DELETE FROM handheld_pair_attempts WHERE at <= ?", (since,))
        for where, args, limit in (
                ("client = ?", (client,), PAIR_FAILURES_PER_CLIENT),
                ("1 = 1", (), PAIR_FAILURES_OVERALL)):
            n, oldest = conn.execute(f"SELECT count(*), min(at) FROM handheld_pair_attempts "
                                     f"WHERE {where}", args).fetchone()
            if n >= limit:
                wait = from_iso(oldest) + PAIR_WINDOW - now
                raise TooManyAttempts("too many wrong pairing codes: wait a minute and try "
                                      "again", max(1, math.ceil(wait.total_seconds())))
        return conn.execute("INSERT INTO handheld_pair_attempts (client, at) VALUES (?, ?)",
                            (client, to_iso(now))).lastrowid


def pair(conn: sqlite3.Connection, code: str, app_version: str = "",
         now: datetime | None = None, client: str = "") -> Paired:
    """Exchange a pairing code for a device token: the code works once, before it expires.

    Attempts are rate-limited per client address and overall (:func:`_claim_attempt`): a
    refused one raises :class:`TooManyAttempts`; a failed one counts for PAIR_WINDOW, a
    successful one not at all."""
    now = now or utcnow()
    attempt = _claim_attempt(conn, client or "-", now)
    paired = _pair(conn, code, app_version, now)
    with immediate(conn):
        conn.execute("DELETE FROM handheld_pair_attempts WHERE id = ?", (attempt,))
    return paired


def _pair(conn: sqlite3.Connection, code: str, app_version: str, now: datetime) -> Paired:
    code = normalize_code(code)
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        raise HandheldError("bad_code", "that is not a pairing code: ask an admin for a new one")
    with immediate(conn):
        row = conn.execute(
            "SELECT name, lanes, expires_at, used_at FROM handheld_pairings WHERE code_hash = ?",
            (_hash(code),)).fetchone()
        if row is None:
            raise HandheldError("bad_code", "unknown pairing code: check it, or ask an admin "
                                "for a new one")
        name, lanes_json, expires_at, used_at = row
        if used_at is not None:
            raise HandheldError("code_used", "this pairing code has been used already: ask an "
                                "admin for a new one")
        if now >= from_iso(expires_at):
            raise HandheldError("code_expired", "this pairing code has expired: ask an admin "
                                "for a new one")
        lanes = tuple(json.loads(lanes_json))
        device_id = f"hh-{secrets.token_hex(6)}"
        token = secrets.token_urlsafe(32)
        conn.execute(
            "INSERT INTO devices (id, kind, name, config, state, state_at) "
            "VALUES (?, ?, ?, ?, 'unknown', ?)",
            (device_id, DEVICE_KIND, name,
             json.dumps({"lanes": list(lanes), "app_version": app_version[:MAX_APP_VERSION]}),
             to_iso(now)))
        conn.execute("INSERT INTO handheld_tokens (token_hash, device_id, created_at) "
                     "VALUES (?, ?, ?)", (_hash(token), device_id, to_iso(now)))
        conn.execute("UPDATE handheld_pairings SET used_at = ?, device_id = ? WHERE code_hash = ?",
                     (to_iso(now), device_id, _hash(code)))
        audit.record(conn, f"device:{device_id}", "handheld.pair", device_id,
                     {"name": name, "lanes": list(lanes)})
    log.info("handheld %s paired as %s", name, device_id)
    return Paired(device_id, token, name, lanes)


def revoke(conn: sqlite3.Connection, device_id: str, actor: str,
           now: datetime | None = None) -> int:
    """Revoke every token of a handheld; returns how many were live. The device row stays,
    with its scans and entries."""
    now = now or utcnow()
    with immediate(conn):
        n = conn.execute("UPDATE handheld_tokens SET revoked_at = ? WHERE device_id = ? "
                         "AND revoked_at IS NULL", (to_iso(now), device_id)).rowcount
        conn.execute("UPDATE devices SET state = 'disabled', state_detail = 'token revoked', "
                     "state_at = ? WHERE id = ? AND kind = ?", (to_iso(now), device_id,
                                                                DEVICE_KIND))
        audit.record(conn, actor, "handheld.revoke", device_id, {"tokens": n})
    return n


def list_handhelds(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every paired handheld with its lanes, token state and last heartbeat (for admins)."""
    rows = conn.execute(
        "SELECT d.id, d.name, d.config, d.enabled, d.state, d.state_at, "
        "EXISTS (SELECT 1 FROM handheld_tokens t WHERE t.device_id = d.id "
        "AND t.revoked_at IS NULL), s.seen_at, s.battery, s.app_version, s.queue_depth, "
        "s.clock_skew_ms FROM devices d LEFT JOIN handheld_status s ON s.device_id = d.id "
        "WHERE d.kind = ? ORDER BY d.name, d.id", (DEVICE_KIND,)).fetchall()
    out = []
    for r in rows:
        try:
            lanes = json.loads(r[2]).get("lanes") or []
        except (ValueError, AttributeError):
            lanes = []
        out.append({"device_id": r[0], "name": r[1], "lanes": lanes, "enabled": bool(r[3]),
                    "state": r[4], "state_at": r[5], "token_live": bool(r[6]),
                    "seen_at": r[7], "battery": r[8], "app_version": r[9],
                    "queue_depth": r[10], "clock_skew_ms": r[11]})
    return out


def authenticate(conn: sqlite3.Connection, token: str | None) -> Handheld:
    """The handheld a bearer token belongs to, if the token is live and the device enabled."""
    if not token:
        raise HandheldError("unauthorized", "a device token is required: pair this handheld")
    row = conn.execute(
        "SELECT d.id, d.name, d.config, d.enabled FROM handheld_tokens t "
        "JOIN devices d ON d.id = t.device_id "
        "WHERE t.token_hash = ? AND t.revoked_at IS NULL AND d.kind = ?",
        (_hash(token), DEVICE_KIND)).fetchone()
    if row is None:
        raise HandheldError("unauthorized", "this device token is not valid (revoked, or never "
                            "issued): pair the handheld again")
    if not row[3]:
        raise HandheldError("device_disabled", "this handheld is disabled on the appliance")
    try:
        lanes = tuple(json.loads(row[2]).get("lanes") or ())
    except (ValueError, AttributeError):
        log.warning("handheld %s: unreadable device config, no lanes allowed", row[0])
        raise HandheldError("device_disabled", "this handheld's configuration is unreadable: "
                            "ask an admin to check it") from None
    return Handheld(row[0], row[1], lanes)


def lanes_for(conn: sqlite3.Connection, handheld: Handheld) -> list[dict[str, Any]]:
    """The enabled lanes this handheld may scan for, with their gate and direction."""
    rows = conn.execute(
        "SELECT l.code, l.name, l.direction, g.code, g.name FROM lanes l "
        "JOIN gates g ON g.id = l.gate_id WHERE l.enabled = 1 ORDER BY l.code").fetchall()
    allowed = set(handheld.lanes)
    return [{"code": r[0], "name": r[1] or r[0], "direction": r[2],
             "gate": {"code": r[3], "name": r[4]}}
            for r in rows if not allowed or r[0] in allowed]


def _check_lane(conn: sqlite3.Connection, handheld: Handheld, lane: str) -> None:
    if handheld.lanes and lane not in handheld.lanes:
        raise HandheldError("lane_not_allowed", f"this handheld may not scan for lane {lane}")
    row = conn.execute("SELECT enabled FROM lanes WHERE code = ?", (lane,)).fetchone()
    if row is None:
        raise HandheldError("unknown_lane", f"no such lane: {lane}")
    if not row[0]:
        raise HandheldError("lane_disabled", f"lane {lane} is disabled")


# -- scans ---------------------------------------------------------------------------------


def parse_scan(obj: Any, need_time: bool = False) -> ScanRequest:
    """A scan from a request body; HandheldError("bad_scan") says which field is wrong."""
    if not isinstance(obj, dict):
        raise HandheldError("bad_scan", "a scan must be a JSON object")
    csid = obj.get("client_scan_id")
    if not isinstance(csid, str) or not _CLIENT_SCAN_ID.fullmatch(csid):
        raise HandheldError("bad_scan", "client_scan_id must be 8 to 64 letters, digits or "
                            "._:- (a UUID is best)")
    lane = obj.get("lane")
    if not isinstance(lane, str) or not 0 < len(lane) <= 32:
        raise HandheldError("bad_scan", "lane must be a lane code")
    kind = obj.get("kind", "qr")
    if kind not in SCAN_KINDS:
        raise HandheldError("bad_scan", f"kind must be one of {', '.join(SCAN_KINDS)}")
    data = obj.get("data")
    if not isinstance(data, str) or len(data) > MAX_DATA:
        raise HandheldError("bad_scan", f"data must be the scanned text, at most {MAX_DATA} "
                            "characters")
    document = None
    doc = obj.get("document")
    if doc is not None:
        if (not isinstance(doc, dict) or doc.get("doc_type") not in DOC_TYPES
                or not isinstance(doc.get("number"), str) or len(doc["number"]) > 64):
            raise HandheldError("bad_scan", "document must be {doc_type, number} with doc_type "
                                f"one of {', '.join(DOC_TYPES)}")
        document = IdDocument(doc["doc_type"], doc["number"])
    scanned_at = None
    raw_at = obj.get("scanned_at")
    if raw_at is not None or need_time:
        scanned_at = _parse_time(raw_at, "scanned_at", "bad_scan")
    return ScanRequest(csid, lane, ScanKind(kind), data, document, scanned_at)


def _parse_time(value: Any, name: str, code: str) -> datetime:
    if not isinstance(value, str):
        raise HandheldError(code, f"{name} must be an ISO 8601 time with a UTC offset")
    try:
        return from_iso(value)
    except ValueError:
        raise HandheldError(code, f"{name} must be an ISO 8601 time with a UTC offset, not "
                            f"{value[:40]!r}") from None


def _fingerprint(engine: Engine, req: ScanRequest) -> str:
    """What makes a resend the same scan. A document enters only as its keyed hash."""
    doc = ""
    if req.document is not None:
        try:
            doc = engine.vault.doc_hash(req.document.doc_type, req.document.number)
        except DocumentError:
            doc = "invalid"
    text = json.dumps([req.lane, str(req.kind), req.data, doc], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verdict_record(d: Decision) -> dict[str, Any]:
    """A decision as kept with its client scan id: language-free, holder masked."""
    t = d.ticket
    h = d.holder_masked
    return {
        "entry_id": d.entry_id, "reason": str(d.reason), "verdict": d.verdict,
        "open_lane": d.open_lane, "detail": d.detail, "detail_code": d.detail_code,
        "detail_params": dict(d.detail_params), "lane": d.lane,
        "direction": d.direction, "at": to_iso(d.at),
        "ticket": None if t is None else {
            "number": t.number, "kind": t.kind, "role": t.role, "zone": t.zone,
            "seat": t.seat, "session": t.session},
        "holder": None if h is None else {"name": h.name, "document": h.document},
        "first_entry_at": to_iso(d.first_entry_at) if d.first_entry_at else None,
        "offline_code": d.offline_code,
    }


def render(record: dict[str, Any], lang: str, client_scan_id: str, duplicate: bool,
           recorded: bool = True) -> dict[str, Any]:
    """The verdict as the API answers it, with the reason in words in ``lang``."""
    reason = Reason(record["reason"])
    return {"client_scan_id": client_scan_id, **record, "words": words(reason, lang),
            "colour": colour(reason), "duplicate": duplicate, "recorded": recorded}


def _prior(conn: sqlite3.Connection, handheld: Handheld,
           client_scan_id: str) -> tuple[str, str] | None:
    """What this handheld's scan of this id got; another handheld's ids are not its own."""
    return conn.execute("SELECT fingerprint, verdict FROM handheld_scans "
                        "WHERE device_id = ? AND client_scan_id = ?",
                        (handheld.device_id, client_scan_id)).fetchone()


def _repeat(prior: tuple[str, str], fingerprint: str, client_scan_id: str) -> dict[str, Any]:
    if prior[0] != fingerprint:
        raise HandheldError("client_scan_id_reused", f"client scan id {client_scan_id} was "
                            "already used for a different scan: give every scan a new id")
    return json.loads(prior[1])


def scan(engine: Engine, handheld: Handheld, req: ScanRequest, lang: str = "en",
         now: datetime | None = None, group: GroupCommit | None = None) -> dict[str, Any]:
    """Decide one scan, once. A resend of the same client scan id returns the first verdict
    (``duplicate: true``) and decides nothing."""
    return _decide(engine, handheld, [(req, now or utcnow())], lang, group, check_lanes=True)[0]


def _decide(engine: Engine, handheld: Handheld, items: list[tuple[ScanRequest, datetime]],
            lang: str, group: GroupCommit | None, check_lanes: bool = False,
            late: Lateness | None = None) -> list[dict[str, Any]]:
    """Each scan at its time, once: resends answered from what was kept, the rest decided
    together, each recorded with its client scan id in the decision's transaction."""
    answers: list[dict[str, Any] | None] = [None] * len(items)
    todo: list[tuple[int, ScanRequest, str]] = []
    jobs: list[GroupScan] = []
    for i, (req, at) in enumerate(items):
        fingerprint = _fingerprint(engine, req)
        prior = _prior(engine.conn, handheld, req.client_scan_id)
        if prior is not None:
            answers[i] = render(_repeat(prior, fingerprint, req.client_scan_id), lang,
                                req.client_scan_id, True)
            continue  # a resend is answered even if its lane was taken from the handheld since
        if check_lanes:
            _check_lane(engine.conn, handheld, req.lane)
        todo.append((i, req, fingerprint))
        jobs.append(GroupScan(
            Scan(req.kind, req.data, device_id=handheld.device_id, document=req.document,
                 staff=handheld.name if req.kind is ScanKind.MANUAL else None),
            req.lane, at, _keeper(handheld, req, fingerprint), late))
    results = group.decide(jobs) if group is not None else engine.decide_all(jobs)
    for (i, req, fingerprint), result in zip(todo, results, strict=True):
        if isinstance(result, _AlreadyRecorded):
            # the same id arrived twice at once and the other request recorded it first
            prior = _prior(engine.conn, handheld, req.client_scan_id)
            answers[i] = render(_repeat(prior, fingerprint, req.client_scan_id), lang,
                                req.client_scan_id, True)
        elif isinstance(result, UnknownLane):  # removed since the lane was checked
            raise HandheldError(result.code, str(result))
        elif isinstance(result, BaseException):
            raise result
        elif result.entry_id is None:  # the database failed: the handheld must send it again
            answers[i] = render(verdict_record(result), lang, req.client_scan_id, False,
                                recorded=False)
        else:
            answers[i] = render(verdict_record(result), lang, req.client_scan_id, False)
    return answers


def _keeper(handheld: Handheld, req: ScanRequest, fingerprint: str):
    def keep(conn: sqlite3.Connection, d: Decision) -> None:
        try:
            conn.execute(
                "INSERT INTO handheld_scans (client_scan_id, device_id, entry_id, fingerprint, "
                "scanned_at, verdict) VALUES (?, ?, ?, ?, ?, ?)",
                (req.client_scan_id, handheld.device_id, d.entry_id, fingerprint,
                 to_iso(req.scanned_at) if req.scanned_at else None,
                 json.dumps(verdict_record(d), ensure_ascii=False)))
        except sqlite3.IntegrityError:
            raise _AlreadyRecorded from None
    return keep


def parse_batch(engine: Engine, handheld: Handheld, body: Any,
                now: datetime | None = None) -> tuple[list[ScanRequest], timedelta]:
    """Check a whole batch before any of it is decided; returns its scans and the handheld's
    clock skew (server time minus handheld time, from ``sent_at``; zero without it)."""
    now = now or utcnow()
    if not isinstance(body, dict) or not isinstance(body.get("scans"), list):
        raise HandheldError("bad_batch", 'a batch is {"sent_at": time, "scans": [scan, ...]}')
    items = body["scans"]
    if len(items) > MAX_BATCH:
        raise HandheldError("batch_too_large", f"a batch holds at most {MAX_BATCH} scans, this "
                            f"one {len(items)}: send the queue in parts, oldest first")
    skew = timedelta()
    if body.get("sent_at") is not None:
        skew = now - _parse_time(body["sent_at"], "sent_at", "bad_batch")
    scans: list[ScanRequest] = []
    bad: list[dict] = []
    seen: dict[str, str] = {}
    for index, obj in enumerate(items):
        csid = obj.get("client_scan_id") if isinstance(obj, dict) else None
        try:
            req = parse_scan(obj, need_time=True)
            fingerprint = _fingerprint(engine, req)
            if seen.setdefault(req.client_scan_id, fingerprint) != fingerprint:
                raise HandheldError("client_scan_id_reused", "the same client scan id twice in "
                                    "this batch for different scans")
            prior = _prior(engine.conn, handheld, req.client_scan_id)
            if prior is not None:
                _repeat(prior, fingerprint, req.client_scan_id)
            else:
                _check_lane(engine.conn, handheld, req.lane)
            scans.append(req)
        except HandheldError as e:
            bad.append({"index": index, "client_scan_id": csid if isinstance(csid, str) else None,
                        "error": e.code, "message": e.message})
    if bad:
        raise HandheldError("bad_batch", f"{len(bad)} of {len(items)} scans are not valid; "
                            "nothing in this batch was decided: resend the others", items=bad)
    return scans, skew


def upload(engine: Engine, handheld: Handheld, body: Any, lang: str = "en",
           now: datetime | None = None, group: GroupCommit | None = None,
           max_age: timedelta | None = None) -> list[dict[str, Any]]:
    """Decide a batch of queued scans in the order given, each at the time it was made (the
    handheld's clock corrected by its skew, never later than now), each idempotent.

    A scan that arrives too late is refused (``EXPIRED``, recorded) instead of admitted: after
    the entry window it counts for closed (the session's, or the ticket's validity), or, with
    ``max_age`` (the ``handheld_offline_max_age_min`` setting), longer than that after it was
    made. Otherwise a ticket scanned offline could be let in hours later on a window long shut."""
    now = now or utcnow()
    scans, skew = parse_batch(engine, handheld, body, now)
    late = Lateness(now, max_age)
    return _decide(engine, handheld, [(req, min(req.scanned_at + skew, now)) for req in scans],
                   lang, group, late=late)


# -- heartbeat -----------------------------------------------------------------------------


def heartbeat(conn: sqlite3.Connection, handheld: Handheld, body: Any,
              now: datetime | None = None) -> dict[str, Any]:
    """Keep what the handheld reports; answer with the server's time and its clock skew
    (handheld minus server, in milliseconds: positive when the handheld is ahead)."""
    now = now or utcnow()
    if not isinstance(body, dict):
        raise HandheldError("bad_heartbeat", "a heartbeat must be a JSON object")
    battery = body.get("battery")
    if battery is not None and (not isinstance(battery, int) or isinstance(battery, bool)
                                or not 0 <= battery <= 100):
        raise HandheldError("bad_heartbeat", "battery must be a percentage from 0 to 100")
    charging = body.get("charging")
    if charging is not None and not isinstance(charging, bool):
        raise HandheldError("bad_heartbeat", "charging must be true or false")
    version = body.get("app_version", "")
    if not isinstance(version, str) or len(version) > MAX_APP_VERSION:
        raise HandheldError("bad_heartbeat", f"app_version must be text of at most "
                            f"{MAX_APP_VERSION} characters")
    depth = body.get("queue_depth", 0)
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise HandheldError("bad_heartbeat", "queue_depth must be a count of queued scans")
    skew_ms = None
    if body.get("clock") is not None:
        clock = _parse_time(body["clock"], "clock", "bad_heartbeat")
        skew_ms = round((clock - now).total_seconds() * 1000)
    detail = f"battery {battery}%" if battery is not None else "battery unknown"
    detail += f", {depth} queued"
    if skew_ms is not None:
        detail += f", clock {skew_ms:+d} ms"
    with immediate(conn):
        conn.execute(
            "INSERT INTO handheld_status (device_id, seen_at, battery, charging, app_version, "
            "queue_depth, clock_skew_ms) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET seen_at = excluded.seen_at, "
            "battery = excluded.battery, charging = excluded.charging, "
            "app_version = excluded.app_version, queue_depth = excluded.queue_depth, "
            "clock_skew_ms = excluded.clock_skew_ms",
            (handheld.device_id, to_iso(now), battery,
             None if charging is None else int(charging), version, depth, skew_ms))
        conn.execute("UPDATE devices SET state = 'up', state_detail = ?, state_at = ? "
                     "WHERE id = ?", (detail, to_iso(now), handheld.device_id))
    return {"server_time": to_iso(now), "clock_skew_ms": skew_ms}
