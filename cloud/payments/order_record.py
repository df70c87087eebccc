"""An order as the staff pages show it: its lines with their seats, prices and holders, the
tickets they became, the payments taken for it and the refunds of those payments, and each
ticket's entries at the gates. Reads only; holders come opened for the page to mask (the
templates mask them; nothing here is shown in full).

It lives in the payments area because an order's money is the payments' record (payments →
sales, never back: the sales area does not read the payments tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import events, price_tiers, products, seats, sessions, venues, zones
from cloud.core.audit import audit_log
from cloud.payments.tables import payment_refunds, payments
from cloud.sales.history import entry_history
from cloud.sales.holders import holder
from cloud.sales.tables import order_lines, orders, tickets
from sync.timeutil import utcnow

MAX_LISTED = 100


@dataclass(frozen=True)
class OrderLine:
    kind: str
    seat: str | None  # "level-row-number"
    zone: str | None
    tier: str | None
    product: str | None
    amount: int
    currency: str
    state: str
    holder: object | None  # cloud.sales.holders.Holder, to be masked
    ticket: object | None  # the ticket row (number, state, code) once issued
    entries: tuple = ()


@dataclass(frozen=True)
class OrderRecord:
    order: object
    state: str  # as a buyer reads it: a lapsed hold reads "expired" at once
    session: object | None  # name, event, starts_at, venue, timezone
    lines: tuple[OrderLine, ...]
    payments: tuple
    refunds: tuple
    method: str | None = None  # how the box office took it (cash, card, wechat, alipay)

    @property
    def tickets(self) -> list:
        return [line.ticket for line in self.lines if line.ticket is not None]

    @property
    def refunded(self) -> int:
        return sum(r.amount for r in self.refunds if r.state == "succeeded")


def order_id_of(conn: sa.Connection, number: str) -> int | None:
    return conn.execute(sa.select(orders.c.id).where(orders.c.number == number)).scalar()


def order_record(conn: sa.Connection, order_id: int,
                 now: datetime | None = None) -> OrderRecord:
    o = conn.execute(sa.select(orders).where(orders.c.id == order_id)).one()
    state = o.state
    if state == "pending_payment" and o.expires_at < (now or utcnow()):
        state = "expired"
    s = None
    if o.session_id is not None:
        s = conn.execute(
            sa.select(sessions.c.id, sessions.c.name, sessions.c.starts_at,
                      events.c.name.label("event_name"), venues.c.name.label("venue_name"),
                      venues.c.timezone)
            .join(events, events.c.id == sessions.c.event_id)
            .join(venues, venues.c.id == sessions.c.venue_id)
            .where(sessions.c.id == o.session_id)).one()
    q = (sa.select(order_lines, seats.c.level, seats.c.row.label("seat_row"),
                   seats.c.number.label("seat_no"), zones.c.name.label("zone_name"),
                   price_tiers.c.name.label("tier_name"), products.c.name.label("product_name"))
         .outerjoin(seats, seats.c.id == order_lines.c.seat_id)
         .outerjoin(zones, zones.c.id == order_lines.c.zone_id)
         .outerjoin(price_tiers, price_tiers.c.id == order_lines.c.price_tier_id)
         .outerjoin(products, products.c.id == order_lines.c.product_id)
         .where(order_lines.c.order_id == order_id).order_by(order_lines.c.id))
    issued = {t.id: t for t in conn.execute(
        sa.select(tickets.c.id, tickets.c.number, tickets.c.state, tickets.c.code)
        .where(tickets.c.order_id == order_id))}
    lines = []
    for r in conn.execute(q).all():
        t = issued.get(r.ticket_id) if r.ticket_id is not None else None
        lines.append(OrderLine(
            r.kind, f"{r.level}-{r.seat_row}-{r.seat_no}" if r.seat_id is not None else None,
            r.zone_name, r.tier_name, r.product_name, r.amount, r.currency, r.state,
            holder(conn, r.holder_id), t,
            tuple(entry_history(conn, t.id)) if t is not None else ()))
    paid = tuple(conn.execute(sa.select(payments).where(payments.c.order_id == order_id)
                              .order_by(payments.c.id)))
    refunds = tuple(conn.execute(
        sa.select(payment_refunds, payments.c.provider)
        .join(payments, payments.c.id == payment_refunds.c.payment_id)
        .where(payments.c.order_id == order_id).order_by(payment_refunds.c.id)))
    return OrderRecord(o, state, s, tuple(lines), paid, refunds, _method(conn, order_id))


def _method(conn: sa.Connection, order_id: int) -> str | None:
    """The payment method the clerk chose, as the box office's audit record keeps it (the
    offline provider's payments do not say cash or card)."""
    after = conn.execute(sa.select(audit_log.c.after).where(
        audit_log.c.action == "boxoffice.payment", audit_log.c.subject == f"order:{order_id}")
        .order_by(audit_log.c.id.desc()).limit(1)).scalar()
    return after.get("method") if isinstance(after, dict) else None


def recent_orders(conn: sa.Connection, number: str = "", state: str = "",
                  limit: int = MAX_LISTED) -> list:
    """Orders newest first, optionally those whose number starts with ``number`` or in one
    state, with their session's name."""
    q = (sa.select(orders.c.number, orders.c.state, orders.c.total, orders.c.currency,
                   orders.c.created_at, orders.c.expires_at, orders.c.actor, orders.c.buyer,
                   orders.c.payment_provider, sessions.c.name.label("session_name"),
                   venues.c.timezone)
         .outerjoin(sessions, sessions.c.id == orders.c.session_id)
         .outerjoin(venues, venues.c.id == sessions.c.venue_id)
         .order_by(orders.c.id.desc()).limit(limit))
    if number:
        q = q.where(orders.c.number.startswith(number, autoescape=True))
    if state:
        q = q.where(orders.c.state == state)
    return conn.execute(q).all()
