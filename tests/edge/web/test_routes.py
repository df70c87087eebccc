"""Default deny: every route of the app refuses a request without a valid staff session."""

from __future__ import annotations

import pytest

from edge.web.auth import own_auth
from tests.edge.web.conftest import PASSWORDS, Browser

OPEN = {"static", "auth.login", "auth.first_run", "auth.language"}
SAMPLE_VALUES = {"int": "1", "string": "N1", "path": "x", "default": "x"}


def _urls(app):
    for rule in app.url_map.iter_rules():
        values = {}
        for arg in rule.arguments:
            converter = type(rule._converters[arg]).__name__.replace("Converter", "").lower()
            values[arg] = SAMPLE_VALUES.get(converter, "1")
        with app.test_request_context():
            from flask import url_for
            url = url_for(rule.endpoint, **values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def _is_refusal(r) -> bool:
    if r.status_code == 302:
        return "/login" in r.headers["Location"] or "/first-run" in r.headers["Location"]
    return r.status_code in (400, 401, 403)


def test_every_route_refuses_without_a_session(app, users):
    routes = list(_urls(app))
    assert len(routes) > 25
    client = app.test_client()
    # a cookie with a CSRF token but no login: POSTs get past CSRF and meet the login check
    page = Browser(client)
    page.get("/login")
    checked = 0
    own = app.extensions.get("wicket_own_auth", set())  # each walks its own (handheld API)
    for endpoint, method, url in routes:
        if endpoint in OPEN or endpoint.split(".")[0] in own:
            continue
        for headers in ({}, {"X-Requested-With": "fetch", "Accept": "application/json"}):
            kw = {"headers": dict(headers)}
            if method != "GET":
                kw["headers"]["X-CSRF-Token"] = page.csrf
                kw["data"] = {"csrf_token": page.csrf}
            r = client.open(url, method=method, **kw)
            assert _is_refusal(r), (endpoint, method, url, r.status_code)
            if method != "GET":
                # and never because of a missing CSRF token alone: the login check refuses
                assert r.status_code != 400, (endpoint, method, url)
            checked += 1
    assert checked > 50


def test_a_forged_or_stale_session_cookie_is_refused(app, users):
    b = Browser(app.test_client())
    b.login("admin", PASSWORDS["admin"])
    assert b.get("/dashboard").status_code == 200
    # the same cookie after logout is worthless
    cookie = b.client.get_cookie("wicket_edge").value
    b.post("/logout")
    replay = app.test_client()
    replay.set_cookie("wicket_edge", cookie)
    r = replay.get("/dashboard")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    # a cookie not signed with the appliance's key is ignored
    forged = app.test_client()
    forged.set_cookie("wicket_edge", cookie[:-4] + "AAAA")
    assert forged.get("/dashboard").status_code == 302


@pytest.mark.parametrize("role, allowed", [("gate", False), ("supervisor", False)])
def test_admin_routes_refuse_lower_roles(app, as_role, role, allowed):
    b = as_role(role)
    refused = 0
    for endpoint, method, url in _urls(app):
        if endpoint.split(".")[0] not in ("devices", "venue", "emergency") \
                and endpoint != "admin.staff" and endpoint != "admin.staff_update":
            continue
        r = b.client.open(url, method=method, data={"csrf_token": b.csrf},
                          headers={"X-CSRF-Token": b.csrf})
        assert r.status_code == 403, (endpoint, method, r.status_code)
        refused += 1
    assert refused >= 12


def test_own_auth_blueprints_are_left_to_their_own_checks(app, users):
    from flask import Blueprint, request

    bp = Blueprint("tokens", __name__)

    @bp.route("/api/v1/ping", methods=["POST"])
    def ping():
        if request.headers.get("Authorization") != "Bearer good":
            return {"error": "unauthorized"}, 401
        return {"ok": True}

    own_auth(app, bp)
    app.register_blueprint(bp)
    client = app.test_client()
    assert client.post("/api/v1/ping").status_code == 401
    r = client.post("/api/v1/ping", headers={"Authorization": "Bearer good"})
    assert r.status_code == 200 and r.json == {"ok": True}
    # the staff pages still refuse the same client
    assert client.get("/dashboard").status_code == 302
