"""The second step of a staff sign-in: TOTP enrolment, codes once each, recovery codes, one
lockout with the passwords, and the sign-in pages — on both databases. Time is given to the
rules (``now``) and codes are made with pyotp's ``at(for_time)``: nothing waits."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from cloud.core.audit import audit_log
from cloud.core.seal import key_id_of
from cloud.staff import totp
from cloud.staff.staff import MAX_FAILURES, StaffError, create_staff, login
from cloud.staff.tables import recovery_codes, staff_totp
from sync.timeutil import utcnow
from tests.cloud.pagekit import PASSWORD, build_hub, csrf, post, text

GOOD = "correct horse battery"


def _enrolled(engine, now):
    with engine.begin() as conn:
        alice = create_staff(conn, "alice", GOOD, "admin", actor="test")
        secret = totp.start_enrolment(conn, alice, now)
        with pytest.raises(totp.TotpError):  # a wrong first code turns nothing on
            totp.confirm_enrolment(conn, alice, "000000" if pyotp.TOTP(secret).at(now) !=
                                   "000000" else "111111", "test", now)
        assert not totp.enrolled(conn, alice)
        codes = totp.confirm_enrolment(conn, alice, pyotp.TOTP(secret).at(now), "test", now)
    return login(engine, "alice", GOOD, now), secret, codes


def test_a_code_is_good_for_its_step_and_the_next_once_and_recovery_codes_once(engine):
    now = utcnow()
    who, secret, codes = _enrolled(engine, now)
    app = pyotp.TOTP(secret)
    assert len(codes) == totp.RECOVERY_CODES == len(set(codes))
    with engine.connect() as conn:
        kept = conn.execute(sa.select(recovery_codes.c.code_hash)).scalars().all()
        stored = conn.execute(sa.select(staff_totp.c.secret)).scalar_one()
        assert totp.enrolled(conn, who.id)
    assert not set(codes) & set(kept)  # only hashes
    later = now + timedelta(seconds=30)
    # the enrolment's code was used: not again, even within its window
    with pytest.raises(totp.TotpError):
        totp.second_step(engine, who, app.at(now), later)
    assert totp.second_step(engine, who, app.at(later), later) == "totp"
    with pytest.raises(totp.TotpError):
        totp.second_step(engine, who, app.at(later), later)  # replayed
    with pytest.raises(totp.TotpError):  # too old: two steps ago
        totp.second_step(engine, who, app.at(later - timedelta(seconds=60)), later)
    assert totp.second_step(engine, who, app.at(later + timedelta(seconds=30)), later) == "totp"
    assert totp.second_step(engine, who, codes[0].upper(), later) == "recovery"
    with pytest.raises(totp.TotpError):
        totp.second_step(engine, who, codes[0], later)
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.id))]
        dump = str(conn.execute(sa.select(audit_log)).all())
    assert "staff.totp_enrol" in actions and "staff.recovery_code" in actions
    assert secret not in dump and codes[0] not in dump
    assert secret not in stored and key_id_of(stored)  # sealed under the hub's data key


def test_wrong_codes_and_wrong_passwords_count_towards_one_lockout(engine):
    now = utcnow()
    who, secret, _codes = _enrolled(engine, now)
    for _ in range(MAX_FAILURES - 2):
        with pytest.raises(StaffError):
            login(engine, "alice", "not the password", now)
    # the right password does not wipe the count while the code is still to come
    assert login(engine, "alice", GOOD, now).id == who.id
    with pytest.raises(totp.TotpError):
        totp.second_step(engine, who, "12345x", now)
    with pytest.raises(totp.TotpError) as err:
        totp.second_step(engine, who, "12345y", now)
    with pytest.raises(totp.TotpError) as err:
        totp.second_step(engine, who, pyotp.TOTP(secret).at(now + timedelta(seconds=30)), now)
    assert err.value.code == "totp_locked"
    with pytest.raises(StaffError) as err:
        login(engine, "alice", GOOD, now)
    assert err.value.code == "locked"
    after = now + timedelta(minutes=16)
    login(engine, "alice", GOOD, after)
    assert totp.second_step(engine, who, pyotp.TOTP(secret).at(after), after) == "totp"


def _secret_on(page: str) -> str:
    m = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    assert m, page
    return m.group(1)


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    yield h
    h.engine.dispose()


@pytest.fixture
def strict_hub(hub_url, monkeypatch):
    monkeypatch.setenv("WICKET_HUB_TOTP_ROLES", "admin")  # as the hub is by default
    h = build_hub(hub_url)
    yield h
    h.engine.dispose()


def test_an_admin_enrols_on_the_way_in_and_then_signs_in_with_a_code(strict_hub):
    hub = strict_hub
    assert hub.app.config["TOTP_REQUIRED_ROLES"] == ("admin",)
    c = hub.app.test_client()
    r = c.post("/login", data={"username": "admin-user", "password": PASSWORD,
                               "csrf_token": csrf(c), "next": "/staff"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/login/enrol")
    assert c.get("/staff").status_code == 303  # not signed in yet
    page = c.get("/login/enrol")
    assert page.status_code == 200 and "<svg" in text(page)
    secret = _secret_on(text(page))
    r = post(c, "/login/enrol", {"code": "000000"}, page="/login/enrol")
    if pyotp.TOTP(secret).now() != "000000":
        assert r.status_code == 422
    now = utcnow()
    r = post(c, "/login/enrol", {"code": pyotp.TOTP(secret).at(now)}, page="/login/enrol")
    codes = re.findall(r"<li><code>([a-z2-9-]+)</code></li>", text(r))
    assert r.status_code == 200 and len(codes) == totp.RECOVERY_CODES
    assert c.get("/staff").status_code == 200  # signed in
    post(c, "/logout", page="/staff")
    # next time: the password, then a code (the next step's: the enrolment used this one)
    r = c.post("/login", data={"username": "admin-user", "password": PASSWORD,
                               "csrf_token": csrf(c)})
    assert r.headers["Location"].endswith("/login/code")
    assert post(c, "/login/code", {"code": "nope"}, page="/login/code").status_code == 401
    r = post(c, "/login/code", {"code": pyotp.TOTP(secret).at(now, counter_offset=1)},
             page="/login/code")
    assert r.status_code == 303 and c.get("/staff").status_code == 200
    # a sales clerk without a one-time password signs in with the password alone
    s = hub.app.test_client()
    r = s.post("/login", data={"username": "sales-user", "password": PASSWORD,
                               "csrf_token": csrf(s)})
    assert r.status_code == 303 and s.get("/sessions").status_code == 200


def test_the_code_step_needs_a_recent_password_step(hub):
    c = hub.app.test_client()
    for path in ("/login/code", "/login/enrol"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["Location"].endswith("/login")
    # any role may set one up from its own page, and then needs it
    c = hub.client("sales")
    secret = _secret_on(text(c.get("/account/two-step")))
    r = post(c, "/account/two-step", {"code": pyotp.TOTP(secret).now()},
             page="/account/two-step")
    assert r.status_code == 200 and "Recovery codes" in text(r)
    c = hub.app.test_client()
    r = c.post("/login", data={"username": "sales-user", "password": PASSWORD,
                               "csrf_token": csrf(c)})
    assert r.headers["Location"].endswith("/login/code")
    # an admin removes it (a lost phone)
    admin = hub.client("admin")
    r = post(admin, f"/account/two-step/{hub.staff['sales']}/remove", page="/staff")
    assert r.status_code == 303
    with hub.engine.connect() as conn:
        assert not totp.enrolled(conn, hub.staff["sales"])


def test_a_password_an_admin_set_is_replaced_on_the_way_in(hub):
    from cloud.staff.accounts import reset_password

    with hub.engine.begin() as conn:
        temporary = reset_password(conn, hub.staff["sales"], "staff:1")
    c = hub.app.test_client()
    r = c.post("/login", data={"username": "sales-user", "password": temporary,
                               "csrf_token": csrf(c), "next": "/sessions"})
    assert r.headers["Location"].endswith("/login/password")
    assert c.get("/sessions").status_code == 303  # no session before the new password
    r = post(c, "/login/password", {"password": "password12", "password_again": "password12"},
             page="/login/password")
    assert r.status_code == 422 and "too easy to guess" in text(r)
    r = post(c, "/login/password", {"password": temporary, "password_again": temporary},
             page="/login/password")  # the administrator knows it: it cannot be kept
    assert r.status_code == 422 and "one of the last 5 used" in text(r)
    r = post(c, "/login/password", {"password": "Quiet-river-77",
                                    "password_again": "Quiet-river-77"}, page="/login/password")
    assert r.status_code == 303 and r.headers["Location"].endswith("/sessions")
    assert c.get("/sessions").status_code == 200
    # and the next sign-in goes straight through
    c = hub.app.test_client()
    r = c.post("/login", data={"username": "sales-user", "password": "Quiet-river-77",
                               "csrf_token": csrf(c)})
    assert r.status_code == 303 and not r.headers["Location"].endswith("/login/password")
