"""An approved refund request end to end through the sandbox, on both databases: the order is
paid by the provider's signed notification, a refund is asked for and approved by two people,
the worker's job asks the provider (no transaction open), and the provider's refund
notification ends the request — seats back on sale only then; a refund the provider fails
leaves the request failed and the seat out of sale."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.core.jobs import Tasks, run_one
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory.tables import session_seats
from cloud.payments.checkout import start_payment
from cloud.payments.refund_approval import REQUEST_JOB, approve_refund, request_refund_handler
from cloud.payments.tables import payment_refunds
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order
from cloud.sales.refunds import request_refund
from cloud.sales.tables import orders, refund_requests, tickets
from tests.cloud.payments.conftest import seat_sale


def _paid_online(app, sandbox, name: str, faults=()):
    """An order of seat 1, paid through the sandbox (the notification captures it)."""
    engine = app.extensions["db"]
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        session = seat_sale(conn, seats=2)
        made = create_order(conn, OrderRequest(session, (LineRequest(seat_id=1),),
                                               actor="clerk"))
    if faults:
        sandbox.control("POST", "/_sandbox/faults", json={"faults": list(faults)})
    with engine.begin() as conn:
        started = start_payment(conn, app.extensions["payment_providers"][name], made.order_id,
                                made.total, "Final", made.expires_at, notify_url=_url(app, name))
    sandbox.control("POST", f"/_sandbox/pay/{started.out_trade_no}", json={"result": "pay"})
    sandbox.wait(started.out_trade_no, acked=1, settled=1)
    with engine.connect() as conn:
        assert conn.execute(sa.select(orders.c.state)).scalar() == "paid"
    return session, made.order_id, started.out_trade_no


def _url(app, name: str) -> str:
    return app.config["HUB_PUBLIC_URL"] + "/api/v1/payments/notify/" + name


def _approve_and_send(app, name: str, order_id: int) -> None:
    engine = app.extensions["db"]
    with engine.begin() as conn:
        rid = request_refund(conn, order_id, None, "staff:1", "cannot come")
    with engine.begin() as conn:
        assert approve_refund(conn, rid, "staff:2") == "approved"
    tasks = Tasks()
    tasks.register(REQUEST_JOB, request_refund_handler(app.extensions["payment_providers"],
                                                       lambda n: _url(app, n)), apart=True)
    assert run_one(engine, tasks, "worker-1")


def _state(app):
    with app.extensions["db"].connect() as conn:
        return (conn.execute(sa.select(refund_requests.c.state)).scalar(),
                conn.execute(sa.select(payment_refunds.c.state)).scalar(),
                conn.execute(sa.select(tickets.c.state)).scalar(),
                conn.execute(sa.select(session_seats.c.status).where(
                    session_seats.c.seat_id == 1)).scalar(),
                conn.execute(sa.select(orders.c.state)).scalar())


@pytest.mark.parametrize("name", ["wechat", "alipay"])
def test_an_approved_refund_ends_by_the_providers_notification_and_then_frees_the_seat(
        hub_server, sandbox, name):
    _session, order_id, trade = _paid_online(hub_server, sandbox, name)
    _approve_and_send(hub_server, name, order_id)
    sandbox.wait(trade, acked=2, settled=1)
    assert _state(hub_server) == ("succeeded", "succeeded", "refunded", "available", "refunded")


def test_a_refund_the_provider_fails_leaves_the_request_failed_and_the_seat_out_of_sale(
        hub_server, sandbox):
    _session, order_id, trade = _paid_online(hub_server, sandbox, "wechat",
                                             faults=["refund_fail"])
    _approve_and_send(hub_server, "wechat", order_id)
    sandbox.wait(trade, acked=2, settled=1)
    assert _state(hub_server) == ("failed", "failed", "refunded", "sold", "paid")
