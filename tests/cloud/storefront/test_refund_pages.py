"""A buyer asks for a refund on the public site: the tickets chosen, the policy and the amount
shown before anything is asked, then a request made by the buyer for staff to decide — and
refusals said in words (the window closed) with nothing asked. On both databases."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from cloud.sales.orders import capture
from cloud.sales.refunds import set_policy
from cloud.sales.tables import orders, refund_requests, tickets
from sync.timeutil import utcnow
from tests.cloud.storefront.test_checkout import _buyer_id, _seats, _signed_in


def _paid_order(shop, client, token) -> tuple[str, list[str]]:
    r = client.post(f"/shop/en/sessions/{shop.final}/checkout", data={
        "seat": _seats(shop, "A", "1", 1, 2), "csrf_token": token})
    number = r.headers["Location"].rsplit("/", 1)[1]
    with shop.engine.begin() as conn:
        o = conn.execute(sa.select(orders).where(orders.c.number == number)).one()
        capture(conn, o.id, o.total, "wechat", f"tx-{number}")
        issued = conn.execute(sa.select(tickets.c.number).where(tickets.c.order_id == o.id)
                              .order_by(tickets.c.id)).scalars().all()
    return number, issued


def test_the_amount_is_shown_before_the_buyer_asks(shop):
    c, token = _signed_in(shop.app, shop.engine)
    with shop.engine.begin() as conn:
        set_policy(conn, shop.final, None, "percent", 10, actor="test")
    number, issued = _paid_order(shop, c, token)
    page = c.get(f"/shop/en/orders/{number}").get_data(as_text=True)
    assert f'href="/shop/en/orders/{number}/refund"' in page
    choose = c.get(f"/shop/en/orders/{number}/refund").get_data(as_text=True)
    assert all(f'value="{n}"' in choose for n in issued)
    quoted = c.get(f"/shop/en/orders/{number}/refund?ticket={issued[0]}").get_data(as_text=True)
    assert re.search(r'id="refund-amount">792\.00 CNY<', quoted)  # 880.00 less 10 %
    assert "88.00 CNY (10%)" in quoted
    with shop.engine.connect() as conn:  # nothing asked yet
        assert conn.execute(sa.select(sa.func.count()).select_from(refund_requests)
                            ).scalar_one() == 0
    r = c.post(f"/shop/en/orders/{number}/refund", data={"ticket": issued[0],
                                                         "reason": "cannot come",
                                                         "csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"].endswith("?refund=asked")
    with shop.engine.connect() as conn:
        asked = conn.execute(sa.select(refund_requests)).one()
    assert asked.maker == f"buyer:{_buyer_id(shop.engine)}" and asked.amount == 79200
    assert asked.state == "pending" and asked.reason == "cannot come"
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "Your refund request is with customer service" in page
    assert "Asked for: customer service decides · 792.00 CNY" in page
    again = c.get(f"/shop/en/orders/{number}/refund").get_data(as_text=True)
    assert f'value="{issued[0]}" disabled' in again


def test_a_closed_window_is_said_and_nothing_is_asked(shop):
    c, token = _signed_in(shop.app, shop.engine)
    with shop.engine.begin() as conn:
        set_policy(conn, shop.final, utcnow() - timedelta(minutes=1), "none", 0, actor="test")
    number, issued = _paid_order(shop, c, token)
    r = c.post(f"/shop/en/orders/{number}/refund", data={"ticket": issued, "csrf_token": token})
    assert r.status_code == 409 and 'role="alert"' in r.get_data(as_text=True)
    with shop.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(refund_requests)
                            ).scalar_one() == 0


def test_another_buyer_cannot_ask_for_a_refund_of_an_order(shop):
    c, token = _signed_in(shop.app, shop.engine)
    number, issued = _paid_order(shop, c, token)
    other, other_token = _signed_in(shop.app, shop.engine, "13900139000")
    assert other.get(f"/shop/en/orders/{number}/refund").status_code == 404
    r = other.post(f"/shop/en/orders/{number}/refund", data={"ticket": issued,
                                                             "csrf_token": other_token})
    assert r.status_code == 404
    with shop.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(refund_requests)
                            ).scalar_one() == 0
