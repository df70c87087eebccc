"""A provider's notification, taken once: verified by the adapter (a refusal changes nothing
and is logged), checked against the payment or refund it names (trade, amount), recorded by
its id so that a duplicate changes nothing, and applied forward only (an older state arriving
late changes nothing either)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa

from cloud.payments.checkout import payment_by_trade
from cloud.payments.errors import PaymentError
from cloud.payments.providers import Notice, Provider
from cloud.payments.tables import payment_notifications, payment_refunds
from cloud.payments.transitions import Outcome, move_payment, move_refund
from sync.timeutil import utcnow

log = logging.getLogger(__name__)


def handle_notification(conn: sa.Connection, provider: Provider, headers: Mapping[str, str],
                        body: bytes, now: datetime | None = None) -> Outcome:
    """Take one notification in the caller's transaction; a :class:`PaymentError` (bad
    signature, stale, unknown trade, amount mismatch, …) means it was refused and nothing
    changed (the caller rolls back and answers the provider with a failure)."""
    now = now or utcnow()
    try:
        notice = provider.parse_notification(headers, body, now)
        return _take(conn, provider.name, notice, now)
    except PaymentError as e:
        log.warning("%s notification refused: %s (%s)", provider.name, e.code, e)
        raise


def _target(conn: sa.Connection, provider: str, notice: Notice):
    payment = payment_by_trade(conn, provider, notice.out_trade_no)
    if notice.kind == "payment":
        if notice.amount is not None and notice.amount != payment.amount:
            raise PaymentError("amount_mismatch", out_trade_no=notice.out_trade_no,
                               notified=notice.amount, amount=payment.amount)
        return payment, None
    refund = conn.execute(sa.select(payment_refunds).where(
        payment_refunds.c.out_refund_no == notice.out_refund_no,
        payment_refunds.c.payment_id == payment.id)).first()
    if refund is None:
        raise PaymentError("unknown_refund", out_refund_no=notice.out_refund_no or "")
    if notice.amount is not None and notice.amount != refund.amount:
        raise PaymentError("amount_mismatch", out_trade_no=notice.out_trade_no,
                           notified=notice.amount, amount=refund.amount)
    return payment, refund


def _record(conn: sa.Connection, provider: str, notice: Notice, payment_id: int,
            now: datetime) -> bool:
    """Record the notification's id; False if it was recorded before (a duplicate, perhaps
    one delivered at the same moment, which the unique key stops)."""
    seen = conn.execute(sa.select(payment_notifications.c.id).where(
        payment_notifications.c.provider == provider,
        payment_notifications.c.notification_id == notice.notification_id)).first()
    if seen is not None:
        return False
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(payment_notifications).values(
                provider=provider, notification_id=notice.notification_id,
                payment_id=payment_id, received_at=now, outcome="received"))
    except sa.exc.IntegrityError:
        return False
    return True


def _take(conn: sa.Connection, provider: str, notice: Notice, now: datetime) -> Outcome:
    payment, refund = _target(conn, provider, notice)
    if not _record(conn, provider, notice, payment.id, now):
        log.info("%s notification %s again: nothing changes", provider, notice.notification_id)
        if refund is None:
            return Outcome(provider, "payment", payment.id, payment.order_id,
                           payment.out_trade_no, payment.state, payment.amount, False,
                           duplicate=True, provider_reference=payment.provider_reference,
                           currency=payment.currency)
        return Outcome(provider, "refund", payment.id, payment.order_id, payment.out_trade_no,
                       refund.state, refund.amount, False, duplicate=True,
                       refund_id=refund.id, out_refund_no=refund.out_refund_no,
                       currency=payment.currency)
    if refund is None:
        outcome = move_payment(conn, payment, notice.state, notice.provider_reference, now)
    else:
        outcome = move_refund(conn, refund, notice.state, notice.provider_reference, now)
    conn.execute(sa.update(payment_notifications).where(
        payment_notifications.c.provider == provider,
        payment_notifications.c.notification_id == notice.notification_id)
        .values(outcome="applied" if outcome.changed else "no_change"))
    return outcome
