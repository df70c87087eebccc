"""An open payment whose order can no longer take it is closed at its provider by the
worker's follow-up round, against the payment sandbox as a real process, on SQLite and
PostgreSQL: the buyer can no longer pay the old QR code; and a buyer who paid before the
close is not lost: the payment is learnt by query and placed as any other (here refunded,
its order being cancelled). No sleeps: the round is called, the sandbox answers at once."""

from __future__ import annotations

from datetime import timedelta

import requests
import sqlalchemy as sa

from cloud.core.audit import audit_log
from cloud.core.jobs import jobs
from cloud.payments.capturing import REFUND_JOB, follow_up
from cloud.payments.checkout import start_payment
from cloud.payments.tables import payments
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import cancel_order, create_order
from cloud.sales.tables import orders, tickets
from sync.timeutil import utcnow
from tests.cloud.payments.conftest import seat_sale


def _url(app, name: str) -> str:
    return app.config["HUB_PUBLIC_URL"] + "/api/v1/payments/notify/" + name


def _waiting(app, name: str):
    """An order of one seat and its payment with ``name``, opened at the sandbox, unpaid."""
    engine = app.extensions["db"]
    with engine.begin() as conn:
        session = seat_sale(conn, seats=1)
        made = create_order(conn, OrderRequest(session, (LineRequest(seat_id=1),),
                                               actor="clerk"))
    with engine.begin() as conn:
        started = start_payment(conn, app.extensions["payment_providers"][name], made.order_id,
                                made.total, "Final", made.expires_at, notify_url=_url(app, name))
    assert started.state == "pending"
    return made, started


def _round(app, now):
    """One round of the worker's payments follow-up; how many items it took."""
    task = follow_up(app.extensions["payment_providers"], lambda name: _url(app, name))
    return task(app.extensions["db"], now)


def _read(app, order_id: int):
    with app.extensions["db"].connect() as conn:
        return (conn.execute(sa.select(payments.c.state)).scalar_one(),
                conn.execute(sa.select(orders.c.state).where(orders.c.id == order_id)).scalar(),
                conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar_one(),
                conn.execute(sa.select(jobs.c.kind, jobs.c.payload)
                             .where(jobs.c.kind == REFUND_JOB)).all())


def test_a_lapsed_orders_payment_is_closed_at_the_provider_and_cannot_be_paid_after(
        hub_server, sandbox):
    app = hub_server
    made, started = _waiting(app, "wechat")
    lapsed = made.expires_at + timedelta(seconds=1)  # lazily expired: nobody tidied it
    assert _round(app, lapsed) == 1
    assert _read(app, made.order_id) == ("closed", "pending_payment", 0, [])
    closes = [r for r in sandbox.control("GET", "/_sandbox/requests")["requests"]
              if r["out_trade_no"] == started.out_trade_no and r["api"].endswith("/close")]
    assert [r["signed"] for r in closes] == [True]
    adapter = app.extensions["payment_providers"]["wechat"]
    assert adapter.query(started.out_trade_no).state == "closed"
    adapter.close(started.out_trade_no)  # closed already (ORDER_CLOSED) is closed
    # the buyer scans the old code and pays: refused, and nothing reaches the hub
    page = requests.post(started.qr_text, data={"result": "pay"}, timeout=30)
    assert page.status_code == 409 and "Not paid" in page.text and 'value="pay"' not in page.text
    assert sandbox.control("GET", "/_sandbox/deliveries",
                           params={"out_trade_no": started.out_trade_no})["deliveries"] == []
    assert _round(app, lapsed) == 0  # nothing left to ask
    assert _read(app, made.order_id) == ("closed", "pending_payment", 0, [])
    with app.extensions["db"].connect() as conn:
        audit = conn.execute(sa.select(audit_log.c.actor, audit_log.c.after).where(
            audit_log.c.action == "payment.closed")).one()
    assert audit.after["out_trade_no"] == started.out_trade_no


def test_a_trade_paid_before_the_close_is_learnt_by_query_and_placed_as_any_payment(
        hub_server, sandbox):
    app = hub_server
    sandbox.control("POST", "/_sandbox/faults", json={"faults": ["no_callback"]})
    made, started = _waiting(app, "alipay")
    # the buyer pays; its notification has not come (never will) when the order is cancelled
    sandbox.control("POST", f"/_sandbox/pay/{started.out_trade_no}", json={"result": "pay"})
    with app.extensions["db"].begin() as conn:
        cancel_order(conn, made.order_id)
    assert _round(app, utcnow()) == 1  # at once, not two minutes on: its order is done
    calls = [r["api"] for r in sandbox.control("GET", "/_sandbox/requests")["requests"]
             if r["out_trade_no"] == started.out_trade_no]
    assert calls[-2:] == ["alipay.trade.close", "alipay.trade.query"]
    state, order_state, issued, refunds = _read(app, made.order_id)
    assert (state, order_state, issued) == ("succeeded", "cancelled", 0)
    [(_kind, payload)] = refunds  # the money goes back through the worker's refund job
    assert (payload["amount"], payload["reason"]) == (made.total, "cancelled")
