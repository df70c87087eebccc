"""The partner portal on the test client, on both databases: its own sign-in (one message for
every refusal, limited per address), its own session and CSRF token, and a partner that sees
only its own balance, transactions and statements — another partner's statement or export is
"not found", exactly like one that does not exist."""

from __future__ import annotations

import re

import pytest

from cloud.ledger import settlement
from cloud.ledger.partners import edit_partner, set_portal_user_state
from cloud.ledger.portal_pages import SESSION_COOKIE
from tests.cloud.ledger.ledgerpages import NOW, build_ledger_hub
from tests.cloud.pagekit import PASSWORD, text

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def hub(hub_url):
    h = build_ledger_hub(hub_url, settled=True)
    yield h
    h.engine.dispose()


def token(client, path: str = "/partner/sign-in") -> str:
    return _CSRF.search(text(client.get(path))).group(1)


def portal(hub, username: str):
    client = hub.app.test_client()
    r = client.post("/partner/sign-in", data={"username": username, "password": PASSWORD,
                                              "csrf_token": token(client)})
    assert r.status_code == 303 and r.headers["Location"] == "/partner/balance", text(r)
    return client


def _statement_of(hub, partner_id: int) -> int:
    with hub.engine.connect() as conn:
        return settlement.statements(conn, partner_id=partner_id)[0].id


def test_sign_in_says_the_same_for_an_unknown_user_a_wrong_password_and_a_disabled_user(hub):
    with hub.engine.begin() as conn:
        set_portal_user_state(conn, hub.rival_user, "disabled", "test", NOW)
    client = hub.app.test_client()
    said = set()
    for username, password in (("nobody", PASSWORD), ("org-user", "x" * 12),
                               ("rival-user", PASSWORD)):
        r = client.post("/partner/sign-in", data={"username": username, "password": password,
                                                  "csrf_token": token(client)})
        assert r.status_code == 401 and SESSION_COOKIE not in r.headers.get("Set-Cookie", "")
        said.add(re.search(r'role="alert">([^<]+)<', text(r)).group(1))
    assert len(said) == 1 and "disabled" in said.pop()
    assert client.get("/partner/balance").headers["Location"].startswith("/partner/sign-in")


def test_a_partner_sees_its_own_balance_transactions_and_statements_only(hub):
    client = portal(hub, "org-user")
    balance = text(client.get("/partner/balance"))
    assert "Orchard Live" in balance and "95.00 CNY" in balance
    assert "Rival" not in balance and "67.00 CNY" not in balance
    moves = text(client.get("/partner/transactions"))
    assert "95.00 CNY" in moves and "platform fee 5.00 CNY" in moves
    assert "67.00" not in moves and "RIVAL" not in moves
    csv = text(client.get("/partner/transactions.csv"))
    assert "W-ORG-0001" in csv and "W-RIVAL-0002" not in csv
    mine, theirs = _statement_of(hub, hub.org), _statement_of(hub, hub.rival)
    listed = text(client.get("/partner/statements"))
    assert f"/partner/statements/{mine}" in listed and f"/partner/statements/{theirs}" not in listed
    page = text(client.get(f"/partner/statements/{mine}"))
    assert "prepared, not paid yet" in page and "95.00 CNY" in page and "W-ORG-0001" in page
    for path in (f"/partner/statements/{theirs}", f"/partner/statements/{theirs}.csv",
                 f"/partner/statements/{theirs}.pdf", "/partner/statements/999999"):
        r = client.get(path)
        assert r.status_code == 404 and "Rival" not in text(r), path
    r = client.get(f"/partner/statements/{mine}.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    r = client.get(f"/partner/statements/{mine}.pdf")
    assert r.status_code == 200 and r.data.startswith(b"%PDF")
    other = portal(hub, "rival-user")
    assert "67.00 CNY" in text(other.get("/partner/balance"))
    assert other.get(f"/partner/statements/{mine}").status_code == 404


def test_every_portal_page_sends_a_stranger_to_the_sign_in(hub):
    client = hub.app.test_client()
    statement = _statement_of(hub, hub.org)
    for path in ("/partner/", "/partner/balance", "/partner/transactions", "/partner/top-up",
                 "/partner/transactions.csv", "/partner/statements",
                 f"/partner/statements/{statement}", f"/partner/statements/{statement}.pdf"):
        r = client.get(path)
        assert r.status_code in (302, 303), path
        if path != "/partner/":
            assert r.headers["Location"].startswith("/partner/sign-in?next="), path


def test_a_forged_or_expired_cookie_and_a_staff_session_do_not_open_the_portal(hub):
    client = portal(hub, "org-user")
    cookie = client.get_cookie(SESSION_COOKIE, path="/partner")
    assert cookie is not None and cookie.http_only
    forged = hub.app.test_client()
    forged.set_cookie(SESSION_COOKIE, cookie.value[:-3] + "abc", path="/partner")
    assert forged.get("/partner/balance").status_code == 303
    staff = hub.client("finance")
    assert staff.get("/partner/balance").status_code == 303
    assert client.get("/finance/").headers["Location"].startswith("/login")


def test_a_disabled_user_or_a_suspended_partner_is_out_at_once(hub):
    client = portal(hub, "org-user")
    with hub.engine.begin() as conn:
        edit_partner(conn, hub.org, actor="test", now=NOW, state="suspended")
    assert client.get("/partner/balance").status_code == 303
    with hub.engine.begin() as conn:
        edit_partner(conn, hub.org, actor="test", now=NOW, state="active")
    client = portal(hub, "org-user")
    with hub.engine.begin() as conn:
        set_portal_user_state(conn, hub.org_user, "disabled", "test", NOW)
    assert client.get("/partner/balance").status_code == 303


def test_every_post_needs_the_portals_own_token(hub):
    client = portal(hub, "org-user")
    staff_token = _CSRF.search(text(hub.client("finance").get("/finance/"))).group(1)
    for path in ("/partner/sign-out", "/partner/language", "/partner/sign-in"):
        for data in ({}, {"csrf_token": "forged"}, {"csrf_token": staff_token}):
            r = client.post(path, data=data)
            assert r.status_code == 400 and "security token" in text(r), (path, data)
    assert client.get("/partner/balance").status_code == 200  # still signed in
    copied = client.get_cookie("wicket_partner", path="/partner").value
    r = client.post("/partner/sign-out", data={"csrf_token": token(client, "/partner/balance")})
    assert r.status_code == 303
    assert client.get("/partner/balance").status_code == 303
    # a copy of the cookie taken before signing out is no good either
    thief = hub.app.test_client()
    thief.set_cookie("wicket_partner", copied, path="/partner")
    assert thief.get("/partner/balance").status_code == 303
    again = portal(hub, "org-user")  # signing in again works
    assert again.get("/partner/balance").status_code == 200


def test_signing_in_returns_to_the_page_asked_for_and_never_elsewhere(hub):
    for target, lands in (("/partner/statements", "/partner/statements"),
                          ("//evil.example/x", "/partner/balance"),
                          ("/finance/", "/partner/balance")):
        client = hub.app.test_client()
        r = client.post("/partner/sign-in", data={
            "username": "org-user", "password": PASSWORD, "next": target,
            "csrf_token": token(client)})
        assert r.headers["Location"] == lands, target


def test_sign_in_is_limited_per_address(hub):
    hub.app.config["SIGN_IN_LIMIT"] = "3 per minute"
    client = hub.app.test_client()
    codes = [client.post("/partner/sign-in", data={
        "username": "org-user", "password": "x" * 12, "csrf_token": token(client)}).status_code
        for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_the_portal_speaks_chinese_to_a_chinese_reader(hub):
    client = portal(hub, "org-user")
    page = text(client.get("/partner/transactions", headers={"Accept-Language": "zh-CN"}))
    assert "交易" in page and "平台服务费 5.00 CNY" in page
    r = client.post("/partner/language", data={"lang": "zh", "next": "/partner/statements",
                                               "csrf_token": token(client, "/partner/balance")})
    assert r.headers["Location"] == "/partner/statements"
    assert "结算单" in text(client.get("/partner/statements"))


def test_no_query_string_makes_a_portal_page_fail(hub):
    from tests.webfuzz import concrete_paths, fuzz

    client = portal(hub, "org-user")
    paths = {rule: path for rule, path in concrete_paths(hub.app, {
        "statement_id": str(_statement_of(hub, hub.org)), "fmt": "csv"},
        skip=tuple(e for e in hub.app.view_functions if not e.startswith("portal."))).items()}
    assert len(paths) >= 7
    assert fuzz(hub.app, client, paths, lambda path: {}) == []
    r = client.get("/partner/transactions?before=²")
    assert r.status_code == 400 and "before=²" in text(r)
