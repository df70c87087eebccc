"""Refunds through the payment's provider. The amount is reserved on the payment in the
refund's own transaction (the database refuses a total above what was paid), the provider is
asked with the refund's own number (a retry reuses it: the provider refunds once), and the end
comes by the provider's notification, a query, or at once (offline)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from cloud.core import audit
from cloud.payments.errors import PaymentError
from cloud.payments.providers import Provider
from cloud.payments.tables import payment_refunds, payments
from cloud.payments.transitions import Outcome, move_refund
from sync.timeutil import utcnow


def open_refund(conn: sa.Connection, provider: str, payment_id: int, amount: int,
                reason: str, actor: str, now: datetime | None = None, *,
                out_refund_no: str | None = None) -> int:
    """Reserve ``amount`` fen of a succeeded payment for a refund (the database keeps the total
    within what was paid) and record the refund, ``requested``, without asking the provider
    yet. A refund number given twice is the same refund: its id again, nothing reserved twice
    (a job that runs again after the provider was asked)."""
    now = now or utcnow()
    if out_refund_no is not None:
        known = conn.execute(sa.select(payment_refunds.c.id).where(
            payment_refunds.c.out_refund_no == out_refund_no)).scalar()
        if known is not None:
            return known
    p = conn.execute(sa.select(payments).where(payments.c.id == payment_id)).first()
    if p is None or p.provider != provider:
        raise PaymentError("unknown_payment", payment_id=payment_id)
    if p.state != "succeeded":
        raise PaymentError("payment_not_refundable", payment_id=payment_id, state=p.state)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PaymentError("bad_payment_amount")
    reserved = conn.execute(sa.update(payments).where(
        payments.c.id == payment_id, payments.c.refunded + amount <= payments.c.amount)
        .values(refunded=payments.c.refunded + amount)).rowcount
    if reserved != 1:
        raise PaymentError("refund_exceeds_payment", payment_id=payment_id, amount=amount)
    rid = conn.execute(sa.insert(payment_refunds).values(
        payment_id=payment_id, out_refund_no=out_refund_no or uuid.uuid4().hex, amount=amount,
        state="requested", reason=reason[:80], created_at=now)
        .returning(payment_refunds.c.id)).scalar_one()
    audit.record(conn, actor, "payment.refund_requested", f"payment:{payment_id}",
                 after={"refund_id": rid, "amount": amount, "reason": reason[:80]})
    return rid


def request_refund(conn: sa.Connection, provider: Provider, payment_id: int, amount: int,
                   reason: str, actor: str, now: datetime | None = None, *,
                   notify_url: str = "") -> Outcome:
    """Refund ``amount`` fen of a succeeded payment, asking the provider in the caller's
    transaction; the outcome's state is the refund's (``processing`` until the provider says,
    ``failed`` if it refused at once). The worker opens and asks in separate transactions
    (cloud/payments/capturing.py)."""
    rid = open_refund(conn, provider.name, payment_id, amount, reason, actor, now)
    return send_refund(conn, provider, rid, now, notify_url=notify_url)


def refund_and_payment(conn: sa.Connection, refund_id: int):
    """A refund's row and its payment's."""
    r = conn.execute(sa.select(payment_refunds).where(payment_refunds.c.id == refund_id)).first()
    if r is None:
        raise PaymentError("unknown_refund", out_refund_no=str(refund_id))
    return r, conn.execute(sa.select(payments).where(payments.c.id == r.payment_id)).one()


def ask_refund(provider: Provider, refund, payment, notify_url: str = ""):
    """Ask the provider for a refund (no database work: call it with no transaction open when
    you can); its status, or None when the provider did not answer (ask again later, with the
    same number)."""
    try:
        return provider.refund(payment.out_trade_no, refund.out_refund_no, refund.amount,
                               payment.amount, refund.reason or "", notify_url)
    except PaymentError as e:
        if e.code != "provider_unavailable":
            raise
        return None


def send_refund(conn: sa.Connection, provider: Provider, refund_id: int,
                now: datetime | None = None, *, notify_url: str = "") -> Outcome:
    """Ask the provider for a requested refund (again, after a timeout: same number)."""
    now = now or utcnow()
    r, p = refund_and_payment(conn, refund_id)
    status = ask_refund(provider, r, p, notify_url)
    if status is None:
        return move_refund(conn, r, "requested", None, now)   # stays requested: ask again
    return move_refund(conn, r, status.state, status.provider_reference, now)


def settle_refund(conn: sa.Connection, provider: Provider, refund_id: int,
                  now: datetime | None = None) -> Outcome:
    """Ask the provider where a refund stands, for one whose notification never came."""
    now = now or utcnow()
    r, p = refund_and_payment(conn, refund_id)
    status = provider.refund_query(p.out_trade_no, r.out_refund_no)
    return move_refund(conn, r, status.state, status.provider_reference, now)
