"""The hub's two outside sites (cloud/web/outside.py) on the test client, on both databases: a
tampered cookie, or one site's cookie offered to the other, is no session and is dropped with
the answer; signing in again over a session that ended keeps the new one."""

from __future__ import annotations

import re
from unittest import mock

from cloud.app import create_app
from cloud.channels import customers
from cloud.core.db import init_db
from cloud.ledger.partners import add_portal_user, create_partner, sign_out_everywhere
from sync.timeutil import utcnow
from tests.cloud.channels.customerkit import add_customer, add_rep
from tests.cloud.pagekit import PASSWORD, SECRET, _hashed, text

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# (prefix, session cookie, user name, where a sign-in lands)
SITES = (("/partner", "wicket_partner", "org-user", "/partner/balance"),
         ("/customer", "wicket_customer", "acme-rep", "/customer/orders"))


def _sign_in(client, prefix: str, username: str, token: str | None = None):
    token = token or _CSRF.search(text(client.get(f"{prefix}/sign-in"))).group(1)
    return client.post(f"{prefix}/sign-in", data={"username": username, "password": PASSWORD,
                                                   "csrf_token": token})


def test_a_cookie_that_is_no_session_is_dropped_and_a_new_sign_in_over_it_holds(hub_url):
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "SECRET_KEY": SECRET})
    engine = app.extensions["db"]
    try:
        with engine.begin() as conn, \
                mock.patch("cloud.ledger.partners.hash_password", _hashed):
            org = create_partner(conn, "ORG", "Orchard Live", "organiser", 7, "test", utcnow())
            user = add_portal_user(conn, org, "org-user", "Li Lei", PASSWORD, "test", utcnow())
            rep = add_rep(conn, add_customer(conn, "ACME"), "acme-rep")
        signed = {}
        for prefix, cookie, username, home in SITES:
            client = app.test_client()
            assert _sign_in(client, prefix, username).headers["Location"] == home
            signed[prefix] = client, client.get_cookie(cookie, path=prefix).value
        for (prefix, cookie, _u, _h), other in zip(SITES, ("/customer", "/partner"), strict=True):
            value = signed[prefix][1]
            for offered in (value[:-3] + "abc", signed[other][1]):
                stranger = app.test_client()
                stranger.set_cookie(cookie, offered, path=prefix)
                r = stranger.get(f"{prefix}/")
                assert r.status_code == 303, (prefix, offered)
                assert stranger.get_cookie(cookie, path=prefix) is None, (prefix, offered)
        with engine.begin() as conn:  # every session begun before now ends
            sign_out_everywhere(conn, user, utcnow())
            customers.sign_out_everywhere(conn, rep.id, utcnow())
        for prefix, cookie, username, home in SITES:  # a form open from before, sent now
            client = signed[prefix][0]
            token = client.get_cookie(f"{cookie}_csrf", path=prefix).value
            assert _sign_in(client, prefix, username, token).headers["Location"] == home
            assert client.get(home).status_code == 200, prefix
    finally:
        engine.dispose()
