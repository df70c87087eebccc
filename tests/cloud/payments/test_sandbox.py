"""The sandbox as a real process and the hub served beside it: payments paid end to end with
their notifications retried until the hub's endpoint takes them, duplicates and faults
refused or ignored, refunds ending later, statements read. Every wait is for an event the
sandbox reports (its /_sandbox/wait), never a sleep."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.payments.checkout import settle_payment, start_payment
from cloud.payments.refunds import request_refund, send_refund, settle_refund
from cloud.payments.tables import payment_notifications, payment_refunds, payments

PROVIDERS = ["wechat", "alipay"]


def _start(app, name: str, order_id: int = 1, amount: int = 12_345):
    adapter = app.extensions["payment_providers"][name]
    url = app.config["HUB_PUBLIC_URL"] + "/api/v1/payments/notify/" + name
    with app.extensions["db"].begin() as conn:
        return start_payment(conn, adapter, order_id, amount, "Final · 2 tickets",
                             datetime.now(UTC) + timedelta(minutes=15), notify_url=url)


def _payment(app, payment_id: int):
    with app.extensions["db"].connect() as conn:
        return conn.execute(sa.select(payments).where(payments.c.id == payment_id)).one()


def _notifications(app) -> int:
    with app.extensions["db"].connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(payment_notifications)
                            ).scalar_one()


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_buyer_pays_and_the_signed_notification_reaches_the_hub(hub_server, sandbox, name):
    checkout = _start(hub_server, name)
    assert checkout.state == "pending" and checkout.qr_text.endswith(checkout.out_trade_no)
    sandbox.control("POST", f"/_sandbox/pay/{checkout.out_trade_no}", json={"result": "pay"})
    sandbox.wait(checkout.out_trade_no, acked=1, settled=1)
    p = _payment(hub_server, checkout.payment_id)
    assert (p.state, p.amount, p.order_id) == ("succeeded", 12_345, 1)
    assert p.provider_reference and p.succeeded_at is not None
    calls = [r for r in sandbox.control("GET", "/_sandbox/requests")["requests"]
             if r["out_trade_no"] == checkout.out_trade_no]
    assert all(r["signed"] for r in calls)
    # WeChat's amounts are whole fen; Alipay's two-decimal yuan
    assert calls[0]["amount"] == ({"total": 12_345, "currency": "CNY"} if name == "wechat"
                                  else "123.45")
