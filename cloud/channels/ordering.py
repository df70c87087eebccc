"""Partners' orders: what a distributor or agent may sell (the products its sales codes bind
to it), at its agreed price, through its channel, paid from its account.

An order is held like any other (:func:`cloud.channels.selling.sell_on`: the channel's
quotas and the day's stock counted by the database), then confirmed: the partner's account is
charged (prepaid first, then credit: :func:`cloud.channels.accounts.charge_order`, refused
``not_covered`` and never overdrawn, the guarded accounts decide) and the order captured —
its tickets issued — in one transaction, so a refused charge leaves nothing paid and nothing
issued. ``confirm`` at creation does both at once. A partner only ever sees and touches the
orders of its own channels (``unknown_partner_order`` otherwise, as for one that does not
exist).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time

import sqlalchemy as sa

from cloud.catalog.tables import price_tiers, products, sessions
from cloud.channels import accounts, webhooks
from cloud.channels.channels import channel
from cloud.channels.errors import ChannelError
from cloud.channels.partner_terms import agreed_price, bound_price, bound_products
from cloud.channels.selling import sell_on
from cloud.channels.tables import channels
from cloud.core.audit import record
from cloud.inventory.quotas import quota_key
from cloud.inventory.tables import quotas
from cloud.ledger.tables import partners
from cloud.sales.order_plan import LineRequest, OrderError, OrderRequest
from cloud.sales.orders import cancel_order as cancel_sales_order
from cloud.sales.orders import capture, shown_state
from cloud.sales.refunds import policy
from cloud.sales.tables import order_lines, orders, tickets
from cloud.sales.tickets import revoke_ticket
from sync.timeutil import CHINA

MAX_QUANTITY = 50
MAX_DAYS = 31
PROVIDER = "account"


@dataclass(frozen=True)
class PartnerLine:
    """What a partner asks for: ``quantity`` of a product (on its ``day`` for a day product),
    or of a session's price tier (best-available seats of ``zone_id``, or general admission
    without one); ``holders`` name the tickets' holders in order, where real-name."""

    product_id: int | None = None
    day: date | None = None
    session_id: int | None = None
    price_tier_id: int | None = None
    quantity: int = 1
    holders: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)
    zone_id: int = 0


_PARTNER = sa.select(partners).where(partners.c.id == sa.bindparam("partner_id"))
_ORDER = sa.select(orders).join(channels, channels.c.id == orders.c.channel_id).where(
    orders.c.number == sa.bindparam("number"),
    channels.c.partner_id == sa.bindparam("partner_id"))
_ORDER_LOCKED = _ORDER.with_for_update(of=orders)
_VIEW = sa.select(  # the order with its lines (none: one row of NULLs) and their tickets
    orders.c.number, orders.c.state, orders.c.total, orders.c.currency, orders.c.created_at,
    orders.c.expires_at, orders.c.paid_at, order_lines.c.id.label("line_id"),
    order_lines.c.kind, order_lines.c.product_id, order_lines.c.day,
    order_lines.c.session_id.label("line_session_id"), order_lines.c.price_tier_id,
    order_lines.c.seat_id, order_lines.c.amount, order_lines.c.state.label("line_state"),
    tickets.c.number.label("ticket_number"), tickets.c.code,
    tickets.c.state.label("ticket_state")
).select_from(orders.join(channels, channels.c.id == orders.c.channel_id)
              .outerjoin(order_lines, order_lines.c.order_id == orders.c.id)
              .outerjoin(tickets, tickets.c.id == order_lines.c.ticket_id)).where(
    orders.c.number == sa.bindparam("number"),
    channels.c.partner_id == sa.bindparam("partner_id")).order_by(order_lines.c.id)


def _partner(conn: sa.Connection, partner_id: int):
    p = conn.execute(_PARTNER, {"partner_id": partner_id}).first()
    if p is None:
        raise ChannelError("unknown_partner_order", number="-", field="partner")
    if p.state != "active":
        raise ChannelError("partner_suspended", partner_id=partner_id, field="partner")
    return p


def partner_products(conn: sa.Connection, partner_id: int, now: datetime) -> list[dict]:
    """The products a partner may sell, with its agreed price now (None: not for sale)."""
    _partner(conn, partner_id)
    ids = bound_products(conn, partner_id, now)
    out = []
    for p in conn.execute(sa.select(products).where(products.c.id.in_(sorted(ids)))
                          .order_by(products.c.id)) if ids else ():
        price = agreed_price(conn, partner_id, p.id, at=now)
        out.append({"id": p.id, "code": p.code, "name": p.name, "kind": p.kind,
                    "venues": list(p.scope) if p.scope_kind == "venues" else [],
                    "price": price.amount if price else None,
                    "currency": price.currency if price else p.currency})
    return out


def availability(conn: sa.Connection, partner_id: int, product_id: int, days: list[date],
                 now: datetime) -> list[dict]:
    """What is left of a bound day product on each day: the day's stock less what is sold
    and held (a lapsed hold still counts until it is tidied: never more than is true)."""
    _partner(conn, partner_id)
    if product_id not in bound_products(conn, partner_id, now):
        raise ChannelError("not_bound", product_id=product_id, field="product_id")
    keys = {quota_key("day", product_id=product_id, day=d): d for d in days[:MAX_DAYS]}
    found = {r.key: r for r in conn.execute(sa.select(quotas.c.key, quotas.c.capacity,
                                                      quotas.c.used)
                                            .where(quotas.c.key.in_(sorted(keys))))}
    return [{"day": d.isoformat(),
             "available": (found[k].capacity - found[k].used) if k in found else 0}
            for k, d in keys.items()]


def _bad(field_name: str) -> OrderError:
    return OrderError("bad_order_lines", limit=MAX_QUANTITY, field=field_name)


def _requests(conn: sa.Connection, partner_id: int, lines: list[PartnerLine],
              now: datetime) -> tuple[int | None, list[LineRequest]]:
    """The order's session (None: products only) and its lines at the agreed prices."""
    if not lines or len(lines) > 20:
        raise _bad("lines")
    session_ids, out = set(), []
    for i, line in enumerate(lines):
        if isinstance(line.quantity, bool) or not isinstance(line.quantity, int) \
                or not 1 <= line.quantity <= MAX_QUANTITY \
                or len(line.holders) > line.quantity:
            raise _bad(f"lines.{i}.quantity")
        if line.product_id is not None:
            bound, amount = bound_price(conn, partner_id, line.product_id, now)
            if not bound:
                raise ChannelError("not_bound", product_id=line.product_id,
                                   field=f"lines.{i}.product_id")
            what = {"kind": "pass", "product_id": line.product_id, "day": line.day}
        else:
            tier = conn.execute(sa.select(price_tiers.c.session_id).where(
                price_tiers.c.id == line.price_tier_id)).first()
            if tier is None or tier.session_id != line.session_id:
                raise _bad(f"lines.{i}.price_tier_id")
            session_ids.add(line.session_id)
            price = agreed_price(conn, partner_id, price_tier_id=line.price_tier_id, at=now)
            amount = price.amount if price is not None else None
            what = {"kind": "seat" if line.zone_id else "ga", "zone_id": line.zone_id,
                    "price_tier_id": line.price_tier_id}
        if amount is None:
            raise ChannelError("no_agreed_price", product_id=line.product_id or
                               f"tier {line.price_tier_id}", field=f"lines.{i}")
        holders = list(line.holders) + [None] * (line.quantity - len(line.holders))
        out += [LineRequest(amount=amount, holder=h, **what) for h in holders]
    if len(session_ids) > 1:
        raise _bad("lines")
    return (session_ids.pop() if session_ids else None), out


def _own_channel(conn: sa.Connection, partner_id: int, channel_id: int):
    ch = channel(conn, channel_id)
    if ch.partner_id != partner_id:
        raise ChannelError("unknown_channel", channel=channel_id, field="channel")
    return ch


def place_order(conn: sa.Connection, *, partner_id: int, channel_id: int,
                lines: list[PartnerLine], confirm: bool, actor: str, now: datetime) -> dict:
    """Hold a partner's order through its channel at its agreed prices; with ``confirm``,
    charge its account and issue its tickets too. All in the caller's transaction: any
    refusal leaves nothing."""
    partner = _partner(conn, partner_id)
    ch = _own_channel(conn, partner_id, channel_id)
    session_id, reqs = _requests(conn, partner_id, lines, now)
    created = sell_on(conn, ch, OrderRequest(
        session_id=session_id, lines=tuple(reqs), actor=actor), now, partner.kind)
    if confirm:
        _confirm(conn, partner_id, created.order_id, now, actor)
    return order_view(conn, partner_id, created.number, now)


def _confirm(conn: sa.Connection, partner_id: int, order_id: int, now: datetime,
             actor: str) -> None:
    o = conn.execute(sa.select(orders.c.total, orders.c.currency, orders.c.number)
                     .where(orders.c.id == order_id)).one()
    if o.total:
        accounts.charge_order(conn, partner_id=partner_id, order_id=order_id, amount=o.total,
                              currency=o.currency, now=now, actor=actor)
    captured = capture(conn, order_id, o.total, PROVIDER, f"{PROVIDER}:{order_id}", now)
    if captured.refund_needed:  # its hold lapsed and its stock went to another order
        raise OrderError("order_not_pending", order_id=order_id, state="expired",
                         field="number")
    if not captured.duplicate:
        webhooks.notify(conn, partner_id, "order.confirmed",
                        {"order": o.number, "total": o.total, "currency": o.currency,
                         "tickets": [t.number for t in captured.tickets]}, now)


def _order(conn: sa.Connection, partner_id: int, number: str, lock: bool = False):
    o = conn.execute(_ORDER_LOCKED if lock else _ORDER,
                     {"number": number, "partner_id": partner_id}).first() \
        if isinstance(number, str) else None
    if o is None:
        raise ChannelError("unknown_partner_order", number=number, field="number")
    return o


def confirm_order(conn: sa.Connection, partner_id: int, number: str, actor: str,
                  now: datetime) -> dict:
    """Pay a held order from the partner's account and issue its tickets; an order confirmed
    before answers as it stands (a retried confirmation charges nothing twice)."""
    _partner(conn, partner_id)
    o = _order(conn, partner_id, number, lock=True)
    if o.state == "paid":
        return order_view(conn, partner_id, number, now)
    if shown_state(o, now) != "pending_payment":
        raise OrderError("order_not_pending", order_id=o.id, state=shown_state(o, now),
                         field="number")
    _confirm(conn, partner_id, o.id, now, actor)
    return order_view(conn, partner_id, number, now)


def cancel_order(conn: sa.Connection, partner_id: int, number: str, actor: str,
                 now: datetime) -> dict:
    """Give up a held order: its stock and quotas go back at once."""
    o = _order(conn, partner_id, number)
    cancel_sales_order(conn, o.id, actor, now)
    return order_view(conn, partner_id, number, now)


def order_view(conn: sa.Connection, partner_id: int, number: str,
               now: datetime | None = None) -> dict:
    """An order as its partner sees it: state, total, lines and their tickets' codes."""
    rows = conn.execute(_VIEW, {"number": number, "partner_id": partner_id}).all() \
        if isinstance(number, str) else None
    if not rows:
        raise ChannelError("unknown_partner_order", number=number, field="number")
    o = rows[0]
    return {"number": o.number, "state": shown_state(o, now), "total": o.total,
            "currency": o.currency, "created_at": o.created_at.isoformat(),
            "expires_at": o.expires_at.isoformat(),
            "paid_at": o.paid_at.isoformat() if o.paid_at else None,
            "lines": [{"kind": r.kind, "product_id": r.product_id,
                       "day": r.day.isoformat() if r.day else None,
                       "session_id": r.line_session_id, "price_tier_id": r.price_tier_id,
                       "seat_id": r.seat_id, "amount": r.amount, "state": r.line_state,
                       "ticket": None if r.ticket_number is None else {
                           "number": r.ticket_number, "code": r.code,
                           "state": r.ticket_state}}
                      for r in rows if r.line_id is not None]}


def list_orders(conn: sa.Connection, partner_id: int, limit: int = 50,
                before: int | None = None) -> list[dict]:
    """A partner's orders, newest first, ``limit`` at a time (``before``: an order id)."""
    q = sa.select(orders.c.id, orders.c.number, orders.c.state, orders.c.total,
                  orders.c.currency, orders.c.created_at, orders.c.expires_at).join(
        channels, channels.c.id == orders.c.channel_id).where(
        channels.c.partner_id == partner_id)
    if before is not None:
        q = q.where(orders.c.id < before)
    rows = conn.execute(q.order_by(orders.c.id.desc()).limit(max(1, min(limit, 200)))).all()
    return [{"id": r.id, "number": r.number, "state": shown_state(r), "total": r.total,
             "currency": r.currency, "created_at": r.created_at.isoformat()} for r in rows]


def _refundable_until(conn: sa.Connection, line) -> datetime | None:
    """Until when a partner may give a ticket back: a day ticket until its day begins (China
    time), a session's until its refund policy says (or the session starts)."""
    if line.day is not None:
        return datetime.combine(line.day, time(), CHINA)
    if line.session_id is not None:
        until = policy(conn, line.session_id).refundable_until
        return until or conn.execute(sa.select(sessions.c.starts_at).where(
            sessions.c.id == line.session_id)).scalar()
    return None


def refund_tickets(conn: sa.Connection, partner_id: int, number: str,
                   ticket_numbers: list[str], actor: str, now: datetime) -> dict:
    """Give back tickets of a paid order: each revoked at every venue (one that admitted
    someone is refused), its place back on sale, and its price back to the partner's account
    (credit first, up to what the order took of it)."""
    _partner(conn, partner_id)
    o = _order(conn, partner_id, number, lock=True)
    if not isinstance(ticket_numbers, list) or not ticket_numbers or not all(
            isinstance(n, str) for n in ticket_numbers) or len(set(ticket_numbers)) != len(
            ticket_numbers):
        raise _bad("ticket_numbers")
    rows = conn.execute(sa.select(order_lines.c.day, order_lines.c.session_id,
                                  order_lines.c.amount, tickets.c.id, tickets.c.number)
                        .join(tickets, tickets.c.id == order_lines.c.ticket_id).where(
        order_lines.c.order_id == o.id, tickets.c.number.in_(ticket_numbers),
        tickets.c.state == "issued")).all()
    if len(rows) != len(ticket_numbers):
        raise _bad("ticket_numbers")
    for r in rows:
        until = _refundable_until(conn, r)
        if until is not None and now >= until:
            raise ChannelError("not_refundable", ticket=r.number,
                               until=until.isoformat(), field="ticket_numbers")
        revoke_ticket(conn, r.id, "refunded", now, actor)
    amount = sum(r.amount for r in rows)
    if amount:
        accounts.refund_to_account(
            conn, partner_id=partner_id, order_id=o.id,
            refund_key=f"{o.id}:" + ",".join(sorted(str(r.id) for r in rows)),
            amount=amount, now=now, actor=actor)
    record(conn, actor, "partner_order.refund", f"order:{o.id}", None,
           {"tickets": sorted(r.number for r in rows), "amount": amount})
    webhooks.notify(conn, partner_id, "order.refunded",
                    {"order": o.number, "tickets": sorted(r.number for r in rows),
                     "amount": amount, "currency": o.currency}, now)
    return order_view(conn, partner_id, number, now)
