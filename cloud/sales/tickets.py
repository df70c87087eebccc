"""Signing keys, events and sessions, and tickets with signed codes.

Every change an appliance needs (keys, sessions, holders, tickets, revocations) is written to
the change log of each venue it concerns, in the transaction that makes it: a ticket sold and
refunded in one second still reaches the venue as a sale and a revocation, in that order.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from cloud.catalog.tables import events, price_tiers, seats, sessions, venues, zones
from cloud.core.audit import SYSTEM, record
from cloud.core.changes import next_values, record_change, record_changes
from cloud.core.trust import signing_keys
from cloud.fleet.tables import entries
from cloud.inventory import seats as inventory
from cloud.sales.tables import holders, tickets
from sync import codes, numbers
from sync.changes import normalize_uid
from sync.identity import DocumentError, normalize_document
from sync.keys import SigningKey, generate_signing_key
from sync.timeutil import to_iso, utcnow

KINDS = {codes.Kind.SESSION: "session", codes.Kind.SESSIONS: "sessions",
         codes.Kind.VENUES: "venues"}
ROLES = {codes.Role.TICKET: "ticket", codes.Role.STAFF: "staff",
         codes.Role.REGISTERED: "registered"}


class TicketError(ValueError):
    """A sale, key or session request that cannot be carried out; the message says why and
    ``code`` which refusal it is (``refused`` unless a caller needs to tell them apart)."""

    def __init__(self, message: str, code: str = "refused"):
        super().__init__(message)
        self.code = code


MIN_REFUND_REASON, MAX_REFUND_REASON = 4, 200


def _utc(dt: datetime | None) -> datetime | None:
    """Times read back from SQLite come without a zone; they were written in UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def _all_venues(conn: sa.Connection) -> list[int]:
    return [r[0] for r in conn.execute(sa.select(venues.c.id))]


def key_change(row) -> dict:
    change = {"type": "key", "op": "upsert", "key_id": row.key_id, "public_key": row.public_key}
    if row.retired_at is not None:
        change["retired_at"] = to_iso(_utc(row.retired_at))
    return change


# -- signing keys ---------------------------------------------------------------------------


def create_key(conn: sa.Connection, now: datetime | None = None, actor: str = SYSTEM) -> int:
    """A new key, published to every venue; it signs nothing until activated."""
    used = {r[0] for r in conn.execute(sa.select(signing_keys.c.key_id))}
    free = [k for k in range(1, 256) if k not in used]
    if not free:
        raise TicketError("all 255 key ids are in use")
    key = generate_signing_key(free[0])
    pem = key.private_key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode("ascii")
    conn.execute(sa.insert(signing_keys).values(
        key_id=key.key_id, public_key=key.public_key_b64(), private_pem=pem, state="published",
        created_at=now or utcnow()))
    row = conn.execute(sa.select(signing_keys).where(signing_keys.c.key_id == key.key_id)).one()
    for venue_id in _all_venues(conn):
        record_change(conn, venue_id, key_change(row))
    record(conn, actor, "key.create", f"key:{key.key_id}", None, {"state": "published"})
    return key.key_id


def activate_key(conn: sa.Connection, key_id: int, actor: str = SYSTEM,
                 force: bool = False) -> None:
    """Make a published key the one that signs; the previous one stays trusted.

    Refused while an active appliance has not yet reported the key in a heartbeat (unless
    ``force``): an offline venue must be able to check every code sold."""
    from cloud.fleet.appliances import lacking_key

    state = conn.execute(sa.select(signing_keys.c.state)
                         .where(signing_keys.c.key_id == key_id)).scalar()
    if state != "published":
        raise TicketError(f"key {key_id} is {state or 'unknown'}; only a published key can sign")
    lacking = [] if force else lacking_key(conn, key_id)
    if lacking:
        raise TicketError(f"key {key_id}: {len(lacking)} active appliance(s) have not yet "
                          f"reported having it (appliance {lacking[0]} first); activate it "
                          "after they have synced")
    conn.execute(sa.update(signing_keys).where(signing_keys.c.state == "active")
                 .values(state="published"))
    conn.execute(sa.update(signing_keys).where(signing_keys.c.key_id == key_id)
                 .values(state="active"))
    record(conn, actor, "key.activate", f"key:{key_id}", {"state": "published"},
           {"state": "active"})


def retire_key(conn: sa.Connection, key_id: int, now: datetime | None = None,
               actor: str = SYSTEM) -> None:
    """Stop trusting a key: appliances refuse codes signed with it that their allowlist does not
    list. The active key cannot be retired; activate its successor first."""
    state = conn.execute(sa.select(signing_keys.c.state)
                         .where(signing_keys.c.key_id == key_id)).scalar()
    if state is None:
        raise TicketError(f"no key {key_id}")
    if state == "active":
        raise TicketError(f"key {key_id} is the active key; activate another one first")
    conn.execute(sa.update(signing_keys).where(signing_keys.c.key_id == key_id)
                 .values(state="retired", retired_at=now or utcnow()))
    row = conn.execute(sa.select(signing_keys).where(signing_keys.c.key_id == key_id)).one()
    for venue_id in _all_venues(conn):
        record_change(conn, venue_id, key_change(row))
    record(conn, actor, "key.retire", f"key:{key_id}", {"state": state}, {"state": "retired"})


def active_key(conn: sa.Connection) -> SigningKey:
    row = conn.execute(sa.select(signing_keys.c.key_id, signing_keys.c.private_pem)
                       .where(signing_keys.c.state == "active")).first()
    if row is None:
        raise TicketError("no active signing key: create one and activate it")
    private = serialization.load_pem_private_key(row.private_pem.encode("ascii"), password=None)
    return SigningKey(row.key_id, private)


# -- events and sessions --------------------------------------------------------------------


def create_event(conn: sa.Connection, code: str, name: str, actor: str = SYSTEM) -> int:
    if conn.execute(sa.select(events.c.id).where(events.c.code == code)).first():
        raise TicketError(f"an event with code {code!r} exists already")
    event_id = conn.execute(sa.insert(events).values(code=code, name=name)
                            ).inserted_primary_key[0]
    record(conn, actor, "event.create", f"event:{event_id}", None, {"code": code, "name": name})
    return event_id


def create_session(conn: sa.Connection, event_id: int, venue_id: int, name: str,
                   starts_at: datetime, ends_at: datetime,
                   gates_open_at: datetime | None = None, actor: str = SYSTEM) -> int:
    if ends_at <= starts_at:
        raise TicketError("a session must end after it starts")
    if gates_open_at is not None and gates_open_at > starts_at:
        raise TicketError("gates must open before the session starts")
    session_id = conn.execute(sa.insert(sessions).values(
        event_id=event_id, venue_id=venue_id, name=name, starts_at=starts_at, ends_at=ends_at,
        gates_open_at=gates_open_at)).inserted_primary_key[0]
    inventory.copy_venue_map(conn, session_id, venue_id)
    change = {"type": "session", "op": "upsert", "id": session_id, "venue_id": venue_id,
              "name": name, "starts_at": to_iso(starts_at), "ends_at": to_iso(ends_at)}
    if gates_open_at is not None:
        change["gates_open_at"] = to_iso(gates_open_at)
    record_change(conn, venue_id, change)
    record(conn, actor, "session.create", f"session:{session_id}", None,
           {"venue_id": venue_id, "name": name, "starts_at": to_iso(starts_at)})
    return session_id


def add_price_tier(conn: sa.Connection, session_id: int, code: str, name: str, amount: int,
                   currency: str = "CNY", actor: str = SYSTEM) -> int:
    """A price for a session, as an integer amount in the minor unit (fen for CNY)."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise TicketError("a price is a whole, non-negative number of fen (cents)")
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise TicketError("currency is a three-letter ISO 4217 code such as CNY")
    if conn.execute(sa.select(price_tiers.c.id).where(price_tiers.c.session_id == session_id,
                                                      price_tiers.c.code == code)).first():
        raise TicketError(f"this session has a price tier {code!r} already")
    tier_id = conn.execute(sa.insert(price_tiers).values(
        session_id=session_id, code=code, name=name, amount=amount, currency=currency)
    ).inserted_primary_key[0]
    record(conn, actor, "price_tier.create", f"price_tier:{tier_id}", None,
           {"session_id": session_id, "code": code, "amount": amount, "currency": currency})
    return tier_id


# -- tickets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    id: int
    number: str
    code: str


@dataclass(frozen=True)
class TicketSpec:
    """One ticket to issue. ``holder`` is (name, document type, number) for a real-name one."""

    session_id: int | None = None
    seat_id: int | None = None
    zone_id: int = 0
    kind: codes.Kind = codes.Kind.SESSION
    scope: tuple[int, ...] = ()
    role: codes.Role = codes.Role.TICKET
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    daily_limit: int = 0
    holder: tuple[str, str, str] | None = None
    rfid_uid: str | None = None
    customer: str | None = None  # may buy seats reserved for this name
    price_tier_id: int | None = None


def issue_ticket(conn: sa.Connection, now: datetime | None = None, actor: str = SYSTEM,
                 **spec) -> Issued:
    """Issue one ticket (see :func:`issue_tickets`)."""
    return issue_tickets(conn, [TicketSpec(**spec)], now, actor)[0]


def issue_tickets(conn: sa.Connection, specs: list[TicketSpec],
                  now: datetime | None = None, actor: str = SYSTEM) -> list[Issued]:
    """Issue tickets with signed codes and send each to every venue it admits to, in the
    caller's transaction. Statements are per batch, not per ticket: a sale of one seat and a
    load of 100,000 take the same path."""
    now = now or utcnow()
    key = active_key(conn)
    seat_ids = {s.seat_id for s in specs if s.seat_id is not None}
    seat_rows = {r.id: r for r in conn.execute(sa.select(seats).where(seats.c.id.in_(seat_ids)))
                 } if seat_ids else {}
    scopes = [(s.session_id,) if s.kind is codes.Kind.SESSION else tuple(sorted(set(s.scope)))
              for s in specs]
    session_ids = {sid for spec, sc in zip(specs, scopes, strict=True)
                   if spec.kind is not codes.Kind.VENUES for sid in sc}
    session_venue = dict(conn.execute(sa.select(sessions.c.id, sessions.c.venue_id)
                                      .where(sessions.c.id.in_(session_ids))).all())
    holder_rows = []
    for spec, scope in zip(specs, scopes, strict=True):
        if spec.kind is codes.Kind.SESSION and spec.session_id is None:
            raise TicketError("a session ticket needs a session")
        if spec.kind is not codes.Kind.VENUES and any(sid not in session_venue for sid in scope):
            raise TicketError(f"unknown session in {list(scope)}")
        if spec.seat_id is not None:
            seat = seat_rows.get(spec.seat_id)
            if seat is None:
                raise TicketError(f"no seat {spec.seat_id}")
            if seat.removed or seat.damaged:
                raise TicketError(f"seat {seat.level}-{seat.row}-{seat.number} cannot be sold")
        if spec.holder is not None:
            name, doc_type, number = spec.holder
            try:
                number = normalize_document(doc_type, number)
            except DocumentError as e:
                raise TicketError(str(e)) from None
            holder_rows.append({"name": name, "doc_type": doc_type, "doc_number": number})
    # claim the seats in seat order, so that two batches never wait on each other in a circle
    # (a pass with a fixed seat holds that seat in every one of its sessions)
    claims = [(seat_session, spec.seat_id, spec.customer)
              for spec, scope in zip(specs, scopes, strict=True)
              if spec.seat_id is not None and spec.kind is not codes.Kind.VENUES
              for seat_session in scope]
    for seat_session, seat_id, customer in sorted(claims, key=lambda c: (c[1], c[0])):
        try:
            inventory.claim(conn, seat_session, seat_id, customer, now)
        except inventory.InventoryError as e:
            raise TicketError(str(e)) from None
    tier_ids = {s.price_tier_id for s in specs if s.price_tier_id is not None}
    tiers = {r.id: r for r in conn.execute(sa.select(price_tiers)
                                           .where(price_tiers.c.id.in_(tier_ids)))}
    for spec in specs:
        tier = tiers.get(spec.price_tier_id)
        if spec.price_tier_id is not None and (
                tier is None or spec.kind is not codes.Kind.SESSION
                or tier.session_id != spec.session_id):
            raise TicketError(f"price tier {spec.price_tier_id} is not one of this session's")
    holder_ids = iter(conn.execute(
        sa.insert(holders).returning(holders.c.id, sort_by_parameter_order=True), holder_rows
    ).scalars().all() if holder_rows else [])
    holder_rows_iter = iter(holder_rows)

    issued, ticket_rows, changes = [], [], []
    fresh_numbers = iter(new_numbers(conn, len(specs)))
    for ticket_id, spec, scope in zip(next_values(conn, "ticket", len(specs)), specs, scopes,
                                      strict=True):
        seat = seat_rows.get(spec.seat_id) if spec.seat_id is not None else None
        zone_id = seat.zone_id if seat is not None else spec.zone_id
        seat_label = f"{seat.level}-{seat.row}-{seat.number}" if seat is not None else None
        venue_ids = (sorted(scope) if spec.kind is codes.Kind.VENUES
                     else sorted({session_venue[sid] for sid in scope}))
        payload = codes.TicketPayload(
            ticket_id=ticket_id, kind=spec.kind, scope=scope, role=spec.role, zone=zone_id,
            seat=spec.seat_id, valid_from=spec.valid_from, valid_until=spec.valid_until,
            daily_limit=spec.daily_limit, realname=spec.holder is not None)
        try:
            code = codes.encode(payload, key)
        except codes.OutOfRange as e:
            raise TicketError(f"cannot issue this ticket: {e}") from None
        number = next(fresh_numbers)
        holder_id = holder_change = None
        if spec.holder is not None:
            holder_id, h = next(holder_ids), next(holder_rows_iter)
            holder_change = {"type": "holder", "op": "upsert", "id": holder_id, **h}
        ticket_rows.append({
            "id": ticket_id, "number": number, "kind": KINDS[spec.kind], "role": ROLES[spec.role],
            "session_id": spec.session_id if spec.kind is codes.Kind.SESSION else None,
            "scope": list(scope), "venues": venue_ids, "zone_id": zone_id,
            "seat_id": spec.seat_id, "valid_from": spec.valid_from,
            "valid_until": spec.valid_until, "daily_limit": spec.daily_limit, "serial": 0,
            "key_id": key.key_id, "code": code, "state": "issued", "rfid_uid": spec.rfid_uid,
            "holder_id": holder_id, "issued_at": now, "price_tier_id": spec.price_tier_id,
            "amount": tiers[spec.price_tier_id].amount if spec.price_tier_id else 0,
            "currency": tiers[spec.price_tier_id].currency if spec.price_tier_id else "CNY"})
        change = ticket_change(ticket_rows[-1], seat_label)
        for venue_id in venue_ids:
            if holder_change:
                changes.append((venue_id, holder_change))
            changes.append((venue_id, change))
        issued.append(Issued(ticket_id, number, code))
    try:
        conn.execute(sa.insert(tickets), ticket_rows)
    except sa.exc.IntegrityError:
        raise TicketError("a seat already has a live ticket for this session") from None
    record_changes(conn, changes, now)
    record(conn, actor, "ticket.issue", f"tickets:{issued[0].id}..{issued[-1].id}",
           None, {"count": len(issued), "first": issued[0].id, "last": issued[-1].id})
    return issued


NUMBER_LOOKUP_CHUNK = 1000


def new_numbers(conn: sa.Connection, count: int) -> list[str]:
    """``count`` random ticket numbers (``sync/numbers.py``), none of them issued before and
    no two alike. A number says nothing about its ticket, its sale or its neighbours. Numbers
    already taken are drawn again (at 50 random bits, about once in a billion sales of a
    million-ticket hub); the unique index on ``tickets.number`` stands behind this check."""
    chosen: set[str] = set()
    while len(chosen) < count:
        fresh = {numbers.new_number() for _ in range(count - len(chosen))} - chosen
        todo = sorted(fresh)
        for i in range(0, len(todo), NUMBER_LOOKUP_CHUNK):
            fresh -= set(conn.execute(sa.select(tickets.c.number).where(
                tickets.c.number.in_(todo[i:i + NUMBER_LOOKUP_CHUNK]))).scalars())
        chosen |= fresh
    return list(chosen)


def ticket_change(t: Any, seat_label: str | None) -> dict:
    """The allowlist record of a ticket, from its row (a mapping or a result row)."""
    t = t._mapping if hasattr(t, "_mapping") else t
    change = {"type": "ticket", "op": "upsert", "id": t["id"], "number": t["number"],
              "kind": t["kind"], "role": t["role"], "scope": list(t["scope"]),
              "zone_id": t["zone_id"] or 0, "seat_id": t["seat_id"], "seat": seat_label,
              "daily_limit": t["daily_limit"], "realname": t["holder_id"] is not None,
              "state": t["state"], "code_digest": codes.digest(t["code"]),
              "rfid_uid": t["rfid_uid"], "holder_id": t["holder_id"]}
    if t["valid_from"] is not None:
        change.update(valid_from=to_iso(_utc(t["valid_from"])),
                      valid_until=to_iso(_utc(t["valid_until"])))
    return change


def admissions(conn: sa.Connection, ticket_id: int) -> int:
    """How many times the appliances report this ticket admitted someone (pushed entries)."""
    return conn.execute(sa.select(sa.func.count()).select_from(entries).where(
        entries.c.ticket_id == ticket_id, entries.c.admitted.is_(True))).scalar_one()


def revoke_ticket(conn: sa.Connection, ticket_id: int, state: str = "refunded",
                  now: datetime | None = None, actor: str = SYSTEM, *,
                  supervisor: bool = False, reason: str = "") -> None:
    """Void or refund a ticket: its code stops opening gates at every venue it admitted to.

    A refund of a ticket that has already admitted someone (as the appliances reported) gives
    money back for a visit that took place: it is refused (``admitted_needs_supervisor``)
    unless a supervisor confirms it (``supervisor``) with a ``reason`` of 4 to 200 characters
    (``reason_required``), which the audit record keeps with the number of admissions."""
    if state not in ("void", "refunded"):
        raise TicketError(f"a ticket is revoked as void or refunded, not {state!r}")
    row = conn.execute(sa.select(tickets.c.venues, tickets.c.state, tickets.c.kind,
                                 tickets.c.scope, tickets.c.seat_id)
                       .where(tickets.c.id == ticket_id).with_for_update()).first()
    if row is None:
        raise TicketError(f"no ticket {ticket_id}", "not_found")
    if row.state != "issued":
        raise TicketError(f"ticket {ticket_id} is already {row.state}", "not_live")
    after: dict[str, Any] = {"state": state}
    admitted = admissions(conn, ticket_id) if state == "refunded" else 0
    if admitted:
        if not supervisor:
            raise TicketError(f"ticket {ticket_id} has admitted someone ({admitted} "
                              "admissions): only a supervisor may refund it, with a reason",
                              "admitted_needs_supervisor")
        why = " ".join(reason.split())
        if not MIN_REFUND_REASON <= len(why) <= MAX_REFUND_REASON:
            raise TicketError(f"say why a ticket that has admitted someone is refunded "
                              f"({MIN_REFUND_REASON} to {MAX_REFUND_REASON} characters)",
                              "reason_required")
        after.update(admissions=admitted, reason=why)
    conn.execute(sa.update(tickets).where(tickets.c.id == ticket_id).values(state=state))
    record(conn, actor, f"ticket.{'void' if state == 'void' else 'refund'}",
           f"ticket:{ticket_id}", {"state": "issued"}, after)
    if row.seat_id is not None and row.kind != "venues":
        for seat_session in row.scope:
            inventory.release(conn, seat_session, row.seat_id)
    for venue_id in row.venues:
        record_change(conn, venue_id, {"type": "revocation", "op": "upsert",
                                       "ticket_id": ticket_id, "reason": state,
                                       "revoked_at": to_iso(now or utcnow())})


def zone_ids(conn: sa.Connection, venue_id: int) -> dict[str, int]:
    return dict(conn.execute(sa.select(zones.c.code, zones.c.id)
                             .where(zones.c.venue_id == venue_id)).all())


@dataclass
class RfidImport:
    assigned: int = 0
    errors: list[str] = field(default_factory=list)


def import_rfid_csv(conn: sa.Connection, text: str, actor: str) -> RfidImport:
    """Chip UIDs from the printing house (CSV: ticket_number, rfid_uid). Every rejected row is
    reported with its line and why; the UIDs are assigned only if there are none."""
    report = RfidImport()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in next(reader, [])]
    if header != ["ticket_number", "rfid_uid"]:
        report.errors.append("line 1: the header must be ticket_number,rfid_uid")
        return report
    wanted: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != 2:
            report.errors.append(f"line {line}: expected 2 fields, found {len(row)}")
            continue
        number, uid = row[0].strip(), normalize_uid(row[1])
        if not uid:
            report.errors.append(f"line {line}: rfid_uid {row[1].strip()!r} is not 4 to 10 "
                                 "bytes of hex")
        elif uid in first_line:
            report.errors.append(f"line {line}: rfid_uid {uid} is also on line "
                                 f"{first_line[uid]}")
        elif number in wanted:
            report.errors.append(f"line {line}: ticket {number} appears twice")
        else:
            wanted[number], first_line[uid] = uid, line
    found = {r.number: r for r in conn.execute(
        sa.select(tickets).where(tickets.c.number.in_(list(wanted))))} if wanted else {}
    taken = dict(conn.execute(sa.select(tickets.c.rfid_uid, tickets.c.number)
                              .where(tickets.c.rfid_uid.in_(list(wanted.values())))).all()
                 ) if wanted else {}
    for number, uid in wanted.items():
        line = first_line[uid]
        t = found.get(number)
        if t is None:
            report.errors.append(f"line {line}: no ticket {number}")
        elif t.state != "issued":
            report.errors.append(f"line {line}: ticket {number} is {t.state}")
        elif taken.get(uid, number) != number:
            report.errors.append(f"line {line}: rfid_uid {uid} already belongs to ticket "
                                 f"{taken[uid]}")
    if report.errors:
        return report
    changes = []
    for number, uid in wanted.items():
        t = found[number]
        conn.execute(sa.update(tickets).where(tickets.c.id == t.id).values(rfid_uid=uid))
        row = conn.execute(sa.select(tickets).where(tickets.c.id == t.id)).one()
        changes += [(venue_id, ticket_change(row, _seat_label(conn, row.seat_id)))
                    for venue_id in row.venues]
    record_changes(conn, changes)
    report.assigned = len(wanted)
    record(conn, actor, "ticket.rfid_import", f"tickets:{len(wanted)}", None,
           {"assigned": len(wanted)})
    return report


def _seat_label(conn: sa.Connection, seat_id: int | None) -> str | None:
    if seat_id is None:
        return None
    s = conn.execute(sa.select(seats.c.level, seats.c.row, seats.c.number)
                     .where(seats.c.id == seat_id)).one()
    return f"{s.level}-{s.row}-{s.number}"
