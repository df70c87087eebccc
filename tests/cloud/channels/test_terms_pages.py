"""The distribution partners' staff pages and the portal's terms pages on the test client, on
both databases: a price added and ended after a confirmation, a bad field named on the page
with nothing stored, a code bound by staff, a day product's stock set; a supplier's portal
user binds its own code only when allowed, and sees no other supplier's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.channels import partner_terms as terms
from cloud.channels.products_admin import add_day_product
from cloud.channels.tables import agreed_prices
from cloud.inventory.tables import quotas
from cloud.ledger.partners import add_portal_user, create_partner
from sync.timeutil import CHINA, utcnow
from tests.cloud.pagekit import PASSWORD, build_hub, post, text

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    now = utcnow()
    with h.engine.begin() as conn:
        h.day = add_day_product(conn, "LAKE-DAY", "Lake day ticket", 12000, venue_id=h.venue,
                                actor="t")
        h.spot = create_partner(conn, "SPOT", "Lake Spot", "supplier", 7, "t", now)
        h.rival = create_partner(conn, "HOTEL", "Lake Hotel", "supplier", 7, "t", now)
        h.agency = create_partner(conn, "TRAVEL", "Travel Co", "distributor", 7, "t", now)
        add_portal_user(conn, h.spot, "spot-user", "Spot", PASSWORD, "t", now)
        h.mine = terms.code_id_of(conn, terms.create_code(conn, h.spot, h.day, "Lake", "t", now))
        h.theirs = terms.code_id_of(conn, terms.create_code(conn, h.rival, h.day, "Hotel", "t",
                                                            now))
    yield h
    h.engine.dispose()


def test_staff_add_a_price_see_a_bad_one_named_and_end_one_after_confirming(hub):
    admin = hub.client("admin")
    page = f"/channels/partners/{hub.agency}"
    r = post(admin, f"{page}/prices", {"what": "product", "product_id": hub.day,
                                       "amount": "12.x"}, page=page)
    assert r.status_code == 422 and "Price (yuan)" in text(r)
    r = post(admin, f"{page}/prices", {"what": "product", "product_id": hub.day,
                                       "amount": "99.50"}, page=page)
    assert r.status_code == 303
    assert "99.50" in text(admin.get(page))
    with hub.engine.connect() as conn:
        price = conn.execute(sa.select(agreed_prices.c.id, agreed_prices.c.amount)).one()
    assert price.amount == 9950
    confirm = f"{page}/prices/{price.id}/end"
    assert "cannot be undone" in text(admin.get(confirm))
    assert post(admin, confirm, {}, page=confirm).status_code == 303
    with hub.engine.connect() as conn:
        assert terms.price_at(conn, hub.agency, hub.day, at=utcnow() + timedelta(minutes=1)) \
            is None
    assert admin.get(f"/channels/partners/{hub.rival}/prices/{price.id}/end").status_code == 404


def test_staff_bind_a_code_and_the_seller_sees_the_product(hub):
    admin = hub.client("admin")
    page = f"/channels/codes/{hub.mine}"
    assert post(admin, f"{page}/bind", {"partner_id": hub.agency}, page=page).status_code == 303
    assert "TRAVEL" in text(admin.get(page))
    assert "LAKE-DAY" in text(admin.get(f"/channels/partners/{hub.agency}"))
    r = post(admin, f"{page}/bind", {"partner_id": hub.rival}, page=page)  # not a seller
    assert r.status_code == 422 and "Partner" in text(r)
    assert hub.client("sales").get(page).status_code == 403


def test_staff_set_a_days_stock_and_a_bad_day_is_named(hub):
    admin = hub.client("admin")
    page = f"/channels/products/{hub.day}"
    today = utcnow().astimezone(CHINA).date()
    r = post(admin, f"{page}/stock", {"first_day": today.isoformat(), "last_day": "soon",
                                      "capacity": "5"}, page=page)
    assert r.status_code == 422 and "Last day" in text(r)
    r = post(admin, f"{page}/stock", {"first_day": today.isoformat(),
                                      "last_day": (today + timedelta(days=1)).isoformat(),
                                      "capacity": "5"}, page=page)
    assert r.status_code == 303
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(quotas.c.capacity))
                            .where(quotas.c.kind == "day")).scalar() == 10


def _portal(hub, username: str):
    client = hub.app.test_client()
    token = _CSRF.search(text(client.get("/partner/sign-in"))).group(1)
    r = client.post("/partner/sign-in", data={"username": username, "password": PASSWORD,
                                              "csrf_token": token})
    assert r.status_code == 303
    return client


def test_a_supplier_binds_its_own_code_in_the_portal_only_when_allowed(hub):
    client = _portal(hub, "spot-user")
    codes = text(client.get("/partner/terms/codes"))
    assert "Lake Hotel" not in codes and "Hotel" not in re.sub(r"Lake Hotel", "", codes)
    token = _CSRF.search(codes).group(1)
    bind = {"partner_id": hub.agency, "csrf_token": token}
    r = client.post(f"/partner/terms/codes/{hub.mine}/bind", data=bind)
    assert r.status_code == 403
    with hub.engine.begin() as conn:
        terms.set_profile(conn, hub.spot, actor="t", now=utcnow(), may_bind_codes=True)
    assert client.post(f"/partner/terms/codes/{hub.mine}/bind", data=bind).status_code == 303
    assert client.post(f"/partner/terms/codes/{hub.theirs}/bind", data=bind).status_code == 404
    with hub.engine.connect() as conn:
        assert terms.bound_products(conn, hub.agency, utcnow()) == [hub.day]
    assert client.post(f"/partner/terms/codes/{hub.mine}/bind",
                       data={"partner_id": hub.agency}).status_code == 400  # no CSRF token
    assert client.get("/partner/terms/products").status_code == 404  # a supplier sells none
    assert hub.app.test_client().get("/partner/terms/codes").status_code == 303  # signed out
