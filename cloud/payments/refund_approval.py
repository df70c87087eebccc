"""A refund request's money: approving a request (cloud/sales/refunds.py) reserves its amount
on the order's payment in the approval's own transaction (``open_refund``: the database keeps
the total refunded within what was paid), and the provider is asked afterwards, never with a
transaction open — by the worker's job :data:`REQUEST_JOB` (registered apart), or at once for
money handed back at the booth (offline). However the refund ends — the provider's answer,
its notification, the worker's query — ``transitions.move_refund`` tells the request, which
then gives its seats back (succeeded) or stays visibly failed.

A cancelled session's paid orders are refunded in batches by :func:`refund_session`
(``wicket-hub refund-session``): each order a request made by whoever cancelled the session
and approved by the system, each batch one transaction, so a run stopped anywhere resumes
where it was and no order is refunded twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.core.errors import HubError
from cloud.core.jobs import enqueue
from cloud.payments.capturing import NotifyUrl, send_apart
from cloud.payments.errors import PaymentError
from cloud.payments.offline import OfflineProvider
from cloud.payments.providers import Provider
from cloud.payments.refunds import open_refund, refund_and_payment, send_refund
from cloud.payments.tables import payments
from cloud.sales.refunds import (
    BULK_CHECKER,
    Approved,
    RefundError,
    approve_request,
    attach_payment_refund,
    cancelled_by,
    finish_request,
    orders_to_refund,
    refund_request,
    reopen_request,
    request_lines,
    request_refund,
)
from sync.timeutil import utcnow

log = logging.getLogger(__name__)

REQUEST_JOB = "payments.refund_request"
OFFLINE = "offline"
BULK_REASON = "session cancelled"


def approve_refund(conn: sa.Connection, request_id: int, actor: str,
                   now: datetime | None = None, *, supervisor: bool = False,
                   note: str = "") -> str:
    """Approve a pending refund request and start giving its money back, all in the caller's
    transaction; the request's state after it (``succeeded`` at once for money handed back at
    the booth or a refund of nothing, else ``approved`` until the provider says)."""
    now = now or utcnow()
    approved = approve_request(conn, request_id, actor, now, supervisor=supervisor, note=note)
    _give_money_back(conn, approved, actor, now)
    return refund_request(conn, request_id).state


def retry_refund(conn: sa.Connection, request_id: int, actor: str,
                 now: datetime | None = None) -> str:
    """Send a failed refund again, under a new refund number (the failed one freed its
    amount); the request's state after it, as :func:`approve_refund`."""
    now = now or utcnow()
    _give_money_back(conn, reopen_request(conn, request_id, actor, now), actor, now)
    return refund_request(conn, request_id).state


def _order_payment(conn: sa.Connection, a: Approved):
    """The payment that paid the order: the one its capture names, else its succeeded one."""
    q = sa.select(payments).where(payments.c.order_id == a.order_id,
                                  payments.c.state == "succeeded")
    found = conn.execute(q.where(payments.c.out_trade_no == a.payment_reference)).first()
    return found or conn.execute(q.order_by(payments.c.id)).first()


def _give_money_back(conn: sa.Connection, a: Approved, actor: str, now: datetime) -> None:
    if a.amount == 0:  # the fee kept it all: nothing to send
        finish_request(conn, a.request_id, True, now)
        return
    p = _order_payment(conn, a)
    if p is None:
        if a.payment_provider == OFFLINE:  # sold at the counter (sell): cash handed back there
            finish_request(conn, a.request_id, True, now)
            return
        raise PaymentError("unknown_payment", payment_id=f"of order {a.order_id}")
    refund_id = open_refund(conn, p.provider, p.id, a.amount, f"refund request {a.request_id}",
                            actor, now)
    attach_payment_refund(conn, a.request_id, refund_id)
    if p.provider == OFFLINE:  # no service to wait on: the booth hands the money back now
        send_refund(conn, OfflineProvider(), refund_id, now)
    else:
        enqueue(conn, REQUEST_JOB, {"refund_id": refund_id, "request_id": a.request_id},
                now=now)


def request_refund_handler(providers: Mapping[str, Provider], notify_url: NotifyUrl) -> Callable:
    """The worker's handler of :data:`REQUEST_JOB` (apart: it gets the engine): asks the
    provider with the refund's own number (a job run again refunds once). A refund the
    provider refuses ends the request ``failed`` (visible on its page); one it did not answer
    is asked again (the job fails and is retried)."""
    def handle(engine: sa.Engine, payload: dict[str, Any], now: datetime) -> None:
        with engine.connect() as conn:
            _r, p = refund_and_payment(conn, payload["refund_id"])
        adapter = providers.get(p.provider)
        if adapter is None:
            raise PaymentError("unknown_provider", provider=p.provider)
        state = send_apart(engine, adapter, payload["refund_id"], now, notify_url(p.provider))
        if state == "requested":
            raise PaymentError("provider_unavailable", provider=p.provider,
                               detail=f"refund {payload['refund_id']}: asked again later")
    return handle


@dataclass
class BulkReport:
    """What a bulk refund run did: orders refunded, tickets, fen, and what it could not."""

    session_id: int
    orders: int = 0
    tickets: int = 0
    amount: int = 0
    finished: int = 0        # money back already (booth, nothing to send)
    waiting: int = 0         # asked of an online provider: the worker ends them
    failures: list[tuple[int, str]] = field(default_factory=list)   # (order id, code)
    batches: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "orders": self.orders, "tickets": self.tickets,
                "amount": self.amount, "finished": self.finished, "waiting": self.waiting,
                "failures": [{"order_id": o, "error": c} for o, c in self.failures],
                "batches": self.batches}


def remaining(engine: sa.Engine, session_id: int) -> int:
    """How many paid orders of the session a bulk refund has still to do."""
    with engine.connect() as conn:
        return len(orders_to_refund(conn, session_id, 0, 10**9))


def refund_session(engine: sa.Engine, session_id: int, now: datetime | None = None, *,
                   batch: int = 50,
                   after_batch: Callable[[BulkReport], None] | None = None) -> BulkReport:
    """Refund every paid order of a cancelled session in full, ``batch`` orders per
    transaction: each a request by whoever cancelled the session, approved by the system.
    ``after_batch`` is told after each committed batch (progress). Stopped anywhere, a run
    again does only what is left: an order's live tickets are in a request exactly once."""
    now = now or utcnow()
    with engine.connect() as conn:
        maker = cancelled_by(conn, session_id)
    report, after = BulkReport(session_id), 0
    while True:
        with engine.begin() as conn:
            ids = orders_to_refund(conn, session_id, after, batch)
            for order_id in ids:
                _refund_order(conn, order_id, maker, now, report)
        if not ids:
            return report
        after = ids[-1]
        report.batches += 1
        if after_batch is not None:
            after_batch(report)


def refund_cancelled_handler(engine: sa.Engine, payload: dict[str, Any],
                            now: datetime) -> None:
    """The worker's handler of the job a cancellation writes (apart: batches are their own
    transactions). Orders it could not refund fail the job, which is tried again later (it
    does only what is left) and stays dead for ops to see after its attempts."""
    report = refund_session(engine, payload["session_id"], now)
    log.info("session %s refunded: %s", payload["session_id"], report.as_json())
    if report.failures:
        raise RefundError("bulk_refund_incomplete", session_id=payload["session_id"],
                          failed=len(report.failures),
                          codes=", ".join(sorted({c for _o, c in report.failures})))


def _refund_order(conn: sa.Connection, order_id: int, maker: str, now: datetime,
                  report: BulkReport) -> None:
    try:
        with conn.begin_nested():
            rid = request_refund(conn, order_id, None, maker, BULK_REASON, now, bulk=True)
            state = approve_refund(conn, rid, BULK_CHECKER, now, supervisor=True,
                                   note=BULK_REASON)
    except HubError as e:
        log.error("bulk refund: order %s: %s", order_id, e)
        report.failures.append((order_id, e.code))
        return
    r = refund_request(conn, rid)
    report.orders += 1
    report.amount += r.amount
    report.tickets += len(request_lines(conn, rid))
    if state == "succeeded":
        report.finished += 1
    else:
        report.waiting += 1
