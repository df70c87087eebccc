"""Tickets with signed codes: issued (the one writer of ticket rows), revoked, and given the
RFID chips the printing house assigned.

Every change an appliance needs (holders, tickets, revocations) is written to the change log of
each venue it concerns, in the transaction that makes it: a ticket sold and refunded in one
second still reaches the venue as a sale and a revocation, in that order.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import price_tiers, seats, sessions, zones
from cloud.core.audit import SYSTEM, record
from cloud.core.changes import next_values, record_changes
from cloud.core.errors import Code, HubError
from cloud.fleet.keys import active_key
from cloud.fleet.tables import entries
from cloud.inventory import seats as inventory
from cloud.inventory.seats import InventoryError
from cloud.sales.counts import line_given_back
from cloud.sales.holders import Holder, add_holders, holder
from cloud.sales.tables import orders, tickets
from sync import codes, numbers
from sync.changes import normalize_uid
from sync.identity import DocumentError, normalize_document
from sync.keys import SigningKey
from sync.names import KIND_NAMES, ROLE_NAMES
from sync.timeutil import to_iso, utcnow

# What is wrong with a holder's document number (sync/identity.py DocumentError codes), in
# general words; the refusal itself carries the precise sentence.
DOCUMENT_PROBLEMS = {
    "bad_birth_date": "the birth date in the document number is not a real date",
    "bad_length": "the document number has the wrong length",
    "bad_characters": "the document number has characters this document does not use",
    "bad_region": "the document number does not start as this document's do",
    "bad_check_digit": "the check digit does not match: the number is mistyped",
    "unknown_type": "unknown document type",
}


class TicketError(HubError):
    """A sale or a revocation that cannot be carried out."""

    codes = {
        "unknown_session": InventoryError.codes["unknown_session"],
        "session_required": Code(422, "a session ticket needs a session"),
        "not_on_sale": Code(409, "session %(session_id)s is not on sale"),
        "unknown_seat": Code(404, "no seat %(seat_id)s"),
        "seat_not_sellable": Code(409, "seat %(seat)s cannot be sold"),
        "unknown_zone": Code(422, "zone %(zone_id)s is not one of this venue's zones"),
        "tier_required": Code(422, "this session is sold at a price: choose one of its price "
                                   "tiers"),
        "tier_not_for_session": Code(422, "price tier %(tier_id)s is not one of this "
                                          "session's"),
        "holder_name_missing": Code(422, "the holder's name is missing"),
        "holder_name_bad": Code(422, "the holder's name must be up to 200 printable "
                                     "characters"),
        **{f"document_{code}": Code(422, message) for code, message in DOCUMENT_PROBLEMS.items()},
        "code_out_of_range": Code(422, "cannot issue this ticket: %(detail)s"),
        "seat_taken": InventoryError.codes["seat_taken"],
        "bad_revoke_state": Code(422, "a ticket is revoked as void or refunded, not "
                                      "'%(state)s'"),
        "unknown_ticket": Code(404, "no ticket %(ticket)s"),
        "not_live": Code(409, "ticket %(ticket)s is already %(state)s"),
        "refund_by_request": Code(409, "ticket %(ticket)s was paid with order %(order)s: its "
                                       "refund is asked for on the order, so that the money "
                                       "goes back the way it was paid"),
        "admitted_needs_supervisor": Code(
            409, "ticket %(ticket)s has admitted someone (%(admissions)s admissions): only a "
                 "supervisor may refund it, with a reason"),
        "reveal_reason_required": Code(
            422, "say why the holder and code are revealed (%(low)s to %(high)s characters)"),
        "reason_required": Code(
            409, "say why a ticket that has admitted someone is refunded (%(low)s to %(high)s "
                 "characters)"),
    }


MIN_REFUND_REASON, MAX_REFUND_REASON = 4, 200
MIN_REVEAL_REASON, MAX_REVEAL_REASON = 4, 200


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
    # an order's line: its seat is already the order's (held, then sold by the capture), its
    # holder already sealed (holder_id), its price the line's (amount, currency)
    order_id: int | None = None
    holder_id: int | None = None
    amount: int | None = None
    currency: str | None = None


def issue_ticket(conn: sa.Connection, now: datetime | None = None, actor: str = SYSTEM,
                 **spec) -> Issued:
    """Issue one ticket (see :func:`issue_tickets`)."""
    return issue_tickets(conn, [TicketSpec(**spec)], now, actor)[0]


def issue_tickets(conn: sa.Connection, specs: list[TicketSpec],
                  now: datetime | None = None, actor: str = SYSTEM) -> list[Issued]:
    """Issue tickets with signed codes and send each to every venue it admits to, in the
    caller's transaction. Statements are per batch, not per ticket: a sale of one seat and a
    load of 100,000 take the same path. This is the one writer of tickets; a sale goes
    through :func:`cloud.sales.selling.sell`, which checks what a sale needs first."""
    now = now or utcnow()
    key = active_key(conn)
    batch = _Batch.load(conn, specs)
    _claim_seats(conn, batch, now)
    people = _holders_of(conn, specs)
    issued, ticket_rows, changes = [], [], []
    fresh_numbers = iter(new_numbers(conn, len(specs)))
    for ticket_id, spec, scope, person in zip(next_values(conn, "ticket", len(specs)), specs,
                                              batch.scopes, people, strict=True):
        holder_id = holder_change = None
        if person is not None:
            holder_id, h = person
            # clear here; the change log seals it (cloud/core/changes.py)
            holder_change = {"type": "holder", "op": "upsert", "id": holder_id, **h}
        row, seat_label = batch.row(ticket_id, spec, scope, key, next(fresh_numbers), holder_id,
                                    now)
        ticket_rows.append(row)
        change = ticket_change(row, seat_label)
        for venue_id in row["venues"]:
            if holder_change:
                changes.append((venue_id, holder_change))
            changes.append((venue_id, change))
        issued.append(Issued(ticket_id, row["number"], row["code"]))
    try:
        conn.execute(_INSERT_TICKETS, ticket_rows)
    except sa.exc.IntegrityError:
        raise TicketError("seat_taken") from None
    record(conn, actor, "ticket.issue", f"tickets:{issued[0].id}..{issued[-1].id}",
           None, {"count": len(issued), "first": issued[0].id, "last": issued[-1].id})
    # last: the change log's turn for these venues is held from here to the commit
    record_changes(conn, changes, now)
    return issued


def _holders_of(conn: sa.Connection, specs: list[TicketSpec]) -> list[tuple[int, dict] | None]:
    """Each ticket's holder id and clear fields (for the change log), or None: new holders
    sealed and written now, an order line's holder (written with the order) opened."""
    new = [_holder_row(spec) for spec in specs if spec.holder is not None]
    new_ids = iter(zip(add_holders(conn, [(h["name"], h["doc_type"], h["doc_number"])
                                          for h in new]), new, strict=True))
    out = []
    for spec in specs:
        if spec.holder is not None:
            out.append(next(new_ids))
        elif spec.holder_id is not None:
            h = holder(conn, spec.holder_id)
            out.append((h.id, {"name": h.name, "doc_type": h.doc_type,
                               "doc_number": h.doc_number}))
        else:
            out.append(None)
    return out


def _holder_row(spec: TicketSpec) -> dict[str, str]:
    name, doc_type, number = spec.holder
    return {"name": name, "doc_type": doc_type, "doc_number": normal_document(doc_type, number)}


def normal_document(doc_type: str, number: str) -> str:
    """A holder's document number as stored, or a refusal coded by what is wrong with it."""
    try:
        return normalize_document(doc_type, number)
    except DocumentError as e:
        raise TicketError(f"document_{e.code}", str(e)) from None


_IDS = sa.bindparam("ids", expanding=True)
_INSERT_TICKETS = sa.insert(tickets)
_SEATS = sa.select(seats).where(seats.c.id.in_(_IDS))
_VENUES = sa.select(sessions.c.id, sessions.c.venue_id).where(sessions.c.id.in_(_IDS))
_TIERS = sa.select(price_tiers.c.id, price_tiers.c.session_id, price_tiers.c.amount,
                   price_tiers.c.currency).where(price_tiers.c.id.in_(_IDS))


@dataclass
class _Batch:
    """What a batch of tickets refers to, read once and checked: seats, sessions, price tiers."""

    specs: list[TicketSpec]
    scopes: list[tuple[int, ...]]
    seat_rows: dict[int, Any]
    session_venue: dict[int, int]
    tiers: dict[int, Any]

    @classmethod
    def load(cls, conn: sa.Connection, specs: list[TicketSpec]) -> _Batch:
        seat_ids = {s.seat_id for s in specs if s.seat_id is not None}
        seat_rows = {r.id: r for r in conn.execute(
            _SEATS, {"ids": sorted(seat_ids)})} if seat_ids else {}
        scopes = [(s.session_id,) if s.kind is codes.Kind.SESSION
                  else tuple(sorted(set(s.scope))) for s in specs]
        session_ids = {sid for spec, sc in zip(specs, scopes, strict=True)
                       if spec.kind is not codes.Kind.VENUES for sid in sc}
        session_venue = dict(conn.execute(_VENUES, {"ids": sorted(session_ids)}).all()) \
            if session_ids else {}
        tier_ids = {s.price_tier_id for s in specs if s.price_tier_id is not None}
        tiers = {r.id: r for r in conn.execute(
            _TIERS, {"ids": sorted(tier_ids)})} if tier_ids else {}
        batch = cls(specs, scopes, seat_rows, session_venue, tiers)
        batch.check()
        return batch

    def check(self) -> None:
        for spec, scope in zip(self.specs, self.scopes, strict=True):
            if spec.kind is codes.Kind.SESSION and spec.session_id is None:
                raise TicketError("session_required")
            if spec.kind is not codes.Kind.VENUES and any(
                    sid not in self.session_venue for sid in scope):
                raise TicketError("unknown_session", session_id=next(
                    sid for sid in scope if sid not in self.session_venue))
            if spec.seat_id is not None:
                seat = self.seat_rows.get(spec.seat_id)
                if seat is None:
                    raise TicketError("unknown_seat", seat_id=spec.seat_id)
                if seat.removed or seat.damaged:
                    raise TicketError("seat_not_sellable", seat=_label(seat))
            if spec.holder is not None:
                normal_document(spec.holder[1], spec.holder[2])
        for spec in self.specs:
            tier = self.tiers.get(spec.price_tier_id)
            if spec.price_tier_id is not None and (
                    tier is None or spec.kind is not codes.Kind.SESSION
                    or tier.session_id != spec.session_id):
                raise TicketError("tier_not_for_session", tier_id=spec.price_tier_id)

    def row(self, ticket_id: int, spec: TicketSpec, scope: tuple[int, ...], key: SigningKey,
            number: str, holder_id: int | None, now: datetime) -> tuple[dict, str | None]:
        """The ticket's row, its code signed, and its seat's label."""
        seat = self.seat_rows.get(spec.seat_id) if spec.seat_id is not None else None
        zone_id = seat.zone_id if seat is not None else spec.zone_id
        venue_ids = (sorted(scope) if spec.kind is codes.Kind.VENUES
                     else sorted({self.session_venue[sid] for sid in scope}))
        payload = codes.TicketPayload(
            ticket_id=ticket_id, kind=spec.kind, scope=scope, role=spec.role, zone=zone_id,
            seat=spec.seat_id, valid_from=spec.valid_from, valid_until=spec.valid_until,
            daily_limit=spec.daily_limit, realname=spec.holder is not None)
        try:
            code = codes.encode(payload, key)
        except codes.OutOfRange as e:
            raise TicketError("code_out_of_range", detail=str(e)) from None
        tier = self.tiers.get(spec.price_tier_id) if spec.price_tier_id else None
        amount = spec.amount if spec.amount is not None else (
            tier.amount if tier is not None else 0)
        currency = spec.currency or (tier.currency if tier is not None else "CNY")
        return {
            "id": ticket_id, "number": number, "kind": KIND_NAMES[spec.kind], "role": ROLE_NAMES[spec.role],
            "session_id": spec.session_id if spec.kind is codes.Kind.SESSION else None,
            "scope": list(scope), "venues": venue_ids, "zone_id": zone_id,
            "seat_id": spec.seat_id, "valid_from": spec.valid_from,
            "valid_until": spec.valid_until, "daily_limit": spec.daily_limit, "serial": 0,
            "key_id": key.key_id, "code": code, "state": "issued", "rfid_uid": spec.rfid_uid,
            "holder_id": holder_id, "issued_at": now, "price_tier_id": spec.price_tier_id,
            "amount": amount, "currency": currency,
            # named only for an order's ticket, so that a sale outside orders still writes to a
            # database upgraded only as far as an older revision
            **({"order_id": spec.order_id} if spec.order_id is not None else {}),
        }, _label(seat) if seat is not None else None


def _label(seat: Any) -> str:
    return f"{seat.level}-{seat.row}-{seat.number}"


def _claim_seats(conn: sa.Connection, batch: _Batch, now: datetime) -> None:
    """Claim the seats in seat order, so that two batches never wait on each other in a circle
    (a pass with a fixed seat holds that seat in every one of its sessions)."""
    claims = [(seat_session, spec.seat_id, spec.customer)
              for spec, scope in zip(batch.specs, batch.scopes, strict=True)
              if spec.seat_id is not None and spec.kind is not codes.Kind.VENUES
              and spec.order_id is None  # an order's seats are its own already
              for seat_session in scope]
    for seat_session, seat_id, customer in sorted(claims, key=lambda c: (c[1], c[0])):
        inventory.claim(conn, seat_session, seat_id, customer, now)


NUMBER_LOOKUP_CHUNK = 1000


_TAKEN = sa.select(tickets.c.number).where(
    tickets.c.number.in_(sa.bindparam("numbers", expanding=True)))


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
            fresh -= set(conn.execute(
                _TAKEN, {"numbers": todo[i:i + NUMBER_LOOKUP_CHUNK]}).scalars())
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
        change.update(valid_from=to_iso(t["valid_from"]),
                      valid_until=to_iso(t["valid_until"]))
    return change


def admissions(conn: sa.Connection, ticket_id: int) -> int:
    """How many times the appliances report this ticket admitted someone (pushed entries)."""
    return conn.execute(sa.select(sa.func.count()).select_from(entries).where(
        entries.c.ticket_id == ticket_id, entries.c.admitted.is_(True))).scalar_one()


def revoke_ticket(conn: sa.Connection, ticket_id: int, state: str = "refunded",
                  now: datetime | None = None, actor: str = SYSTEM, *,
                  supervisor: bool = False, reason: str = "", give_back: bool = True) -> None:
    """Void or refund a ticket: its code stops opening gates at every venue it admitted to.
    Its seat and its order line's share go back on sale at once, unless ``give_back`` is
    false: a refund approved through a request gives them back only when its money has gone
    back (:func:`give_back_ticket`, cloud/sales/refunds.py).

    A refund of a ticket that has already admitted someone (as the appliances reported) gives
    money back for a visit that took place: it is refused (``admitted_needs_supervisor``)
    unless a supervisor confirms it (``supervisor``) with a ``reason`` of 4 to 200 characters
    (``reason_required``), which the audit record keeps with the number of admissions."""
    if state not in ("void", "refunded"):
        raise TicketError("bad_revoke_state", state=state)
    row = conn.execute(sa.select(tickets.c.venues, tickets.c.state, tickets.c.kind,
                                 tickets.c.scope, tickets.c.seat_id)
                       .where(tickets.c.id == ticket_id).with_for_update()).first()
    if row is None:
        raise TicketError("unknown_ticket", ticket=ticket_id)
    if row.state != "issued":
        raise TicketError("not_live", ticket=ticket_id, state=row.state)
    after: dict[str, Any] = {"state": state}
    admitted = admissions(conn, ticket_id) if state == "refunded" else 0
    if admitted:
        if not supervisor:
            raise TicketError("admitted_needs_supervisor", ticket=ticket_id,
                              admissions=admitted)
        why = " ".join(reason.split())
        if not MIN_REFUND_REASON <= len(why) <= MAX_REFUND_REASON:
            raise TicketError("reason_required", low=MIN_REFUND_REASON,
                              high=MAX_REFUND_REASON)
        after.update(admissions=admitted, reason=why)
    conn.execute(sa.update(tickets).where(tickets.c.id == ticket_id).values(state=state))
    record(conn, actor, f"ticket.{'void' if state == 'void' else 'refund'}",
           f"ticket:{ticket_id}", {"state": "issued"}, after)
    if give_back:
        _give_back(conn, row, ticket_id, refunded=state == "refunded")
    revoked = {"type": "revocation", "op": "upsert", "ticket_id": ticket_id, "reason": state,
               "revoked_at": to_iso(now or utcnow())}
    record_changes(conn, [(venue_id, revoked) for venue_id in sorted(row.venues)])


def refundable_alone(conn: sa.Connection, ticket_id: int, number: str) -> None:
    """Refuse a refund of a ticket by itself (a clerk's "refund" of the ticket) when the
    ticket was paid through an order (``refund_by_request``): marking it refunded would move
    no money back; its refund is a request on the order (cloud/sales/refunds.py), approved by
    a second person and paid back through the order's payment. A ticket issued outside any
    order (its money, if any, taken by hand) is refunded by itself as before."""
    order = paid_order_of(conn, ticket_id)
    if order is not None:
        raise TicketError("refund_by_request", ticket=number, order=order)


def paid_order_of(conn: sa.Connection, ticket_id: int) -> str | None:
    """The number of the order through which the ticket was paid, if it was."""
    return conn.execute(sa.select(orders.c.number)
                        .join(tickets, tickets.c.order_id == orders.c.id)
                        .where(tickets.c.id == ticket_id,
                               orders.c.payment_provider.is_not(None))).scalar()


def _give_back(conn: sa.Connection, row: Any, ticket_id: int, refunded: bool) -> None:
    if row.seat_id is not None and row.kind != "venues":
        for seat_session in row.scope:
            inventory.release(conn, seat_session, row.seat_id)
    line_given_back(conn, ticket_id, refunded=refunded)


def give_back_ticket(conn: sa.Connection, ticket_id: int) -> None:
    """A refunded ticket whose money has gone back: its seat returns to sale and its order
    line stops counting (the order becomes partially refunded or refunded)."""
    row = conn.execute(sa.select(tickets.c.state, tickets.c.kind, tickets.c.scope,
                                 tickets.c.seat_id).where(tickets.c.id == ticket_id)).one()
    if row.state != "refunded":
        raise TicketError("not_live", ticket=ticket_id, state=row.state)
    _give_back(conn, row, ticket_id, refunded=True)


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


@dataclass(frozen=True)
class Revealed:
    """A ticket's holder in full and its code, for one reveal."""

    number: str
    holder: Holder | None
    code: str


def reveal_ticket(conn: sa.Connection, number: str, actor: str, reason: str) -> Revealed:
    """A ticket's holder (name and document number in full) and its code, for a customer
    service case: only with a reason, and audited (``ticket.reveal``: who, when, why — never
    what was shown) in the caller's transaction. Which roles may is the caller's to check."""
    reason = (reason or "").strip()
    if not MIN_REVEAL_REASON <= len(reason) <= MAX_REVEAL_REASON:
        raise TicketError("reveal_reason_required", low=MIN_REVEAL_REASON,
                          high=MAX_REVEAL_REASON)
    t = conn.execute(sa.select(tickets.c.id, tickets.c.code, tickets.c.holder_id)
                     .where(tickets.c.number == number)).first()
    if t is None:
        raise TicketError("unknown_ticket", ticket=number)
    record(conn, actor, "ticket.reveal", f"ticket:{t.id}", None,
           {"reason": reason, "holder": t.holder_id is not None, "code": True})
    return Revealed(number, holder(conn, t.holder_id), t.code)
