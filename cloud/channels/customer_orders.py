"""A contract customer's orders: booked by its representatives, paid offline, confirmed by
staff.

- A booking (:func:`book`) is an order on the one order path, sold through the customer's
  channel (cloud/channels/selling.py ``sell_through``): it holds its seats and counts against
  the channel's quotas (the customer's own track, and the contract customers' total) or holds
  nothing, and waits for payment. It may take seats kept for the customer
  (:func:`reserve_seats`).
- The customer pays offline (a bank transfer). A member of staff confirms it
  (:func:`confirm_payment`): the order is captured (paid, its tickets issued:
  cloud/sales/orders.py ``capture``) and the money posted to the ledger, split as any sale's,
  in one transaction; a payment the order cannot take (it was cancelled, or it lapsed and its
  seats went meanwhile) is refused and nothing is written. A paid order is locked: the
  representatives can no longer cancel it.
- The report counts seats per session and tier, reserved (waiting for payment) and paid.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import price_tiers, seats, sessions
from cloud.channels.customers import (
    CustomerError,
    Rep,
    active_customer,
    bad,
    customer,
    customer_channel,
    reservation_name,
)
from cloud.channels.selling import sell_through
from cloud.core.audit import record
from cloud.inventory import seats as inventory
from cloud.inventory.seat_plan import seat_label
from cloud.ledger import chart
from cloud.ledger.journal import Leg
from cloud.ledger.posting import PAYMENT, post_funded
from cloud.sales.holders import holder
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import Captured, OrderCreated, cancel_order, capture, shown_state
from cloud.sales.tables import order_lines, orders
from sync.identity import mask_document, mask_name

# a bank transfer: its own clearing account in the ledger (not the booths' cash drawer)
PROVIDER = "transfer"
PAYMENT_MINUTES = 3 * 24 * 60  # a booking waits three days for the customer's bank transfer
MAX_SEATS = 100
PAGE = 100


@dataclass(frozen=True)
class Booking:
    """What a representative asks for, for one session: chosen seats (``seat_ids``, each
    priced by its category's tier), or ``count`` best-available seats of a zone at a tier
    (``kind`` ``seat``), or ``count`` general-admission places at a tier (``ga``). With
    ``holders`` (name, document type, number), one per ticket."""

    session_id: int
    kind: str = "seat"
    seat_ids: tuple[int, ...] = ()
    zone_id: int = 0
    price_tier_id: int | None = None
    count: int = 0
    holders: tuple[tuple[str, str, str], ...] = ()


def _lines(b: Booking) -> tuple[LineRequest, ...]:
    if b.kind not in ("seat", "ga"):
        raise bad("kind")
    if b.seat_ids:
        if b.kind != "seat" or b.count or len(b.seat_ids) > MAX_SEATS:
            raise bad("seat_ids")
        lines = [LineRequest(kind="seat", seat_id=s) for s in b.seat_ids]
    else:
        if isinstance(b.count, bool) or not isinstance(b.count, int) \
                or not 1 <= b.count <= MAX_SEATS:
            raise bad("count")
        lines = [LineRequest(kind=b.kind, zone_id=b.zone_id, price_tier_id=b.price_tier_id)
                 for _ in range(b.count)]
    if b.holders:
        if len(b.holders) != len(lines):
            raise bad("holders")
        lines = [LineRequest(kind=x.kind, seat_id=x.seat_id, zone_id=x.zone_id,
                             price_tier_id=x.price_tier_id, holder=h)
                 for x, h in zip(lines, b.holders, strict=True)]
    return tuple(lines)


def book(conn: sa.Connection, rep: Rep, booking: Booking, now: datetime) -> OrderCreated:
    """The representative's order, held and waiting for the customer's offline payment; or
    the order path's refusal (``sold_out`` naming the quota that has no room, ``seat_taken``,
    ``not_on_sale``…) having held nothing."""
    c = active_customer(conn, rep.customer_id)
    req = OrderRequest(booking.session_id, _lines(booking), actor=f"customer_rep:{rep.id}",
                       customer=reservation_name(c.code), payment_minutes=PAYMENT_MINUTES)
    created = sell_through(conn, customer_channel(conn, c.id), req, now)
    record(conn, req.actor, "customer.book", f"order:{created.order_id}", None,
           {"customer_id": c.id, "number": created.number, "seats": len(req.lines)})
    return created


def order_of(conn: sa.Connection, customer_id: int, number: str):
    """The customer's order by its number; ``unknown_customer_order`` for another's, exactly
    as for one that does not exist."""
    row = conn.execute(sa.select(orders).where(
        orders.c.number == number,
        orders.c.channel_id == customer_channel(conn, customer_id))).first() \
        if isinstance(number, str) and len(number) <= 20 else None
    if row is None:
        raise CustomerError("unknown_customer_order", number=str(number)[:20], field="number")
    return row


def cancel(conn: sa.Connection, rep: Rep, number: str, now: datetime) -> None:
    """The representative gives back an order not yet paid (its seats and quotas at once);
    a paid order is locked (``customer_order_locked``)."""
    o = order_of(conn, rep.customer_id, number)
    if o.state != "pending_payment":
        raise CustomerError("customer_order_locked", number=o.number, state=o.state,
                            field="number")
    cancel_order(conn, o.id, f"customer_rep:{rep.id}", now)


def confirm_payment(conn: sa.Connection, customer_id: int, number: str, reference: str,
                    actor: str, now: datetime) -> Captured:
    """The customer's offline payment of the whole order, confirmed by staff (``reference``:
    the bank transfer's, for the books): the order paid and its tickets issued, the money
    posted to the ledger. Confirming it again changes nothing. An order that cannot take it
    is ``payment_not_placed`` (with the reason) and nothing is written."""
    customer(conn, customer_id)
    o = order_of(conn, customer_id, number)
    reference = reference.strip() if isinstance(reference, str) else ""
    if not 1 <= len(reference) <= 64 or not reference.isprintable():
        raise bad("reference")
    captured = capture(conn, o.id, o.total, PROVIDER, f"contract-{o.number}", now)
    if captured.refund_needed:
        raise CustomerError("payment_not_placed", number=o.number,
                            reason=captured.reason or o.state, field="number")
    if not captured.duplicate:
        _post(conn, o, reference, actor, now)
        record(conn, actor, "customer.payment_confirm", f"order:{o.id}",
               {"state": o.state}, {"state": "paid", "reference": reference,
                                    "amount": o.total, "tickets": len(captured.tickets)})
    return captured


def _post(conn: sa.Connection, o, reference: str, actor: str, now: datetime) -> None:
    """The payment into the ledger as any payment its order kept: the transfers' clearing
    debited, the split by the rules in force credited; keyed by the order: it posts once."""
    if o.total > 0:
        post_funded(conn, o.id, f"contract_payment:{o.id}", PAYMENT,
                    [Leg(chart.clearing(PROVIDER), o.total, "clearing")], PROVIDER,
                    f"contract-{o.number}", now, actor, memo=f"bank transfer {reference}")


def reserve_seats(conn: sa.Connection, customer_id: int, session_id: int,
                  seat_ids: list[int], until: datetime, actor: str) -> None:
    """Keep seats of a session for the customer until ``until``: only its representatives'
    orders may take them meanwhile (the inventory's reservation, under the customer's
    :func:`~cloud.channels.customers.reservation_name`)."""
    c = customer(conn, customer_id)
    inventory.reserve(conn, session_id, seat_ids, reservation_name(c.code), until, actor)


def orders_of(conn: sa.Connection, customer_id: int, now: datetime,
              limit: int = PAGE) -> list[dict]:
    """The customer's orders, newest first, each with its state as shown (an order past its
    deadline is ``expired``) and its session's name."""
    rows = conn.execute(
        sa.select(orders, sessions.c.name.label("session_name"),
                  sa.select(sa.func.count()).where(order_lines.c.order_id == orders.c.id)
                  .scalar_subquery().label("seats"))
        .outerjoin(sessions, sessions.c.id == orders.c.session_id)
        .where(orders.c.channel_id == customer_channel(conn, customer_id))
        .order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(limit)).all()
    return [{**r._mapping, "shown": shown_state(r, now)} for r in rows]


def order_lines_of(conn: sa.Connection, order_id: int) -> list[dict]:
    """An order's lines with their seat's label, tier's name and holder, masked."""
    rows = conn.execute(
        sa.select(order_lines.c.id, order_lines.c.kind, order_lines.c.amount,
                  order_lines.c.currency, order_lines.c.state, order_lines.c.holder_id,
                  seats.c.level, seats.c.row, seats.c.number,
                  price_tiers.c.name.label("tier"))
        .outerjoin(seats, seats.c.id == order_lines.c.seat_id)
        .outerjoin(price_tiers, price_tiers.c.id == order_lines.c.price_tier_id)
        .where(order_lines.c.order_id == order_id).order_by(order_lines.c.id)).all()
    out = []
    for r in rows:
        h = holder(conn, r.holder_id)
        out.append({"kind": r.kind, "amount": r.amount, "currency": r.currency,
                    "state": r.state, "tier": r.tier,
                    "seat": seat_label(r.level, r.row, r.number) if r.level is not None
                    else "",
                    "holder": f"{mask_name(h.name)} {mask_document(h.doc_number)}" if h
                    else ""})
    return out


def report(conn: sa.Connection, customer_id: int, now: datetime) -> list[dict]:
    """Seats per session and price tier: ``reserved`` (orders waiting for payment, not past
    their deadline) and ``paid``."""
    reserved = sa.and_(orders.c.state == "pending_payment", orders.c.expires_at >= now)
    paid = orders.c.state.in_(("paid", "partially_refunded"))
    rows = conn.execute(
        sa.select(order_lines.c.session_id, sessions.c.name.label("session_name"),
                  sessions.c.starts_at, price_tiers.c.name.label("tier"),
                  sa.func.sum(sa.case((reserved, 1), else_=0)).label("reserved"),
                  sa.func.sum(sa.case((sa.and_(paid, order_lines.c.state == "issued"), 1),
                                      else_=0)).label("paid"))
        .join(orders, orders.c.id == order_lines.c.order_id)
        .outerjoin(sessions, sessions.c.id == order_lines.c.session_id)
        .outerjoin(price_tiers, price_tiers.c.id == order_lines.c.price_tier_id)
        .where(orders.c.channel_id == customer_channel(conn, customer_id))
        .group_by(order_lines.c.session_id, sessions.c.name, sessions.c.starts_at,
                  price_tiers.c.name)
        .order_by(sessions.c.starts_at, price_tiers.c.name)).all()
    return [dict(r._mapping) for r in rows if r.reserved or r.paid]


def report_csv(conn: sa.Connection, customer_id: int, now: datetime) -> bytes:
    """The report, then every line of the customer's orders with its holder masked."""
    c = customer(conn, customer_id)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["customer", "session", "tier", "reserved", "paid"])
    for r in report(conn, customer_id, now):
        w.writerow([c.code, r["session_name"] or "", r["tier"] or "", r["reserved"],
                    r["paid"]])
    w.writerow([])
    w.writerow(["order", "state", "session", "seat", "tier", "amount", "currency", "holder"])
    for o in orders_of(conn, customer_id, now, limit=10_000):
        for line in order_lines_of(conn, o["id"]):
            w.writerow([o["number"], o["shown"], o["session_name"] or "", line["seat"],
                        line["tier"] or "", line["amount"], line["currency"], line["holder"]])
    return out.getvalue().encode("utf-8")
