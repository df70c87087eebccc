"""Where a payment that succeeded meets its order: the order is captured (paid, its tickets
issued: cloud/sales/orders.py ``capture``) in the same transaction that recorded the payment,
whichever way the success was learnt (a notification, the worker's query, a booth's cash).
Money the order can no longer take (it lapsed and its seats were sold meanwhile, it was
cancelled, it was paid twice, the amount differs) goes back: a job written in that same
transaction has the worker refund it, so nothing is lost if the hub stops in between.

The worker's handlers here are registered *apart* (cloud/core/jobs.py): they read what to ask
in one short transaction, ask the provider with no transaction open, and apply the answer in
another, so no row stays locked (and no SQLite write lock held) while a provider is slow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cloud.core.audit import SYSTEM, record
from cloud.core.errors import HubError
from cloud.core.jobs import enqueue
from cloud.ledger.posting import Paid, post_payment, post_unplaced
from cloud.payments.checkout import apply_trade_status, payment_of
from cloud.payments.errors import PaymentError
from cloud.payments.followups import Followup, followups, reached
from cloud.payments.providers import Provider
from cloud.payments.refunds import ask_refund, open_refund, refund_and_payment
from cloud.payments.tables import payments
from cloud.payments.transitions import Outcome, move_payment, move_refund
from cloud.sales.orders import DELIVER_TICKETS_JOB, TOPUP_PAID_JOB, Captured, capture
from cloud.sales.tables import TOPUP

log = logging.getLogger(__name__)

REFUND_JOB = "payments.refund_unplaced"
FOLLOW_UP_AFTER = timedelta(minutes=2)  # a notification usually comes within seconds


def place(conn: sa.Connection, outcome: Outcome, now: datetime | None = None) -> Captured:
    """Capture the order of a payment that has just succeeded (``outcome.newly_succeeded``),
    or, when the order cannot take the money (a coded refusal of any kind), have it refunded.
    The payment's trade number is the capture's reference: one payment captures an order at
    most once."""
    try:
        with conn.begin_nested():
            captured = capture(conn, outcome.order_id, outcome.amount, outcome.provider,
                               outcome.out_trade_no, now)
    except HubError as e:
        log.error("payment %s cannot be placed on order %s: %s", outcome.payment_id,
                  outcome.order_id, e)
        captured = Captured(outcome.order_id, "unplaced", refund_needed=True, reason=e.code)
    _post(conn, outcome, captured, now or datetime.now(UTC))
    if captured.state == "paid" and not captured.duplicate:
        _tickets_to_deliver(conn, captured, now)
    if captured.refund_needed:
        log.warning("payment %s of order %s cannot be placed (%s): it is refunded",
                    outcome.payment_id, outcome.order_id, captured.reason)
        enqueue(conn, REFUND_JOB, {"payment_id": outcome.payment_id, "amount": outcome.amount,
                                   "reason": captured.reason}, now=now)
    return captured


def _post(conn: sa.Connection, outcome: Outcome, captured: Captured, now: datetime) -> None:
    """The payment into the ledger, in this same transaction: split among the partners when
    its order kept it, owed back to the buyer when it did not (cloud/ledger/posting.py)."""
    paid = Paid(outcome.payment_id, outcome.order_id, outcome.provider, outcome.out_trade_no,
                outcome.amount, outcome.currency)
    if captured.refund_needed:
        post_unplaced(conn, paid, captured.reason or "", now)
    elif captured.state == "paid":
        post_payment(conn, paid, now)


def _tickets_to_deliver(conn: sa.Connection, captured: Captured, now: datetime | None) -> None:
    """An order a buyer paid online is delivered to the buyer (links to its tickets by SMS and
    e-mail): a job written with the capture (:data:`DELIVER_TICKETS_JOB`, the buyers area's
    handler), so it exists exactly when the capture committed. A booth's order has no buyer
    account: its codes were shown to the clerk. A partner's top-up, which has no tickets, is
    told to the channels area the same way (:data:`TOPUP_PAID_JOB`). ``captured`` is a payment
    that paid its order (which it names, with its buyer and kind)."""
    order_id = captured.order_id
    if captured.kind == TOPUP:
        enqueue(conn, TOPUP_PAID_JOB, {"order_id": order_id}, now=now)
    elif captured.tickets and captured.buyer and captured.buyer.startswith("buyer:"):
        enqueue(conn, DELIVER_TICKETS_JOB, {"order_id": order_id}, now=now)


NotifyUrl = Callable[[str], str]


def refund_handler(providers: Mapping[str, Provider], notify_url: NotifyUrl) -> Callable:
    """The worker's handler of :data:`REFUND_JOB` (apart: it gets the engine). The refund's
    number comes from the payment, so a job run again finds the same refund and the provider
    refunds once; a refund the provider refuses fails the job (dead after its attempts: ops
    see it)."""
    def handle(engine: sa.Engine, payload: dict[str, Any], now: datetime) -> None:
        with engine.begin() as conn:
            p = conn.execute(sa.select(payments.c.provider, payments.c.out_trade_no)
                             .where(payments.c.id == payload["payment_id"])).one()
            refund_id = open_refund(conn, p.provider, payload["payment_id"], payload["amount"],
                                    f"order could not take it: {payload['reason']}", SYSTEM,
                                    now, out_refund_no="U" + p.out_trade_no)
        state = send_apart(engine, providers[p.provider], refund_id, now,
                           notify_url(p.provider))
        if state == "failed":
            raise PaymentError("provider_refused", provider=p.provider,
                               detail=f"refund {refund_id} of an unplaced payment")
        if state == "requested":
            raise PaymentError("provider_unavailable", provider=p.provider,
                               detail=f"refund {refund_id}: asked again later")
    return handle


def send_apart(engine: sa.Engine, adapter: Provider, refund_id: int, now: datetime,
               notify_url: str = "") -> str:
    """Ask the provider for a requested refund outside any transaction; the refund's state."""
    with engine.connect() as conn:
        r, p = refund_and_payment(conn, refund_id)
    if r.state != "requested":
        return r.state
    status = ask_refund(adapter, r, p, notify_url)
    if status is None:
        return "requested"
    with engine.begin() as conn:
        return move_refund(conn, r, status.state, status.provider_reference, now).state


def close_apart(engine: sa.Engine, adapter: Provider, payment_id: int,
                now: datetime) -> Outcome | None:
    """Close at its provider an open payment its order can no longer take, with no transaction
    open while the provider answers, so the buyer cannot pay it any more; then the payment is
    ``closed`` (a success recorded meanwhile wins: states only move forward). A provider that
    will not close it (the buyer paid meanwhile; closed already, for Alipay) is asked where it
    stands, and that is applied as the follow-up's query is: money taken is placed (kept or
    refunded), never lost. A provider that does not answer raises: asked again next round.
    None when the payment was no longer open."""
    with engine.connect() as conn:
        row = payment_of(conn, adapter.name, payment_id)
    if row.state not in ("created", "pending"):
        return None
    status = None
    try:
        adapter.close(row.out_trade_no)
    except PaymentError as e:
        if e.code != "provider_refused":
            raise
        log.info("payment %s: %s would not close it (%s); asking where it stands", row.id,
                 adapter.name, e.params.get("detail"))
        status = adapter.query(row.out_trade_no)
    with engine.begin() as conn:
        if status is None:
            outcome = move_payment(conn, row, "closed", None, now)
        else:
            outcome = apply_trade_status(conn, row, status, now)
            if outcome.newly_succeeded:
                place(conn, outcome, now)
        if outcome.changed and outcome.state == "closed":
            record(conn, SYSTEM, "payment.closed", f"payment:{row.id}", {"state": row.state},
                   {"state": "closed", "order_id": row.order_id,
                    "out_trade_no": row.out_trade_no})
    return outcome


def follow_up(providers: Mapping[str, Provider], notify_url: NotifyUrl,
              limit: int = 50) -> Callable:
    """The worker's periodic follow-up (apart): payments whose notification never came are
    asked of their provider (and placed when they succeeded), open payments whose order can no
    longer take them closed at their provider (:func:`close_apart`), refunds not yet ended
    sent again or asked about; each on its own, so one item's failure stops no other."""
    cursor = [(0, 0)]  # where this worker's next round starts (followups: round-robin)

    def task(engine: sa.Engine, now: datetime) -> int:
        with engine.connect() as conn:
            items = followups(conn, now - FOLLOW_UP_AFTER, limit, cursor[0], now)
        cursor[0] = reached(items, cursor[0])
        for item in items:
            adapter = providers.get(item.provider)
            if adapter is None:
                continue  # a provider no longer configured: ops see it on the payment
            try:
                _one(engine, adapter, item, now, notify_url)
            except Exception as e:  # noqa: BLE001 - one item's failure is logged, not the batch's
                log.warning("payment follow-up %s %s: %s: %s", item.kind, item.id,
                            type(e).__name__, e)
        return len(items)
    return task


def _one(engine: sa.Engine, adapter: Provider, item: Followup, now: datetime,
         notify_url: NotifyUrl) -> None:
    if item.kind == "send_refund":
        send_apart(engine, adapter, item.id, now, notify_url(adapter.name))
        return
    if item.kind == "close_payment":
        close_apart(engine, adapter, item.id, now)
        return
    with engine.connect() as conn:
        if item.kind == "settle_payment":
            row = payment_of(conn, adapter.name, item.id)
        else:
            r, p = refund_and_payment(conn, item.id)
    if item.kind == "settle_payment":
        status = adapter.query(row.out_trade_no)
        with engine.begin() as conn:
            outcome = apply_trade_status(conn, row, status, now)
            if outcome.newly_succeeded:
                place(conn, outcome, now)
    else:
        status = adapter.refund_query(p.out_trade_no, r.out_refund_no)
        with engine.begin() as conn:
            move_refund(conn, r, status.state, status.provider_reference, now)
