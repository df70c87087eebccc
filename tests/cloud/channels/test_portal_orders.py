"""The partner portal's orders on the test client (both databases): a distributor orders day
tickets through the form, paid from its account, and sees their codes (its pages never a 5xx
under hostile query strings); another partner finds
no such order; an order the account cannot cover is refused in words with nothing stored;
paying, cancelling and giving tickets back each ask first."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.channels import accounts
from cloud.channels import partner_terms as terms
from cloud.channels.products_admin import add_day_product, set_daily_stock
from cloud.channels.tables import channels
from cloud.ledger.partners import add_portal_user, create_partner
from cloud.sales.tables import orders, tickets
from sync.timeutil import CHINA, utcnow
from tests.cloud.pagekit import PASSWORD, build_hub, portal_client, text
from tests.webfuzz import fuzz

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_NUMBER = re.compile(r"/partner/orders/([A-Za-z0-9-]+)$")


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    now = utcnow()
    h.day = (now.astimezone(CHINA) + timedelta(days=1)).date()
    with h.engine.begin() as conn:
        h.lake = add_day_product(conn, "LAKE-DAY", "Lake day ticket", 12000, venue_id=h.venue,
                                 actor="t")
        set_daily_stock(conn, h.lake, h.day - timedelta(days=1), h.day, 5, "t", now)
        spot = create_partner(conn, "SPOT", "Lake Spot", "supplier", 7, "t", now)
        code = terms.code_id_of(conn, terms.create_code(conn, spot, h.lake, "Lake", "t", now))
        h.travel = create_partner(conn, "TRAVEL", "Travel Co", "distributor", 7, "t", now)
        h.agent = create_partner(conn, "AGENT", "Agent Co", "agent", 7, "t", now)
        for partner, user in ((h.travel, "travel-user"), (h.agent, "agent-user"),
                              (spot, "spot-user")):
            add_portal_user(conn, partner, user, user, PASSWORD, "t", now)
        for partner in (h.travel, h.agent):
            terms.bind(conn, code, partner, "t", now)
            terms.add_price(conn, partner, product_id=h.lake, amount=9000,
                            effective_from=now, actor="t", now=now)
    yield h
    h.engine.dispose()


def portal(hub, username: str):
    return portal_client(hub.app, username)


def send(client, path: str, data: dict, page: str):
    token = _CSRF.search(text(client.get(page))).group(1)
    return client.post(path, data={**data, "csrf_token": token})


def order_form(client, quantity: int, day, pay: bool):
    data = {"product_id": "", "day": day.isoformat(), "quantity": str(quantity)}
    page = text(client.get("/partner/orders/new"))
    data["product_id"] = re.search(r'<option value="(\d+)"[^>]*>LAKE-DAY', page).group(1)
    if pay:
        data["confirm"] = "yes"
    return send(client, "/partner/orders/new", data, "/partner/orders/new")


def count(hub, table) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def top_up(hub, partner: int, amount: int) -> None:
    with hub.engine.begin() as conn:
        accounts.top_up(conn, partner, amount, "CNY", f"BANK-{partner}", "t", utcnow())


def test_day_tickets_ordered_through_the_form_are_paid_from_the_account_and_shown(hub):
    top_up(hub, hub.travel, 50_000)
    client = portal(hub, "travel-user")
    form = text(client.get("/partner/orders/new"))
    assert "LAKE-DAY" in form and "90.00 CNY" in form and "500.00 CNY" in form
    assert re.search(rf"{hub.day.isoformat()}</th>", form)  # the next days' stock shown
    r = order_form(client, 2, hub.day, pay=True)
    assert r.status_code == 303
    number = _NUMBER.search(r.headers["Location"]).group(1)
    page = text(client.get(f"/partner/orders/{number}"))
    assert 'id="order-state">paid<' in page and "180.00 CNY" in page and page.count("<svg") == 2
    with hub.engine.connect() as conn:
        issued = conn.execute(sa.select(tickets.c.number, tickets.c.code)).all()
        assert accounts.balances(conn, hub.travel)["prepaid"] == 32_000
        made = conn.execute(sa.select(channels.c.code, channels.c.kind)).all()
    assert len(issued) == 2 and all(t.number in page and t.code in page for t in issued)
    assert made == [("TRAVEL-portal", "distributor")]  # made on the first order here
    assert order_form(client, 1, hub.day, pay=False).status_code == 303
    assert count(hub, channels) == 1  # the next order goes through the same channel
    listed = text(client.get("/partner/orders"))
    assert number in listed and listed.index("held, waiting for payment") < listed.index(
        number)  # newest first
    assert client.get("/partner/orders?before=x").status_code == 400
    pages = {p: p for p in ("/partner/orders", "/partner/orders/new", f"/partner/orders/{number}")}
    assert fuzz(hub.app, client, pages) == []  # hostile query strings: never a 5xx


def test_another_partner_finds_no_such_order_and_a_supplier_orders_nothing(hub):
    top_up(hub, hub.travel, 50_000)
    travel = portal(hub, "travel-user")
    number = _NUMBER.search(order_form(travel, 1, hub.day, pay=False)
                            .headers["Location"]).group(1)
    agent = portal(hub, "agent-user")
    assert agent.get(f"/partner/orders/{number}").status_code == 404
    assert number not in text(agent.get("/partner/orders"))
    r = send(agent, f"/partner/orders/{number}/cancel", {"confirmed": "yes"},
             "/partner/orders")
    assert r.status_code == 404
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(orders.c.state)).scalar_one() == "pending_payment"
    supplier = portal(hub, "spot-user")
    r = supplier.get("/partner/orders/new")
    assert r.status_code == 403 and "Only distributors and agents order" in text(r)
    assert supplier.get("/partner/orders").status_code == 403


def test_an_order_the_account_cannot_cover_is_refused_in_words_and_stores_nothing(hub):
    top_up(hub, hub.agent, 5_000)
    client = portal(hub, "agent-user")
    r = order_form(client, 1, hub.day, pay=True)
    assert r.status_code == 409
    page = text(r)
    assert "The balance and credit cover 50.00 CNY: 90.00 CNY is needed." in page
    assert 'name="quantity" value="1"' in page and 'name="confirm" value="yes" checked' in page
    assert (count(hub, orders), count(hub, tickets), count(hub, channels)) == (0, 0, 0)
    send(client, "/partner/language", {"lang": "zh", "next": "/partner/orders/new"},
         "/partner/orders/new")
    r = order_form(client, 1, hub.day, pay=True)
    assert r.status_code == 409 and "余额和授信" in text(r)
    bad = send(client, "/partner/orders/new", {"product_id": "1", "day": hub.day.isoformat(),
                                                "quantity": "51"}, "/partner/orders/new")
    assert bad.status_code == 422 and count(hub, orders) == 0


def test_cancelling_and_giving_tickets_back_ask_first(hub):
    top_up(hub, hub.travel, 50_000)
    client = portal(hub, "travel-user")
    held = _NUMBER.search(order_form(client, 1, hub.day, pay=False)
                          .headers["Location"]).group(1)
    page = f"/partner/orders/{held}"
    ask = send(client, f"{page}/cancel", {}, page)
    assert ask.status_code == 200 and "Yes, cancel it" in text(ask)
    assert 'state">held, waiting for payment<' in text(client.get(page))  # not yet
    assert send(client, f"{page}/cancel", {"confirmed": "yes"}, page).status_code == 303
    assert 'id="order-state">cancelled<' in text(client.get(page))
    paid = _NUMBER.search(order_form(client, 2, hub.day, pay=True)
                          .headers["Location"]).group(1)
    page = f"/partner/orders/{paid}"
    with hub.engine.connect() as conn:
        first = conn.execute(sa.select(tickets.c.number).order_by(tickets.c.id)).scalars().first()
    ask = send(client, f"{page}/refund", {"tickets": [first]}, page)
    assert ask.status_code == 200 and "Yes, give them back" in text(ask)
    with hub.engine.connect() as conn:
        assert accounts.balances(conn, hub.travel)["prepaid"] == 32_000  # nothing back yet
    done = send(client, f"{page}/refund", {"tickets": [first], "confirmed": "yes"}, page)
    assert done.status_code == 303
    with hub.engine.connect() as conn:
        states = dict(conn.execute(sa.select(tickets.c.number, tickets.c.state)).all())
        assert accounts.balances(conn, hub.travel)["prepaid"] == 41_000
    assert states[first] == "refunded" and sorted(states.values()) == ["issued", "refunded"]
    again = send(client, f"{page}/refund", {"tickets": [first], "confirmed": "yes"}, page)
    assert again.status_code == 422  # no longer valid: nothing more given back
