"""Staff pages: signing in and out, session expiry, CSRF, the role on every route, the secret
key, and languages — on both databases."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from datetime import timedelta
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from flask import url_for
from werkzeug.routing import AnyConverter, IntegerConverter, PathConverter

from cloud.app import create_app
from cloud.staff.sessions import (
    ABSOLUTE_LIFETIME,
    IDLE_TIMEOUT,
    SessionEnded,
    check_session,
    end_session,
    start_session,
)
from cloud.staff.staff import MAX_FAILURES, Staff
from cloud.staff.tables import staff, staff_sessions
from cloud.web.secret import SecretError, hub_secret, secret_path
from cloud.web.web import safe_next
from sync.timeutil import utcnow
from tests.cloud.pagekit import PASSWORD, build_hub, csrf, post, sign_in, text

# The pages anyone may open: signing in, and the language switch on the sign-in page.
PUBLIC = {"auth.login", "auth.logout", "auth.set_language", "static",
          # messaging (issue 16): a buyer's ticket link, no sign-in (an unknown token: 404)
          "ticket_link.show", "ticket_link.send_again"}


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    yield h
    h.engine.dispose()


def page_routes(app):
    """Every staff page route (not the JSON API or sync, nor the public site, whose buyers'
    own rules tests/cloud/storefront/test_guards.py checks, nor the partner portal, whose own
    sign-in tests/cloud/ledger/test_portal.py checks, nor the contract customers' site, whose
    own sign-in tests/cloud/channels/test_customers_pages.py checks) and method, with URLs
    built from sample values (each choice of an ``any(...)`` part)."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/shop/", "/partner/", "/customer/")):
            continue
        choices: list[dict] = [{}]
        for arg, conv in rule._converters.items():
            if isinstance(conv, AnyConverter):
                options = sorted(conv.items)
            elif isinstance(conv, IntegerConverter):
                options = [1]
            elif isinstance(conv, PathConverter):
                options = ["hub.css"]
            else:
                options = ["T000000001"]
            choices = [{**c, arg: o} for c in choices for o in options]
        for values in choices:
            with app.test_request_context():
                url = url_for(rule.endpoint, **values)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule.endpoint, method, url


def test_every_page_refuses_an_anonymous_request(hub):
    routes = list(page_routes(hub.app))
    assert len({e for e, _, _ in routes}) >= 30
    client = hub.client()
    token = csrf(client)
    for endpoint, method, url in routes:
        if endpoint in PUBLIC:
            continue
        r = client.open(url, method=method, data={"csrf_token": token})
        assert r.status_code in (302, 303, 401, 403), (endpoint, method, r.status_code)
        if r.status_code in (302, 303):
            assert r.headers["Location"].startswith("/login"), (endpoint, r.headers["Location"])


def test_every_post_without_the_csrf_token_is_refused_and_changes_nothing(hub):
    client = hub.client("admin")
    with hub.engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar()
    posts = [(e, u) for e, m, u in page_routes(hub.app) if m == "POST"]
    assert len(posts) >= 20
    for endpoint, url in posts:
        for data in ({}, {"csrf_token": "forged"}):
            r = client.post(url, data=data)
            assert r.status_code == 400, (endpoint, r.status_code)
            assert "security token" in text(r)
    with hub.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() == before
    assert client.get("/venues").status_code == 200  # still signed in: logout needed a token


def test_a_token_from_another_browser_is_refused(hub):
    theirs = csrf(hub.client("sales"), "/venues")
    mine = hub.client("admin")
    r = mine.post("/venues", data={"code": "X", "name": "X", "csrf_token": theirs})
    assert r.status_code == 400


def test_sign_in_shows_one_message_for_unknown_wrong_and_locked(hub):
    client = hub.client()
    unknown = client.post("/login", data={"username": "nobody", "password": "x" * 12,
                                          "csrf_token": csrf(client)})
    wrong = client.post("/login", data={"username": "sales-user", "password": "x" * 12,
                                        "csrf_token": csrf(client)})
    assert unknown.status_code == wrong.status_code == 401
    message = re.search(r'role="alert">([^<]+)<', text(unknown)).group(1)
    assert re.search(r'role="alert">([^<]+)<', text(wrong)).group(1) == message
    assert "locked" in message
    for _ in range(MAX_FAILURES):
        client.post("/login", data={"username": "ops-user", "password": "y" * 12,
                                    "csrf_token": csrf(client)})
    locked = client.post("/login", data={"username": "ops-user", "password": PASSWORD,
                                         "csrf_token": csrf(client)})
    assert locked.status_code == 401
    assert re.search(r'role="alert">([^<]+)<', text(locked)).group(1) == message
    # the admin unlocks it, and the right password works again
    admin = hub.client("admin")
    assert "Unlock" in text(admin.get("/staff"))
    r = post(admin, f"/staff/{hub.staff['ops']}/unlock", page="/staff")
    assert r.status_code == 303
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(staff.c.locked_until)
                            .where(staff.c.id == hub.staff["ops"])).scalar() is None
    sign_in(hub.client(), "ops-user")


def test_sign_in_returns_to_the_page_asked_for_and_never_elsewhere(hub):
    client = hub.client()
    r = client.get(f"/venues/{hub.venue}")
    assert r.status_code == 303 and r.headers["Location"] == f"/login?next=/venues/{hub.venue}"
    r = client.post("/login", data={"username": "ops-user", "password": PASSWORD,
                                    "next": f"/venues/{hub.venue}", "csrf_token": csrf(client)})
    assert r.headers["Location"] == f"/venues/{hub.venue}"
    assert safe_next("//evil.example/x") is None
    assert safe_next("https://evil.example/") is None
    assert safe_next("/\\evil.example") is None
    assert safe_next("/tickets?number=T1") == "/tickets?number=T1"


@pytest.mark.parametrize("raw", ["/%09/evil.example", "//evil.example", "/%5Cevil.example",
                                 "%5C/evil.example", "https://evil.example",
                                 "/%252F%252Fevil.example", "javascript:alert(1)",
                                 "/%00/evil.example", "%20//evil.example"])
def test_sign_in_and_the_language_switch_never_send_a_browser_off_the_hub(hub, raw):
    client = hub.client()
    r = client.post(f"/login?next={raw}", data={"username": "ops-user", "password": PASSWORD,
                                                "csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["Location"] == "/"
    r = client.post("/lang", data={"lang": "en", "next": unquote(raw),
                                   "csrf_token": csrf(client, "/")})
    assert r.status_code == 303 and r.headers["Location"] == "/"


def test_the_cookie_is_httponly_and_samesite_lax_and_sign_in_makes_a_new_session(hub):
    client = hub.client()
    anonymous_token = csrf(client)
    r = client.post("/login", data={"username": "sales-user", "password": PASSWORD,
                                    "csrf_token": anonymous_token})
    cookie = [h for h in r.headers.getlist("Set-Cookie") if h.startswith("wicket_hub_session=")]
    assert cookie and "HttpOnly" in cookie[0] and "SameSite=Lax" in cookie[0]
    assert csrf(client, "/venues") != anonymous_token
    r = client.get("/venues")
    assert r.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


def test_sign_out_ends_the_session_on_the_hub(hub):
    client = hub.client("sales")
    with client.session_transaction() as s:
        stolen = dict(s)
    assert post(client, "/logout", page="/venues").status_code == 303
    assert client.get("/venues").status_code == 303
    thief = hub.client()
    with thief.session_transaction() as s:
        s.update(stolen)  # the old cookie, replayed: the hub has ended its session
    assert thief.get("/venues").status_code == 303


@pytest.mark.parametrize("column, age", [("last_seen_at", IDLE_TIMEOUT),
                                         ("created_at", ABSOLUTE_LIFETIME)])
def test_a_session_ends_when_idle_or_too_old(hub, column, age):
    client = hub.client("sales")
    assert client.get("/venues").status_code == 200
    with hub.engine.begin() as conn:
        conn.execute(sa.update(staff_sessions).values(
            {column: utcnow() - age - timedelta(seconds=1)}))
    r = client.get("/venues")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login")
    assert "Your session has ended" in text(client.get(r.headers["Location"]))
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(staff_sessions.c.ended_at)).scalar() is not None


def test_a_session_just_inside_the_idle_limit_lives_on(hub):
    client = hub.client("sales")
    with hub.engine.begin() as conn:
        conn.execute(sa.update(staff_sessions).values(
            last_seen_at=utcnow() - IDLE_TIMEOUT + timedelta(minutes=2)))
    assert client.get("/venues").status_code == 200
    with hub.engine.connect() as conn:
        seen = conn.execute(sa.select(staff_sessions.c.last_seen_at)).scalar()
    assert utcnow() - (seen if seen.tzinfo else seen.replace(tzinfo=utcnow().tzinfo)) \
        < timedelta(minutes=1)


def test_a_disabled_account_is_signed_out_at_its_next_request(hub):
    client = hub.client("sales")
    with hub.engine.begin() as conn:
        conn.execute(sa.update(staff).where(staff.c.id == hub.staff["sales"])
                     .values(disabled=True))
    assert client.get("/venues").status_code == 303


def test_roles_decide_what_each_page_lets_through(hub):
    ops, sales = hub.client("ops"), hub.client("sales")
    assert ops.get("/venues").status_code == 200
    assert "New venue" not in text(ops.get("/venues"))
    assert post(ops, "/venues", {"code": "AQC", "name": "Aquatics"},
                page="/venues").status_code == 403
    assert post(ops, f"/venues/{hub.venue}/zones", {"code": "C", "name": "C"},
                page="/venues").status_code == 403
    assert ops.get("/sessions").status_code == 403
    assert ops.get("/box-office").status_code == 403
    assert ops.get("/conflicts").status_code == 200
    assert ops.get("/keys").status_code == 403 and ops.get("/staff").status_code == 403
    assert sales.get("/sessions").status_code == 200
    assert sales.get("/conflicts").status_code == 403
    listing = text(sales.get("/appliances"))
    assert "Register an appliance" not in listing and "Revoke" not in listing
    r = post(sales, "/appliances", {"venue_id": hub.venue, "name": "x"}, page="/venues")
    assert r.status_code == 403 and "Not allowed" in text(r)
    assert sales.get("/staff").status_code == 403


def test_the_secret_is_made_once_owner_only_next_to_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv("WICKET_HUB_SECRET", raising=False)
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    path = secret_path(url, str(tmp_path / "instance"))
    assert path == tmp_path / "hub.db.secret"
    first = hub_secret(url, str(tmp_path / "instance"))
    assert len(first) >= 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert hub_secret(url, str(tmp_path / "instance")) == first
    assert create_app({"DATABASE_URL": url}).config["SECRET_KEY"] == first
    assert secret_path("postgresql+psycopg://h/db", str(tmp_path / "i")) == \
        tmp_path / "i" / "hub.secret"
    os.chmod(path, 0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        hub_secret(url, str(tmp_path / "instance"))
    monkeypatch.setenv("WICKET_HUB_SECRET", "short")
    with pytest.raises(SecretError, match="32"):
        hub_secret(url, str(tmp_path / "instance"))
    monkeypatch.setenv("WICKET_HUB_SECRET", "e" * 40)
    assert hub_secret(url, str(tmp_path / "instance")) == "e" * 40


def test_language_from_the_switch_else_accept_language(hub):
    client = hub.client()
    assert "登录" in text(client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}))
    assert 'lang="en"' in text(client.get("/login", headers={"Accept-Language": "fr"}))
    r = client.post("/lang", data={"lang": "zh", "next": "/login", "csrf_token": csrf(client)})
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    page = text(client.get("/login", headers={"Accept-Language": "en"}))
    assert 'lang="zh-Hans"' in page and "登录" in page
    sign_in(client, "sales-user")
    assert "场馆" in text(client.get("/venues"))
    client.post("/lang", data={"lang": "en", "csrf_token": csrf(client, "/venues")})
    assert "Venues" in text(client.get("/venues"))


def test_session_rules_at_their_limits(hub):
    who = Staff(hub.staff["sales"], "sales-user", "sales")
    t0 = utcnow()
    with hub.engine.begin() as conn:
        token = start_session(conn, who, t0)
        # kept alive by use, 25 idle minutes at a time, until its 12 hours are up
        step = IDLE_TIMEOUT - timedelta(minutes=5)
        at = t0 + step
        while at < t0 + ABSOLUTE_LIFETIME:
            assert check_session(conn, token, at) == who
            at += step
        with pytest.raises(SessionEnded) as e:
            check_session(conn, token, t0 + ABSOLUTE_LIFETIME)
        assert e.value.reason == "expired"
        with pytest.raises(SessionEnded) as e:
            check_session(conn, token, t0)
        assert e.value.reason == "ended"  # once ended, never back
        with pytest.raises(SessionEnded) as e:
            check_session(conn, "not-a-token", t0)
        assert e.value.reason == "unknown"
        other = start_session(conn, who, t0)
        with pytest.raises(SessionEnded) as e:
            check_session(conn, other, t0 + IDLE_TIMEOUT)
        assert e.value.reason == "idle"
        third = start_session(conn, who, t0)
        end_session(conn, third, t0)
        with pytest.raises(SessionEnded) as e:
            check_session(conn, third, t0)
        assert e.value.reason == "ended"


def test_sign_in_answers_alike_for_a_locked_an_unknown_and_a_wrong_password_account(
        hub, monkeypatch):
    """Same status, body (but for the username the form gives back) and headers, and exactly
    one password hash each (counted, not timed)."""
    with hub.engine.begin() as conn:
        conn.execute(sa.update(staff).where(staff.c.id == hub.staff["ops"]).values(
            locked_until=utcnow() + timedelta(minutes=10)))
        conn.execute(sa.update(staff).where(staff.c.id == hub.staff["sales"]).values(
            disabled=True))
    hashes = []
    real_scrypt = hashlib.scrypt

    def counting_scrypt(*args, **kwargs):
        hashes.append(1)
        return real_scrypt(*args, **kwargs)

    client = hub.client()
    token = csrf(client)
    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
    answers = {}
    for case, username, password in (
            ("locked, right password", "ops-user", PASSWORD),
            ("locked, wrong password", "ops-user", "not the password"),
            ("unknown", "nobody-user", "not the password"),
            ("wrong password", "admin-user", "not the password"),
            ("disabled", "sales-user", PASSWORD)):
        hashes.clear()
        r = client.post("/login", data={"username": username, "password": password,
                                        "csrf_token": token})
        assert len(hashes) == 1, case
        body = text(r).replace(f'value="{username}"', 'value="…"')
        headers = sorted((k, v) for k, v in r.headers.items() if k != "Content-Length")
        answers[case] = (r.status_code, body, headers)
    first = answers["unknown"]
    assert first[0] == 401
    assert all(answer == first for answer in answers.values()), \
        [case for case, answer in answers.items() if answer != first]
