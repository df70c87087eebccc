"""The public pages over HTTP: the language is in the address, the browsing pages are kept a
moment and sent with public caching headers and an ETag, what is left is said in words, and a
session the public may not see is not found — on both databases."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from cloud.catalog.tables import seats
from cloud.inventory.tables import session_seats
from tests.cloud.storefront.shopkit import build_shop


def _text(r) -> str:
    return r.get_data(as_text=True)


def test_the_way_in_follows_the_remembered_language(shop):
    c = shop.app.test_client()
    r = c.get("/shop/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/shop/zh/")
    r = c.get("/shop/language/en?next=/shop/zh/search%3Fq%3Dgala")
    assert r.status_code == 303 and r.headers["Location"] == "/shop/en/search?q=gala"
    assert "wicket_lang=en" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    r = c.get("/shop/", headers={"Accept-Language": "zh-CN"})
    assert r.headers["Location"].endswith("/shop/en/")
    # never sent off the site, nor outside the shop
    for bad in ("https://evil.example/", "//evil.example/", "/admin"):
        r = c.get("/shop/language/zh", query_string={"next": bad})
        assert r.headers["Location"] == "/shop/zh/"
    assert c.get("/shop/fr/").status_code == 404
    assert c.get("/shop/language/fr").status_code == 404


def test_home_lists_what_is_on_sale_in_the_address_language(shop):
    c = shop.app.test_client()
    zh, en = _text(c.get("/shop/zh/")), _text(c.get("/shop/en/"))
    assert '<html lang="zh-Hans">' in zh and "正在销售" in zh
    assert '<html lang="en">' in en and "On sale" in en
    for page in (zh, en):
        assert "100% Final" in page and "Heats" in page and "Relay" in page
        assert "Rehearsal" not in page
    assert "From 380.00 CNY" in en and "Postponed to this date" in en
    # the other language's link goes through the switch, back to the same page
    assert 'href="/shop/language/en?next=/shop/zh/"' in zh


def test_browsing_pages_are_cacheable_and_answer_304(shop):
    c = shop.app.test_client()
    r = c.get(f"/shop/en/sessions/{shop.final}")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "public, max-age=1"
    assert r.headers["Content-Language"] == "en"
    assert "Set-Cookie" not in r.headers and "csrf" not in _text(r)
    again = c.get(f"/shop/en/sessions/{shop.final}", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_a_kept_page_is_served_without_the_database_until_it_is_stale(hub_url, key_store):
    shop = build_shop(hub_url, AVAILABILITY_MAX_AGE=3600)
    try:
        c = shop.app.test_client()
        first = _text(c.get(f"/shop/en/sessions/{shop.final}"))
        with shop.engine.begin() as conn:
            conn.execute(sa.update(session_seats).where(session_seats.c.session_id == shop.final)
                         .values(status="sold"))
        assert _text(c.get(f"/shop/en/sessions/{shop.final}")) == first
        fresh = build_shop_app_view(shop)
        assert "Sold out" in fresh and "Plenty left" not in fresh
    finally:
        shop.engine.dispose()


def build_shop_app_view(shop) -> str:
    """The session page as a process that has kept nothing yet renders it."""
    from cloud.app import create_app

    app = create_app({**shop.app.config, "AVAILABILITY_MAX_AGE": 0})
    try:
        return _text(app.test_client().get(f"/shop/en/sessions/{shop.final}"))
    finally:
        app.extensions["db"].dispose()


def test_the_session_page_says_prices_zones_and_what_is_left(shop):
    page = _text(shop.app.test_client().get(f"/shop/en/sessions/{shop.final}"))
    assert "880.00 CNY" in page and "380.00 CNY" in page
    assert "North Stand" in page and "South Stand" in page
    # South Stand has 4 seats free: few (10 or fewer); North Stand 11 of 12: plenty
    zones = dict(re.findall(r'zones/\d+">([^<]+)</a>\s*<span class="level (\w+)"', page))
    assert zones == {"North Stand": "plenty", "South Stand": "few"}
    zh = _text(shop.app.test_client().get(f"/shop/zh/sessions/{shop.final}"))
    assert "余票紧张" in zh
    soon = _text(shop.app.test_client().get(f"/shop/en/sessions/{shop.heats}"))
    assert "On sale from" in soon and 'class="countdown" data-until=' in soon


def test_the_zone_map_draws_each_seat_with_its_price_and_greys_what_is_taken(shop):
    page = _text(shop.app.test_client().get(
        f"/shop/en/sessions/{shop.final}/zones/{shop.zones['A']}"))
    drawn = re.findall(r'<rect [^>]*fill="(#[0-9a-f]+)"\s+data-seat="(\d+)" '
                       r'data-status="(\w+)"', page)
    assert len(drawn) == 12
    with shop.engine.connect() as conn:
        sold = conn.execute(sa.select(seats.c.id).where(
            seats.c.zone_id == shop.zones["A"], seats.c.row == "2", seats.c.number == "1")
        ).scalar_one()
    by_seat = {int(seat): (colour, status) for colour, seat, status in drawn}
    assert by_seat[sold] == ("#c8c8c8", "sold")
    colours = {colour for colour, _, status in drawn if status == "free"}
    assert len(colours) == 2 and "#c8c8c8" not in colours  # one colour per price tier
    assert "Row 1, seat 1 · 880.00 CNY" in page
    assert 'role="img"' in page and 'aria-label="Seats of North Stand"' in page


@pytest.mark.parametrize("path", ["/shop/en/sessions/{hidden}", "/shop/en/sessions/99999",
                                  "/shop/en/events/99999",
                                  "/shop/en/sessions/{final}/zones/99999",
                                  "/shop/en/sessions/{hidden}/zones/{zone}"])
def test_what_the_public_may_not_see_is_not_found(shop, path):
    r = shop.app.test_client().get(path.format(hidden=shop.hidden, final=shop.final,
                                               zone=shop.zones["A"]))
    assert r.status_code == 404 and "Not found" in _text(r)
    assert "Rehearsal" not in _text(r)


def test_a_search_names_the_field_it_could_not_read(shop):
    c = shop.app.test_client()
    r = c.get("/shop/en/search?date=2027-13-45&venue=abc")
    assert r.status_code == 400
    page = _text(r)
    assert 'id="date-error">Not a date.' in page
    assert 'id="venue-error">Choose a venue from the list.' in page
    r = c.get("/shop/en/search", query_string={"q": "x" * 101})
    assert r.status_code == 400 and 'id="q-error"' in _text(r)
    r = c.get("/shop/en/search", query_string={"q": "a\x00b", "discipline": "\x00"})
    assert r.status_code == 400 and 'id="q-error"' in _text(r)
    assert 'id="discipline-error"' in _text(r)
    found = _text(c.get("/shop/en/search", query_string={"q": "gala",
                                                         "discipline": "swimming"}))
    assert "Heats" in found and "100% Final" not in found
    nothing = _text(c.get("/shop/en/search", query_string={"q": "zz-nothing"}))
    assert "No session on sale matches" in nothing


def test_every_page_is_sent_with_the_security_headers(shop):
    c = shop.app.test_client()
    for path in ("/shop/en/", f"/shop/en/sessions/{shop.final}", "/shop/en/sign-in",
                 "/shop/en/sessions/99999"):
        for _ in range(2):  # rendered, then from the page cache
            r = c.get(path)
            assert r.headers["X-Frame-Options"] == "DENY", path
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], path
            assert r.headers["X-Content-Type-Options"] == "nosniff", path
