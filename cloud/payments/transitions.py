"""The one writer of a payment's and a refund's state. A state only moves forward — a
duplicate, or an older state arriving late (``closed`` after ``succeeded``), changes nothing —
and each move is one conditional UPDATE, so two deliveries of the same news racing each
other move it once.

Forward means: ``created → pending → failed | closed → succeeded`` for a payment (money the
provider says it took outranks a close the hub heard first: the order decides whether it is
kept or refunded) and ``requested → processing → succeeded | failed`` for a refund. A refund
that fails gives its amount back to what may still be refunded; a refund that ends tells the
refund request it carries (cloud/sales/refunds.py ``refund_ended``), and one that succeeded is
posted to the ledger (cloud/ledger/posting.py), in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.ledger.posting import Paid, post_refund
from cloud.payments.tables import payment_refunds, payments
from cloud.sales.refunds import refund_ended

log = logging.getLogger(__name__)

PAYMENT_RANK = {"created": 0, "pending": 1, "failed": 2, "closed": 2, "succeeded": 3}
REFUND_RANK = {"requested": 0, "processing": 1, "failed": 2, "succeeded": 2}


@dataclass(frozen=True)
class Outcome:
    """What a notification, a query or a call changed. ``newly_succeeded`` is true exactly
    once per payment: when its money was first known to be taken (the caller captures the
    order then, with ``order_id``, ``amount`` and ``provider_reference``);
    ``refund_finished`` likewise once per refund that succeeded."""

    provider: str
    kind: str                    # "payment" or "refund"
    payment_id: int
    order_id: int
    out_trade_no: str
    state: str                   # the payment's state, or the refund's
    amount: int                  # fen: the payment's, or the refund's
    changed: bool
    newly_succeeded: bool = False
    duplicate: bool = False
    provider_reference: str | None = None
    refund_id: int | None = None
    out_refund_no: str | None = None
    refund_finished: bool = False
    currency: str = "CNY"        # the payment's


def _earlier(rank: dict[str, int], state: str) -> list[str]:
    return [s for s, r in rank.items() if r < rank[state]]


_MOVE_PAYMENT = sa.update(payments).where(
    payments.c.id == sa.bindparam("pid"),
    payments.c.state.in_(sa.bindparam("earlier", expanding=True))).returning(*payments.c)
_PAYMENT = sa.select(payments).where(payments.c.id == sa.bindparam("pid"))


def move_payment(conn: sa.Connection, payment, state: str, reference: str | None,
                 now: datetime) -> Outcome:
    """Move ``payment`` (a row) forward to ``state``; nothing if it is there or beyond."""
    values = {"state": state}
    if reference:
        values["provider_reference"] = reference
    if state == "succeeded":
        values["succeeded_at"] = now
    row = conn.execute(_MOVE_PAYMENT, {"pid": payment.id,
                                       "earlier": _earlier(PAYMENT_RANK, state),
                                       **values}).first()
    moved = row is not None
    if row is None:  # there or beyond already: as it stands
        row = conn.execute(_PAYMENT, {"pid": payment.id}).one()
    if moved:
        log.info("payment %s (%s, order %s): %s -> %s", row.id, row.provider, row.order_id,
                 payment.state, state)
    return Outcome(row.provider, "payment", row.id, row.order_id, row.out_trade_no, row.state,
                   row.amount, moved, newly_succeeded=moved and state == "succeeded",
                   provider_reference=row.provider_reference, currency=row.currency)


def move_refund(conn: sa.Connection, refund, state: str, reference: str | None,
                now: datetime) -> Outcome:
    """Move ``refund`` (a row) forward to ``state``; a refund that fails frees its amount."""
    values: dict = {"state": state}
    if reference:
        values["provider_reference"] = reference
    if state in ("succeeded", "failed"):
        values["finished_at"] = now
    moved = conn.execute(sa.update(payment_refunds).where(
        payment_refunds.c.id == refund.id,
        payment_refunds.c.state.in_(_earlier(REFUND_RANK, state))).values(**values)
    ).rowcount == 1
    if moved and state == "failed":
        conn.execute(sa.update(payments).where(payments.c.id == refund.payment_id)
                     .values(refunded=payments.c.refunded - refund.amount))
    p = conn.execute(sa.select(payments).where(payments.c.id == refund.payment_id)).one()
    r = conn.execute(sa.select(payment_refunds)
                     .where(payment_refunds.c.id == refund.id)).one()
    if moved:
        log.info("refund %s of payment %s: %s -> %s", r.id, p.id, refund.state, state)
        if state in ("succeeded", "failed"):  # the refund request it carries, if any, ends
            refund_ended(conn, refund.id, state == "succeeded", now)
        if state == "succeeded":  # the money out, in the ledger, in this same transaction
            post_refund(conn, Paid(p.id, p.order_id, p.provider, p.out_trade_no, p.amount,
                                   p.currency), r.id, r.out_refund_no, r.amount, now)
    return Outcome(p.provider, "refund", p.id, p.order_id, p.out_trade_no, r.state, r.amount,
                   moved, provider_reference=r.provider_reference, refund_id=r.id,
                   out_refund_no=r.out_refund_no,
                   refund_finished=moved and state == "succeeded", currency=p.currency)
