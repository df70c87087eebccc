"""Where a payment that succeeded meets its order: the order is captured (paid, its tickets
issued: cloud/sales/orders.py ``capture``) in the same transaction that recorded the payment,
whichever way the success was learnt (a notification, the worker's query, a booth's cash).
Money the order can no longer take (it lapsed and its seats were sold meanwhile, it was
cancelled, it was paid twice, the amount differs) goes back: a job written in that same
transaction has the worker refund it, so nothing is lost if the hub stops in between and no
provider is called while the order's rows are locked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cloud.core.audit import SYSTEM
from cloud.core.jobs import enqueue
from cloud.payments.checkout import settle_payment
from cloud.payments.errors import PaymentError
from cloud.payments.followups import followups
from cloud.payments.providers import Provider
from cloud.payments.refunds import request_refund, send_refund, settle_refund
from cloud.payments.tables import payments
from cloud.payments.transitions import Outcome
from cloud.sales.order_plan import OrderError
from cloud.sales.orders import Captured, capture
from sync.timeutil import utcnow

log = logging.getLogger(__name__)

REFUND_JOB = "payments.refund_unplaced"
FOLLOW_UP_AFTER = timedelta(minutes=2)  # a notification usually comes within seconds


def place(conn: sa.Connection, outcome: Outcome, now: datetime | None = None) -> Captured:
    """Capture the order of a payment that has just succeeded (``outcome.newly_succeeded``),
    or, when the order cannot take the money, have it refunded. The payment's trade number is
    the capture's reference: one payment captures an order at most once."""
    try:
        captured = capture(conn, outcome.order_id, outcome.amount, outcome.provider,
                           outcome.out_trade_no, now)
    except OrderError as e:
        if e.code != "unknown_order":
            raise
        log.error("payment %s names order %s, which does not exist", outcome.payment_id,
                  outcome.order_id)
        captured = Captured(outcome.order_id, "unknown", refund_needed=True,
                            reason="unknown_order")
    if captured.refund_needed:
        log.warning("payment %s of order %s cannot be placed (%s): it is refunded",
                    outcome.payment_id, outcome.order_id, captured.reason)
        enqueue(conn, REFUND_JOB, {"payment_id": outcome.payment_id, "amount": outcome.amount,
                                   "reason": captured.reason}, now=now)
    return captured


NotifyUrl = Callable[[str], str]


def refund_handler(providers: Mapping[str, Provider], notify_url: NotifyUrl) -> Callable:
    """The worker's handler of :data:`REFUND_JOB`: the refund asked of the payment's provider
    (``request_refund`` keeps the refunded total within the amount paid)."""
    def handle(conn: sa.Connection, payload: dict[str, Any], now: datetime) -> None:
        name = conn.execute(sa.select(payments.c.provider)
                            .where(payments.c.id == payload["payment_id"])).scalar_one()
        request_refund(conn, providers[name], payload["payment_id"], payload["amount"],
                       f"order could not take it: {payload['reason']}", SYSTEM, now,
                       notify_url=notify_url(name))
    return handle


def follow_up(providers: Mapping[str, Provider], notify_url: NotifyUrl,
              limit: int = 50) -> Callable:
    """The worker's periodic follow-up: payments whose notification never came are asked of
    their provider (and placed when they succeeded), refunds not yet ended sent again or
    asked about. Each item in its own savepoint, so one provider's refusal stops no other."""
    def task(conn: sa.Connection, now: datetime) -> None:
        for item in followups(conn, (now or utcnow()) - FOLLOW_UP_AFTER, limit):
            adapter = providers.get(item.provider)
            if adapter is None:
                continue  # a provider no longer configured: ops see it on the payment
            try:
                with conn.begin_nested():
                    _one(conn, adapter, item.kind, item.id, now, notify_url)
            except PaymentError as e:
                log.warning("payment follow-up %s %s: %s", item.kind, item.id, e)
    return task


def _one(conn: sa.Connection, adapter: Provider, kind: str, item_id: int, now: datetime,
         notify_url: NotifyUrl) -> None:
    if kind == "settle_payment":
        outcome = settle_payment(conn, adapter, item_id, now)
        if outcome.newly_succeeded:
            place(conn, outcome, now)
    elif kind == "send_refund":
        send_refund(conn, adapter, item_id, now, notify_url=notify_url(adapter.name))
    else:
        settle_refund(conn, adapter, item_id, now)
