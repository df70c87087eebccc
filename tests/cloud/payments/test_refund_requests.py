"""An approved refund request end to end through the sandbox, on both databases: the order is
paid by the provider's signed notification, a refund is asked for and approved by two people,
the worker's job asks the provider (no transaction open), and the provider's refund
notification ends the request — seats back on sale only then; a refund the provider fails
leaves the request failed and the seat out of sale."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.jobs import Tasks, run_one
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.inventory.tables import session_seats
from cloud.payments.checkout import start_payment
from cloud.payments.refund_approval import REQUEST_JOB, approve_refund, request_refund_handler
from cloud.payments.tables import payment_refunds
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order
from cloud.sales.refunds import request_refund
from cloud.sales.tables import orders, refund_requests, tickets
from sync.timeutil import utcnow

SEATS = "level,zone,row,number,category\n" + "".join(f"L1,A,1,{n},std\n" for n in range(1, 3))


def _paid_online(app, sandbox, name: str, faults=()):
    """An order of seat 1, paid through the sandbox (the notification captures it)."""
    engine = app.extensions["db"]
    start = utcnow() + timedelta(days=10)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "Zone A")
        assert import_seats_csv(conn, venue, SEATS).ok
        session = create_session(conn, create_event(conn, "GAMES", "The Games"), venue,
                                 "Final", start, start + timedelta(hours=3))
        add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
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
