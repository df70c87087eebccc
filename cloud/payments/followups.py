"""What the payments worker has left to follow up: payments still open after a while (their
notification may never come: ``settle_payment`` asks the provider) and refunds not yet ended
(``send_refund`` asks again for one still ``requested``, ``settle_refund`` asks where one
``processing`` stands). Reads only; the rules do the work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.payments.tables import payment_refunds, payments


@dataclass(frozen=True)
class Followup:
    kind: str            # "settle_payment", "send_refund" or "settle_refund"
    id: int              # the payment's or the refund's
    provider: str


def followups(conn: sa.Connection, started_before: datetime, limit: int = 100,
              after: tuple[int, int] = (0, 0)) -> list[Followup]:
    """Open online payments and unended refunds begun before ``started_before``, at most
    ``limit`` of each, in id order from just past ``after`` (the last payment id and refund id
    a previous round reached), wrapping round to the oldest: rounds that each take ``limit``
    reach every open item in turn, however many stay open for good (a buyer who never pays
    leaves a payment open; those must not keep the newer ones from ever being asked)."""
    open_payment = sa.and_(payments.c.state.in_(("created", "pending")),
                           payments.c.provider != "offline",
                           payments.c.created_at < started_before)
    out = [Followup("settle_payment", pid, provider) for pid, provider in _round(
        conn, sa.select(payments.c.id, payments.c.provider).where(open_payment),
        payments.c.id, after[0], limit)]
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
    pays = [f.id for f in items if f.kind == "settle_payment"]
    refunds = [f.id for f in items if f.kind != "settle_payment"]
    return (pays[-1] if pays else after[0], refunds[-1] if refunds else after[1])
