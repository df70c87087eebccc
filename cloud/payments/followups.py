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


def followups(conn: sa.Connection, started_before: datetime, limit: int = 100) -> list[Followup]:
    """Open online payments and unended refunds begun before ``started_before``, oldest first."""
    open_payments = conn.execute(
        sa.select(payments.c.id, payments.c.provider)
        .where(payments.c.state.in_(("created", "pending")),
               payments.c.provider != "offline", payments.c.created_at < started_before)
        .order_by(payments.c.id).limit(limit))
    out = [Followup("settle_payment", pid, provider) for pid, provider in open_payments]
    open_refunds = conn.execute(
        sa.select(payment_refunds.c.id, payment_refunds.c.state, payments.c.provider)
        .join(payments, payments.c.id == payment_refunds.c.payment_id)
        .where(payment_refunds.c.state.in_(("requested", "processing")),
               payment_refunds.c.created_at < started_before)
        .order_by(payment_refunds.c.id).limit(limit))
    out += [Followup("send_refund" if state == "requested" else "settle_refund", rid, provider)
            for rid, state, provider in open_refunds]
    return out
