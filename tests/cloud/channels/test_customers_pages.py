"""The contract customers' pages on the test client, on both databases: the representatives'
own site (its own sign-in, cookie and CSRF token; a representative sees its own customer's
orders only), booking and booking from a holders file (CSV or .xlsx) with the refused rows
shown, and the staff's confirmation of an offline payment, which locks the order."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier
from cloud.catalog.tables import zones
from cloud.inventory import seats as inventory
from cloud.sales.tables import orders
from tests.cloud.channels.customerkit import PASSWORD, add_customer, add_rep
from tests.cloud.pagekit import build_hub, post, sign_in, text

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    with h.engine.begin() as conn:
        h.tier = add_price_tier(conn, h.session, "STD", "Standard", 18000, seat_category="std")
        inventory.confirm_configuration(conn, h.session)
        inventory.put_on_sale(conn, h.session)
        h.zone = conn.execute(sa.select(zones.c.id).where(zones.c.code == "A")).scalar()
        h.acme, h.beta = add_customer(conn, "ACME"), add_customer(conn, "BETA")
        add_rep(conn, h.acme, "acme-rep")
        add_rep(conn, h.beta, "beta-rep")
    yield h
    h.engine.dispose()


def token(client, path: str = "/customer/sign-in") -> str:
    return _CSRF.search(text(client.get(path))).group(1)


def rep(hub, username: str):
    client = hub.app.test_client()
    r = client.post("/customer/sign-in", data={"username": username, "password": PASSWORD,
                                               "csrf_token": token(client)})
    assert r.status_code == 303 and r.headers["Location"] == "/customer/orders", text(r)
    return client


def book(hub, client, count: int = 2) -> str:
    r = client.post("/customer/book", data={
        "session_id": hub.session, "kind": "seat", "zone_id": hub.zone,
        "price_tier_id": hub.tier, "count": count, "csrf_token": token(client, "/customer/book")})
    assert r.status_code == 303, text(r)
    return r.headers["Location"].rsplit("/", 1)[1]


def test_a_representative_signs_in_books_and_sees_its_own_customers_orders_only(hub):
    client = hub.app.test_client()
    r = client.post("/customer/sign-in", data={"username": "acme-rep", "password": "nope" * 4,
                                               "csrf_token": token(client)})
    assert r.status_code == 401 and "wicket_customer=" not in r.headers.get("Set-Cookie", "")
    assert client.get("/customer/orders").headers["Location"].startswith("/customer/sign-in")
    acme, beta = rep(hub, "acme-rep"), rep(hub, "beta-rep")
    number = book(hub, acme)
    page = text(acme.get(f"/customer/orders/{number}"))
    assert "waiting for payment" in page and "360.00 CNY" in page
    assert number in text(acme.get("/customer/orders"))
    assert number not in text(beta.get("/customer/orders"))
    for path in (f"/customer/orders/{number}", f"/customer/orders/{number}/confirm-cancel"):
        assert beta.get(path).status_code == 404
    r = beta.post(f"/customer/orders/{number}/cancel",
                  data={"csrf_token": token(beta, "/customer/orders")})
    assert r.status_code == 404
    r = acme.post("/customer/book", data={"session_id": hub.session, "count": 1})
    assert r.status_code == 400  # no CSRF token: nothing booked
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == 1


def test_staff_confirm_an_offline_payment_after_a_confirmation_and_the_order_locks(hub):
    acme = rep(hub, "acme-rep")
    number = book(hub, acme)
    staff = hub.app.test_client()
    sign_in(staff, "admin-user")
    listed = text(staff.get("/channels/customers"))
    assert "ACME" in listed and "BETA" in listed
    detail = text(staff.get(f"/channels/customers/{hub.acme}"))
    assert number in detail and "13800138000" not in detail and "Wang Fang" not in detail
    page = f"/channels/customers/{hub.acme}/orders/{number}/confirm-payment"
    assert "This cannot be undone" in text(staff.get(page))
    assert staff.get(f"/channels/customers/{hub.beta}/orders/{number}").status_code == 404
    r = post(staff, f"/channels/customers/{hub.acme}/orders/{number}/payment",
             {"reference": ""}, page=page)
    assert r.status_code == 422
    r = post(staff, f"/channels/customers/{hub.acme}/orders/{number}/payment",
             {"reference": "ICBC-2026-0001"}, page=page)
    assert r.status_code == 303, text(r)
    assert "paid, locked" in text(acme.get(f"/customer/orders/{number}"))
    r = acme.post(f"/customer/orders/{number}/cancel",
                  data={"csrf_token": token(acme, "/customer/orders")})
    assert r.status_code == 409
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(orders.c.state)).scalar() == "paid"
    sales = hub.app.test_client()  # the sales role does not run channels
    sign_in(sales, "sales-user")
    assert sales.get(f"/channels/customers/{hub.acme}").status_code == 403


def test_a_holders_file_with_bad_rows_shows_every_refused_row_and_books_nothing(hub):
    acme = rep(hub, "acme-rep")
    data = {"session_id": hub.session, "kind": "seat", "zone_id": hub.zone,
            "price_tier_id": hub.tier, "csrf_token": token(acme, "/customer/import")}
    bad = "Zhang Wei,passport,E12345678\n,passport,E7654321\nLi Na,licence,X1\n"
    r = acme.post("/customer/import", data={**data, "file": (io.BytesIO(bad.encode()),
                                                             "staff.csv")},
                  content_type="multipart/form-data")
    assert r.status_code == 422
    page = text(r)
    assert 'data-code="holder_name_missing"' in page and 'data-code="document_unknown_type"' \
        in page and "2 of 3 rows are refused" in page
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == 0
    r = acme.post("/customer/import", data={**data, "file": (io.BytesIO(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)), "staff.xls")},
        content_type="multipart/form-data")
    assert r.status_code == 422 and "save it as .xlsx or CSV" in text(r)
    book = openpyxl.Workbook()  # the same rows as an Excel workbook
    for row in bad.splitlines():
        book.active.append(row.split(","))
    xlsx = io.BytesIO()
    book.save(xlsx)
    r = acme.post("/customer/import", data={**data, "good_only": "yes",
                                            "file": (io.BytesIO(xlsx.getvalue()), "staff")},
                  content_type="multipart/form-data")
    assert r.status_code == 303, text(r)
    page = text(acme.get(r.headers["Location"]))
    assert "Zhang Wei" not in page and "E12345678" not in page and "180.00 CNY" in page
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == 1
