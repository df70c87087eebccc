"""The public site's doors, route by route: a visitor who is not signed in is sent to sign in
from every page that is a buyer's own, and nothing else answers an error of the hub's own;
every form sent without its token, or with another one, is refused and changes nothing —
also for a signed-in buyer. On both databases."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import url_for
from werkzeug.routing import IntegerConverter

from tests.cloud.storefront.test_checkout import _signed_in

# the buyer's own pages: signed-out visitors are sent to sign in
OWN = {"shop.account", "shop.checkout_page", "shop.place", "shop.order", "shop.pay",
       "shop.refund_page", "shop.ask_refund", "shop.sign_out_others", "shop.verify_me",
       "shop.add_companion", "shop.remove_companion",
       # the presale (issue 18)
       "shop.apply_page", "shop.apply", "shop.applications", "shop.application",
       "shop.seats_page", "shop.choose_seats"}
SAMPLES = {"lang": "en", "code": "zh", "session_id": 1, "zone_id": 1, "event_id": 1,
           "number": "7QK4M2P9W3D", "companion_id": 1, "image_id": 1,  # an order nobody has
           "presale_id": 1}


def shop_routes(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/shop/"):
            continue
        values = {}
        for arg, conv in rule._converters.items():
            values[arg] = SAMPLES[arg] if not isinstance(conv, IntegerConverter) or \
                arg in SAMPLES else 1
        with app.test_request_context():
            url = url_for(rule.endpoint, **values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def _audit(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar()


def test_a_signed_out_visitor_is_sent_to_sign_in_from_a_buyer_s_own_pages(shop):
    routes = list(shop_routes(shop.app))
    assert OWN <= {e for e, _, _ in routes}
    client = shop.app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(
        "/shop/en/sign-in").get_data(as_text=True)).group(1)
    for endpoint, method, url in routes:
        r = client.open(url, method=method, data={"csrf_token": token})
        if endpoint in OWN:
            assert r.status_code == 303, (endpoint, method, r.status_code)
            assert r.headers["Location"].startswith("/shop/en/sign-in?next="), endpoint
        else:
            assert r.status_code < 500, (endpoint, method, r.status_code)


def test_every_form_without_its_token_is_refused_and_changes_nothing(shop):
    signed, _ = _signed_in(shop.app, shop.engine)
    posts = [(e, u) for e, m, u in shop_routes(shop.app) if m == "POST"]
    assert len(posts) >= 12
    before = _audit(shop.engine)
    for client in (shop.app.test_client(), signed):
        for endpoint, url in posts:
            for data in ({}, {"csrf_token": "forged"}):
                r = client.post(url, data=data)
                assert r.status_code == 400, (endpoint, r.status_code)
                assert "security token" in r.get_data(as_text=True), endpoint
    assert _audit(shop.engine) == before
    assert signed.get("/shop/en/account").status_code == 200  # still signed in
