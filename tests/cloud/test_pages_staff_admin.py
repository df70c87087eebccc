"""An administrator runs staff accounts from the pages and the JSON API, on both databases:
disable and enable, role, password reset (the new password forced at next sign-in), sessions
ended, API tokens shown once, scoped, revoked; the audit log page with its filters and CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.core.audit import audit_log, record
from cloud.staff import tokens
from tests.cloud.pagekit import PASSWORD, build_hub, post, sign_in, text


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    yield h
    h.engine.dispose()


def audit(hub, action):
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(audit_log).where(audit_log.c.action == action)
                            .order_by(audit_log.c.id)).all()


def test_a_disabled_account_is_signed_out_after_a_confirmation(hub):
    admin, sales = hub.client("admin"), hub.client("sales")
    sid = hub.staff["sales"]
    page = f"/staff/{sid}"
    assert "Disable sales-user?" in text(admin.get(f"/staff/{sid}/confirm/disable"))
    r = post(admin, f"/staff/{sid}/disable", page=page)
    assert r.headers["Location"].endswith(f"/staff/{sid}/confirm/disable")
    assert sales.get("/conflicts").status_code == 403  # still signed in: nothing happened
    r = post(admin, f"/staff/{sid}/disable", {"confirm": "yes"}, page=page)
    assert "The account is disabled" in text(admin.get(r.headers["Location"]))
    assert sales.get("/").status_code == 303
    r = sales.post("/login", data={"username": "sales-user", "password": PASSWORD,
                                   "csrf_token": text(sales.get("/login")).split(
                                       'name="csrf_token" value="')[1].split('"')[0]})
    assert r.status_code == 401
    (row,) = audit(hub, "staff.disable")
    assert row.actor == f"staff:{hub.staff['admin']}" and row.source == "127.0.0.1"
    post(admin, f"/staff/{sid}/enable", page=page)
    sign_in(hub.app.test_client(), "sales-user")
    assert hub.client("sales").get(page).status_code == 403


def test_the_last_admin_stays_and_a_role_changes(hub):
    admin = hub.client("admin")
    me = hub.staff["admin"]
    r = post(admin, f"/staff/{me}/role", {"role": "ops"}, page=f"/staff/{me}")
    assert "the last enabled admin cannot be disabled or demoted" in text(admin.get(r.headers["Location"]))
    r = post(admin, f"/staff/{me}/disable", {"confirm": "yes"}, page=f"/staff/{me}")
    assert "cannot disable their own account" in text(admin.get(r.headers["Location"]))
    ops = hub.staff["ops"]
    post(admin, f"/staff/{ops}/role", {"role": "sales"}, page=f"/staff/{ops}")
    assert audit(hub, "staff.role")[0].after == {"role": "sales"}
    assert hub.client("ops").get("/conflicts").status_code == 403  # ops no longer


def test_a_reset_password_is_shown_once_and_must_be_replaced(hub):
    admin = hub.client("admin")
    ops = hub.staff["ops"]
    before = hub.client("ops")
    r = post(admin, f"/staff/{ops}/reset", {"confirm": "yes"}, page=f"/staff/{ops}")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    temporary = text(r).split('<code class="secret">')[1].split("<")[0]
    assert temporary not in text(admin.get(f"/staff/{ops}"))
    assert before.get("/conflicts").status_code == 303  # its session ended
    user = hub.app.test_client()
    r = sign_in(user, "ops-user", temporary)
    assert r.headers["Location"].endswith("/login/password")  # no session before a new one
    assert user.get("/conflicts").status_code == 303
    r = post(user, "/login/password", {"password": "qwertyuiop", "password_again": "qwertyuiop"},
             page="/login/password")
    assert r.status_code == 422 and "too easy to guess" in text(r)
    step_cookie = user.get_cookie("wicket_hub_session").value
    r = post(user, "/login/password", {"password": "Fresh-copper-kettle-19",
                                       "password_again": "Fresh-copper-kettle-19"},
             page="/login/password")
    assert r.status_code == 303
    assert user.get("/conflicts").status_code == 200
    copied = hub.app.test_client()  # the step's cookie, copied before the renewal
    copied.set_cookie("wicket_hub_session", step_cookie)
    r = copied.get("/login/password")
    assert r.status_code == 303 and r.headers["Location"].endswith("/login")
    r = post(user, "/staff/me/password", {"current": "Fresh-copper-kettle-19",
                                         "password": "Fresh-copper-kettle-19",
                                         "password_again": "Fresh-copper-kettle-19"},
             page="/staff/me/password")
    assert r.status_code == 422 and "differ" in text(r)
    assert temporary not in str(audit(hub, "staff.password_reset"))


def test_a_password_step_ends_the_session_the_browser_had(hub):
    admin = hub.client("admin")
    ops = hub.staff["ops"]
    r = post(admin, f"/staff/{ops}/reset", {"confirm": "yes"}, page=f"/staff/{ops}")
    temporary = text(r).split('<code class="secret">')[1].split("<")[0]
    signed_in = admin.get_cookie("wicket_hub_session").value
    # in the admin's browser, signed in, another account's password: a step is pending
    r = post(admin, "/login", {"username": "ops-user", "password": temporary},
             page=f"/staff/{ops}")
    assert r.status_code == 303 and r.headers["Location"].endswith("/login/password")
    copied = hub.app.test_client()  # the admin's cookie from before, copied
    copied.set_cookie("wicket_hub_session", signed_in)
    assert copied.get(f"/staff/{ops}").status_code == 303  # that session ended


def test_ending_sessions_and_the_last_sign_in_on_the_staff_page(hub):
    admin, sales = hub.client("admin"), hub.client("sales")
    sid = hub.staff["sales"]
    assert "from 127.0.0.1" in text(admin.get("/staff"))
    post(admin, f"/staff/{sid}/end-sessions", {"confirm": "yes"}, page=f"/staff/{sid}")
    assert sales.get("/conflicts").status_code == 303
    assert audit(hub, "staff.sessions_end")[0].after == {"sessions_ended": 1}
    assert audit(hub, "staff.sign_in")[0].source == "127.0.0.1"


def test_an_api_token_is_shown_once_scoped_and_revoked(hub):
    admin = hub.client("admin")
    me = hub.staff["admin"]
    page = f"/staff/{me}"
    r = post(admin, f"/staff/{me}/tokens", {"name": "report", "roles": "sales",
                                           "expires_at": "2099-01-01T00:00"}, page=page)
    token = text(r).split('<code class="secret">')[1].split("<")[0]
    assert token.startswith("wkt_") and token not in text(admin.get(page))
    api = hub.app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/staff", headers=bearer).status_code == 403
    r = post(admin, f"/staff/{me}/tokens", {"name": "bad", "roles": "root"}, page=page)
    assert "must be among" in text(admin.get(r.headers["Location"]))
    with hub.engine.connect() as conn:
        (made,) = tokens.list_tokens(conn, me)
    assert "Revoke the API token report?" in text(
        admin.get(f"/staff/{me}/tokens/{made.id}/revoke"))
    r = post(admin, f"/staff/{hub.staff['ops']}/tokens/{made.id}/revoke", {"confirm": "yes"},
             page=page)
    assert r.status_code == 404
    assert api.get("/api/v1/staff", headers=bearer).status_code == 403  # still a live token
    post(admin, f"/staff/{me}/tokens/{made.id}/revoke", {"confirm": "yes"}, page=page)
    assert api.get("/api/v1/staff", headers=bearer).status_code == 401


def test_only_admins_open_the_account_and_audit_pages(hub):
    for role in ("sales", "ops"):
        c = hub.client(role)
        for path in (f"/staff/{hub.staff['ops']}", "/audit", "/audit?format=csv"):
            assert c.get(path).status_code == 403, (role, path)
        assert c.get("/staff/me/password").status_code == 200


def test_the_audit_page_filters_pages_and_exports(hub):
    admin = hub.client("admin")
    with hub.engine.begin() as conn:
        for n in range(60):
            record(conn, "staff:99", "bulk.test", f"thing:{n}", None, {"n": n})
        record(conn, "system", "bulk.other", "=cmd|' /C calc'!A0", None, None)
    r = admin.get("/audit?action=bulk.test")
    assert r.status_code == 200 and "thing:59" in text(r) and "thing:9<" not in text(r)
    assert "thing:9<" in text(admin.get("/audit?action=bulk.test&page=2"))
    assert "thing:1<" not in text(admin.get("/audit?action=bulk.&actor=system"))
    assert "staff.sign_in" in text(admin.get("/audit?actor=admin-user&action=staff."))
    assert "thing:3<" in text(admin.get("/audit?subject=thing:3"))
    assert "Nothing in the audit log matches" in text(admin.get("/audit?until=2000-01-01"))
    for bad, field in (("page=0", "page"), ("since=yesterday", "since"),
                       ("until=2027-13-01", "until"), ("format=xml", "format"),
                       ("actor=%01", "actor")):
        r = admin.get(f"/audit?{bad}")
        assert r.status_code == 400 and field in text(r), bad
    r = admin.get("/audit?action=bulk.&format=csv")
    assert r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(text(r))))
    assert rows[0] == ["id", "at", "actor", "action", "subject", "source", "before", "after"]
    assert len(rows) == 62 and rows[1][4] == "'=cmd|' /C calc'!A0"


def test_the_staff_json_api_runs_accounts(hub):
    with hub.engine.begin() as conn:
        _, token = tokens.create_token(conn, hub.staff["admin"], "cli", actor="test")
    api = hub.app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    sid = hub.staff["sales"]
    listed = api.get("/api/v1/staff", headers=h).get_json()["staff"]
    assert {s["username"] for s in listed} == {"admin-user", "sales-user", "ops-user"}
    assert api.post(f"/api/v1/staff/{sid}/disable", headers=h).get_json() == {"changed": True}
    assert api.post(f"/api/v1/staff/{sid}/enable", headers=h).get_json() == {"changed": True}
    r = api.post(f"/api/v1/staff/{hub.staff['admin']}/role", headers=h, json={"role": "ops"})
    assert r.status_code == 409 and r.get_json()["error"] == "last_admin"
    r = api.post(f"/api/v1/staff/{sid}/role", headers=h, json={"role": 7})
    assert r.status_code == 400 and r.get_json()["params"] == {"field": "role"}
    assert api.post("/api/v1/staff/999/disable", headers=h).status_code == 404
    r = api.post(f"/api/v1/staff/{sid}/password-reset", headers=h)
    assert r.get_json()["must_change"] is True
    expires = (hub_now() + timedelta(days=1)).isoformat()
    r = api.post(f"/api/v1/staff/{sid}/tokens", headers=h,
                 json={"name": "till", "roles": ["sales"], "expires_at": expires})
    assert r.status_code == 201
    made = r.get_json()
    listed = api.get(f"/api/v1/staff/{sid}/tokens", headers=h).get_json()["tokens"]
    assert [t["roles"] for t in listed] == [["sales"]] and made["token"] not in str(listed)
    r = api.post(f"/api/v1/staff/{sid}/tokens", headers=h,
                 json={"name": "x", "expires_at": "2099-01-01T00:00"})
    assert r.status_code == 400 and r.get_json()["params"] == {"field": "expires_at"}
    assert api.post(f"/api/v1/tokens/{made['id']}/revoke", headers=h).get_json() == {
        "changed": True}
    assert api.post(f"/api/v1/staff/{sid}/end-sessions", headers=h).get_json() == {
        "sessions_ended": 0}
    assert {r.source for r in audit(hub, "staff.disable")} == {"127.0.0.1"}


def hub_now():
    from sync.timeutil import utcnow
    return utcnow()
