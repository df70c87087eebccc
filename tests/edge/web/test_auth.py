"""Logins, first run, lockout, password policy and expiry, session ends, CSRF."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from edge import staff
from edge.web.auth import new_setup_code
from sync.timeutil import to_iso, utcnow
from tests.edge.web.conftest import PASSWORDS, Browser


def test_first_run_forces_the_admin_account_before_anything_else(app, browser):
    for url in ("/", "/dashboard", "/devices/", "/gate/", "/login"):
        r = browser.get(url)
        assert r.status_code == 302 and r.headers["Location"].endswith("/first-run"), url
    r = browser.get("/first-run")
    assert r.status_code == 200 and b"Set up the admin account" in r.data
    r = browser.post("/first-run", {"username": "admin", "password": "short",
                                    "password2": "short"})
    assert r.status_code == 400 and b"too weak" in r.data
    r = browser.post("/first-run", {"username": "admin", "password": "Venue-keeper-2026",
                                    "password2": "Venue-keeper-2026"})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert browser.get("/dashboard").status_code == 200
    # first run is over: it cannot be used again to take over the appliance
    other = Browser(app.test_client())
    r = other.get("/first-run")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    r = other.post("/first-run", {"username": "mallory", "password": "Mallory-pass-99",
                                  "password2": "Mallory-pass-99"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert other.login("mallory", "Mallory-pass-99").status_code == 401


def test_first_run_asks_for_the_setup_code_the_server_printed(app, appliance, browser):
    code = new_setup_code(appliance["conn"])
    browser.get("/first-run")
    form = {"username": "admin", "password": "Venue-keeper-2026",
            "password2": "Venue-keeper-2026"}
    r = browser.post("/first-run", {**form, "setup_code": "0000-0000-0000"})
    assert r.status_code == 400 and b"setup code is wrong" in r.data
    assert not staff.has_admin(appliance["conn"])
    r = browser.post("/first-run", {**form, "setup_code": code.lower()})
    assert r.status_code == 302
    assert staff.has_admin(appliance["conn"])
    assert appliance["conn"].execute(
        "SELECT count(*) FROM appliance_state WHERE key = 'web_setup_code'").fetchone() == (0,)


def test_login_logout_and_wrong_password(as_role, browser, users):
    r = browser.login("gate", "wrong-password-1")
    assert r.status_code == 401 and b"Wrong username or password" in r.data
    r = browser.login("nobody", "wrong-password-1")
    assert r.status_code == 401 and b"Wrong username or password" in r.data
    b = as_role("gate")
    assert b.get("/gate/").status_code == 200
    r = b.post("/logout")
    assert r.status_code == 302
    r = b.get("/gate/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_lockout_after_five_failures_even_for_the_right_password(app, appliance, users):
    b = Browser(app.test_client())
    for _ in range(staff.MAX_FAILURES):
        assert b.login("gate", "not-the-password").status_code == 401
    r = b.login("gate", PASSWORDS["gate"])
    assert r.status_code == 401 and b"locked" in r.data
    locked_until, = appliance["conn"].execute(
        "SELECT locked_until FROM staff_users WHERE username = 'gate'").fetchone()
    assert locked_until > to_iso(utcnow() + timedelta(minutes=14))
    actions = [a for (a,) in appliance["conn"].execute("SELECT action FROM audit_log")]
    assert "staff.locked" in actions
    # an admin lifts the lockout
    admin = Browser(app.test_client())
    admin.login("admin", PASSWORDS["admin"])
    admin.get("/staff")
    r = admin.post(f"/staff/{users['gate']}", {"action": "unlock"})
    assert r.status_code == 303
    assert b.login("gate", PASSWORDS["gate"]).status_code == 302


def test_password_policy():
    # the shared policy (sync/passwords.py): short, the username, or easy to guess
    for weak, why in (("short1A!", "password_too_short"), ("alllowercase", "password_too_weak"),
                      ("aaaaaaaaaaaA1!", "password_too_weak"),
                      ("gate-Staff-2026", "password_has_username"),
                      ("1234567890", "password_too_weak"), ("qwertyuiop", "password_too_weak"),
                      ("password12", "password_too_weak")):
        with pytest.raises(staff.StaffError) as e:
            staff.check_policy(weak, "gate-staff")
        assert (e.value.code, e.value.detail) == ("weak_password", why), weak
    staff.check_policy("Lantern-Harbor-81", "gate")
    staff.check_policy("a long passphrase of plain words", "gate")


def test_a_new_account_and_an_expired_password_must_choose_a_new_one(app, appliance, users):
    conn = appliance["conn"]
    staff.create_user(conn, "newbie", "Temporary-pass-1", "gate", "admin", must_change=True)
    b = Browser(app.test_client())
    r = b.login("newbie", "Temporary-pass-1")
    assert r.status_code == 302 and r.headers["Location"].endswith("/password")
    r = b.get("/gate/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/password")
    r = b.post_json("/gate/scan.json", {"lane": "N1", "code": "T00001001"})
    assert r.status_code == 403 and r.json["error"] == "password_expired"
    r = b.post("/password", {"current": "Temporary-pass-1", "new": "Temporary-pass-1",
                             "new2": "Temporary-pass-1"})
    assert r.status_code == 400
    r = b.post("/password", {"current": "Temporary-pass-1", "new": "My-own-secret-44",
                             "new2": "My-own-secret-44"})
    assert r.status_code == 302
    assert b.get("/gate/").status_code == 200
    # a password older than the maximum age leads to the password page again
    conn.execute("UPDATE staff_users SET password_changed_at = ? WHERE username = 'newbie'",
                 (to_iso(utcnow() - timedelta(days=181)),))
    r = b.get("/gate/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/password")


def test_password_change_ends_the_other_sessions(app, users):
    one, two = Browser(app.test_client()), Browser(app.test_client())
    one.login("gate", PASSWORDS["gate"])
    two.login("gate", PASSWORDS["gate"])
    r = one.post("/password", {"current": PASSWORDS["gate"], "new": "Brand-new-pass-5",
                               "new2": "Brand-new-pass-5"})
    assert r.status_code == 302
    assert one.get("/gate/").status_code == 200
    r = two.get("/gate/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


@pytest.mark.parametrize("column, age", [("seen_at", timedelta(minutes=31)),
                                         ("created_at", timedelta(hours=12, minutes=1))])
def test_sessions_expire_when_idle_and_after_the_shift(app, appliance, as_role, column, age):
    b = as_role("gate")
    assert b.get("/gate/").status_code == 200
    appliance["conn"].execute(f"UPDATE web_sessions SET {column} = ?",
                              (to_iso(utcnow() - age),))
    r = b.get("/gate/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    r = b.get("/login")
    assert b"Your session has ended" in r.data
    assert appliance["conn"].execute("SELECT count(*) FROM web_sessions").fetchone() == (0,)


def test_a_disabled_account_loses_its_session(app, appliance, as_role, users):
    gate = as_role("gate")
    admin = as_role("admin")
    admin.get("/staff")
    assert admin.post(f"/staff/{users['gate']}", {"action": "disable"}).status_code == 303
    r = gate.get("/gate/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert Browser(app.test_client()).login("gate", PASSWORDS["gate"]).status_code == 401


def test_the_last_admin_cannot_be_demoted(as_role, users, appliance):
    admin = as_role("admin")
    admin.get("/staff")
    r = admin.post(f"/staff/{users['admin']}", {"action": "role", "role": "gate"})
    assert r.status_code == 303
    assert appliance["conn"].execute(
        "SELECT role FROM staff_users WHERE id = ?", (users["admin"],)).fetchone() == ("admin",)
    assert b"last admin" in admin.get("/staff").data


def test_csrf_is_enforced_on_forms_and_json(app, as_role, appliance):
    b = as_role("admin")
    client = b.client
    before = appliance["conn"].execute("SELECT count(*) FROM devices").fetchone()
    form = {"id": "CAM9", "kind": "qr_camera", "connection": "/dev/video0", "enabled": "1"}
    r = client.post("/devices/", data=form)
    assert r.status_code == 400 and b"This form has expired" in r.data
    r = client.post("/devices/", data={**form, "csrf_token": "forged"})
    assert r.status_code == 400
    r = client.post("/gate/scan.json", json={"lane": "N1", "code": "T00001001"},
                    headers={"X-Requested-With": "fetch"})
    assert r.status_code == 400 and r.json["error"] == "csrf"
    r = client.post("/logout")
    assert r.status_code == 400
    assert appliance["conn"].execute("SELECT count(*) FROM devices").fetchone() == before
    assert appliance["conn"].execute("SELECT count(*) FROM entries").fetchone() == (0,)
    # the login form itself carries a token too
    fresh = app.test_client()
    r = fresh.post("/login", data={"username": "admin", "password": PASSWORDS["admin"]})
    assert r.status_code == 400
    # and with the page's token everything works
    assert b.post("/devices/", form).status_code == 303


def test_roles(as_role):
    gate, supervisor = as_role("gate"), as_role("supervisor")
    for url in ("/devices/", "/venue/", "/staff", "/emergency/"):
        assert gate.get(url).status_code == 403, url
        assert supervisor.get(url).status_code == 403, url
    for url in ("/dashboard", "/audit", "/dashboard.json"):
        assert gate.get(url).status_code == 403, url
        assert supervisor.get(url).status_code == 200, url
    assert gate.get("/").headers["Location"].endswith("/gate/")


def test_language_from_the_browser_and_per_account(app, as_role, appliance, users):
    client = app.test_client()
    r = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "登录".encode() in r.data and b'lang="zh-CN"' in r.data
    r = client.get("/login", headers={"Accept-Language": "en-GB"})
    assert b"Log in" in r.data and b'lang="en"' in r.data
    b = as_role("gate")
    r = b.post("/language", {"lang": "zh", "next": "/gate/"})
    assert r.status_code == 302 and r.headers["Location"] == "/gate/"
    assert appliance["conn"].execute("SELECT lang FROM staff_users WHERE id = ?",
                                     (users["gate"],)).fetchone() == ("zh",)
    # stored with the account: a new login from an English browser gets Chinese
    other = Browser(app.test_client())
    other.login("gate", PASSWORDS["gate"])
    r = other.get("/gate/", headers={"Accept-Language": "en"})
    assert "闸机".encode() in r.data or "检票".encode() in r.data
    assert b.post("/language", {"lang": "fr"}).status_code == 400


def test_login_never_redirects_off_the_appliance(app, users):
    for target, expected in (("/gate/?lane=N1", "/gate/?lane=N1"), ("//evil.example/", "/"),
                             ("https://evil.example/", "/"), ("/\\evil.example", "/"),
                             ("/%09/evil.example", "/"), ("/%5Cevil.example", "/"),
                             ("%5C/evil.example", "/"), ("/%252F%252Fevil.example", "/"),
                             ("javascript:alert(1)", "/"), ("/%00/evil.example", "/"),
                             ("/%0D%0A/evil.example", "/"), ("%20//evil.example", "/")):
        b = Browser(app.test_client())
        b.get("/login")
        r = b.post(f"/login?next={target}", {"username": "gate",
                                             "password": PASSWORDS["gate"]})
        assert r.status_code == 302 and r.headers["Location"] == expected, target


def test_sign_in_answers_alike_for_a_locked_an_unknown_and_a_wrong_password_account(
        app, appliance, users, monkeypatch):
    """Same status, body and headers, and exactly one password hash each (counted, not
    timed): nothing tells an attacker whether an account exists or is locked."""
    conn = appliance["conn"]
    conn.execute("UPDATE staff_users SET locked_until = ? WHERE username = 'supervisor'",
                 (to_iso(utcnow() + timedelta(minutes=10)),))
    conn.execute("UPDATE staff_users SET disabled = 1 WHERE username = 'gate'")
    staff.create_user(conn, "clerk", "Amber-signal-58", "gate", "test")
    hashes = []
    real_scrypt = hashlib.scrypt

    def counting_scrypt(*args, **kwargs):
        hashes.append(1)
        return real_scrypt(*args, **kwargs)

    b = Browser(app.test_client())
    b.get("/login")
    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
    answers = {}
    for case, username, password in (
            ("locked, right password", "supervisor", PASSWORDS["supervisor"]),
            ("locked, wrong password", "supervisor", "Not-the-password-1"),
            ("unknown", "nobody", "Not-the-password-1"),
            ("wrong password", "clerk", "Not-the-password-1"),
            ("disabled", "gate", PASSWORDS["gate"])):
        hashes.clear()
        r = b.post("/login", {"username": username, "password": password})
        assert len(hashes) == 1, case
        answers[case] = (r.status_code, r.data, sorted(r.headers.items()))
    first = answers["unknown"]
    assert first[0] == 401 and b"Wrong username or password" in first[1]
    assert all(answer == first for answer in answers.values()), \
        [case for case, answer in answers.items() if answer != first]
