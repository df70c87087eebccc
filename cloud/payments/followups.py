"""What the payments worker has left to follow up: payments still open after a while (their
notification may never come: ``settle_payment`` asks the provider), payments still open whose
order can no longer take them (``close_payment``: closed at the provider so the buyer cannot
pay them any more), and refunds not yet ended (``send_refund`` asks again for one still
``requested``, ``settle_refund`` asks where one ``processing`` stands). Reads only; the rules
do the work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.payments.tables import payment_refunds, payments
from cloud.sales.tables import orders
from sync.timeutil import utcnow

PAYMENT_KINDS = ("settle_payment", "close_payment")


@dataclass(frozen=True)
class Followup:
    kind: str            # one of PAYMENT_KINDS, "send_refund" or "settle_refund"
    id: int              # the payment's or the refund's
    provider: str


def order_done(now: datetime):
    """An order that can no longer take a payment: no longer waiting for one (expired,
    cancelled, or paid already, by another payment), or past its deadline (lazy expiry:
    ``cloud/sales/orders.py`` ``shown_state``)."""
    return sa.or_(orders.c.state != "pending_payment", orders.c.expires_at < now)


def followups(conn: sa.Connection, started_before: datetime, limit: int = 100,
              after: tuple[int, int] = (0, 0), now: datetime | None = None) -> list[Followup]:
    """Open online payments begun before ``started_before`` or whose order is done by ``now``,
    and unended refunds begun before ``started_before``, at most ``limit`` of each, in id order
    from just past ``after`` (the last payment id and refund id a previous round reached),
    wrapping round to the oldest: rounds that each take ``limit`` reach every open item in
    turn, however many stay open for good (a provider that never answers a close, a trade it
    will neither close nor report: those must not keep the newer ones from ever being asked).
    A payment whose order is done is to be closed, never merely asked about."""
    done = order_done(now or utcnow())
    open_payment = sa.and_(payments.c.state.in_(("created", "pending")),
                           payments.c.provider != "offline",
                           sa.or_(payments.c.created_at < started_before, done))
    pays = sa.select(payments.c.id, payments.c.provider,
                     sa.case((done, True), else_=False).label("close")) \
        .select_from(payments.outerjoin(orders, orders.c.id == payments.c.order_id)) \
        .where(open_payment)
    out = [Followup("close_payment" if close else "settle_payment", pid, provider)
           for pid, provider, close in _round(conn, pays, payments.c.id, after[0], limit)]
    open_refund = sa.and_(payment_refunds.c.state.in_(("requested", "processing")),
                          payment_refunds.c.created_at < started_before)
    refunds = sa.select(payment_refunds.c.id, payment_refunds.c.state, payments.c.provider) \
        .join(payments, payments.c.id == payment_refunds.c.payment_id).where(open_refund)
    out += [Followup("send_refund" if state == "requested" else "settle_refund", rid, provider)
            for rid, state, provider in _round(conn, refunds, payment_refunds.c.id, after[1],
                                               limit)]
    return out


def _round(conn: sa.Connection, query, key, after: int, limit: int) -> list:
    """Up to ``limit`` rows of ``query`` by ``key``: those past ``after`` first, then from the
    start again (never one row twice)."""
    rows = conn.execute(query.where(key > after).order_by(key).limit(limit)).all()
    if len(rows) < limit and after > 0:
        rows += conn.execute(query.where(key <= after).order_by(key)
                             .limit(limit - len(rows))).all()
    return rows


def reached(items: list[Followup], after: tuple[int, int]) -> tuple[int, int]:
    """Where the next round starts: the last payment and refund of this one (wrapped ones
    included), or where this one started when it had none of a kind."""
    pays = [f.id for f in items if f.kind in PAYMENT_KINDS]
    refunds = [f.id for f in items if f.kind not in PAYMENT_KINDS]
    return (pays[-1] if pays else after[0], refunds[-1] if refunds else after[1])
