"""POST /api/v1/scan answered in front of Flask gives what the Flask view gives."""

from __future__ import annotations

import uuid

import pytest
from werkzeug.test import Client

from edge.allowlist import apply_changes
from edge.web.scan_path import ScanPath
from sync.changes import parse_change
from tests.edge.handheld_app import make_app
from tests.edge.test_handheld_api import paired, scan_body


@pytest.fixture
def app(conn, db_path, vault, holder_key, live_venue):
    """The handheld API's app over the sample venue (``live_venue``: around now)."""
    apply_changes(conn, vault, [parse_change(c) for c in live_venue.changes])
    return make_app(db_path, holder_key)


def _flask_only(app) -> Client:
    """The same application without the front path: every request goes to Flask's view."""
    return Client(app.wsgi_app.inner, response_wrapper=app.response_class)


def _both(app, conn, live_venue, request):
    front, flask_only = app.test_client(), _flask_only(app)
    headers = paired(front, conn, name="H")
    out = []
    for client, tid in ((front, 1002), (flask_only, 1006)):
        out.append(request(client, headers, tid))
    return out


def _same(a, b, ignore=()):
    assert a.status_code == b.status_code
    assert a.headers.get("Content-Type") == b.headers.get("Content-Type")
    for name in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                 "Content-Security-Policy", "Cache-Control", "WWW-Authenticate"):
        assert a.headers.get(name) == b.headers.get(name), name
    assert "Set-Cookie" not in a.headers and "Set-Cookie" not in b.headers
    ja, jb = a.get_json(), b.get_json()
    assert set(ja) == set(jb)
    for k in set(ja) - set(ignore):
        assert ja[k] == jb[k], k
    return ja


def test_the_front_path_answers_the_scan_route_only(app):
    assert isinstance(app.wsgi_app, ScanPath)
    r = app.test_client().get("/api/v1/scan")  # another method: Flask's 405, as JSON
    assert r.status_code == 405 and r.get_json()["error"] == "method_not_allowed"


def test_an_admission_is_answered_alike(app, conn, live_venue):
    a, b = _both(app, conn, live_venue, lambda c, h, tid: c.post(
        "/api/v1/scan", headers=h, json=scan_body(live_venue, tid, str(uuid.uuid4()))))
    ja = _same(a, b, ignore=("client_scan_id", "entry_id", "at", "ticket", "holder"))
    assert ja["reason"] == "OK" and ja["recorded"] is True and a.data.endswith(b"\n")


def test_a_refusal_with_detail_words_in_chinese_is_answered_alike(app, conn,
                                                                   live_venue):
    def twice(c, h, tid):
        body = scan_body(live_venue, tid, str(uuid.uuid4()))
        c.post("/api/v1/scan", headers=h, json=body)
        body["client_scan_id"] = str(uuid.uuid4())
        return c.post("/api/v1/scan", headers={**h, "Accept-Language": "zh-CN,en;q=0.5"},
                      json=body)

    a, b = _both(app, conn, live_venue, twice)
    ja = _same(a, b, ignore=("client_scan_id", "entry_id", "at", "ticket", "holder",
                             "first_entry_at"))
    assert ja["reason"] == "ALREADY_ENTERED" and ja["detail"] == "already inside"
    assert ja["detail_words"] != ja["detail"] and ja["words"] != "Already entered"


@pytest.mark.parametrize("case", ["no token", "wrong token", "not json", "not an object",
                                  "bad scan", "lane not allowed"])
def test_refusals_are_answered_alike(app, conn, live_venue, case):
    def send(c, h, tid):
        body = scan_body(live_venue, tid, str(uuid.uuid4()))
        if case == "no token":
            return c.post("/api/v1/scan", json=body)
        if case == "wrong token":
            return c.post("/api/v1/scan", json=body, headers={"Authorization": "Bearer nope"})
        if case == "not json":
            return c.post("/api/v1/scan", headers=h, data="{}", content_type="text/plain")
        if case == "not an object":
            return c.post("/api/v1/scan", headers=h, json=[1, 2])
        if case == "bad scan":
            return c.post("/api/v1/scan", headers=h, json={**body, "client_scan_id": "x"})
        return c.post("/api/v1/scan", headers=h, json={**body, "lane": "NOPE"})

    a, b = _both(app, conn, live_venue, send)
    ja = _same(a, b)
    assert a.status_code >= 400 and set(ja) == {"error", "message"}
    if case in ("no token", "wrong token"):
        assert a.status_code == 401 and a.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_internal_error_is_logged_and_answered_as_json(app, conn, live_venue, monkeypatch,
                                                          caplog):
    client = app.test_client()
    headers = paired(client, conn, name="H")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("edge.handhelds.scan", broken)
    r = client.post("/api/v1/scan", headers=headers,
                    json=scan_body(live_venue, 1002, str(uuid.uuid4())))
    assert r.status_code == 500 and r.get_json()["error"] == "internal_error"
    assert "boom" in caplog.text and "boom" not in r.get_data(as_text=True)
