"""The partners' account pages on the test client (both databases): a top-up shown for a
confirmation before it posts, by finance only, posted once (the same bank reference again is
refused in words); the credit limit and a repayment; the month's statement and its CSV; a
webhook's secret shown once; and a partner's portal page with its own balance only."""

from __future__ import annotations

import re
from unittest import mock

import pytest
import sqlalchemy as sa

from cloud.channels import accounts
from cloud.ledger import chart
from cloud.ledger.journal import Leg
from cloud.ledger.journal import post as post_entry
from cloud.ledger.partners import add_portal_user, create_partner
from cloud.ledger.tables import ledger_entries
from cloud.staff import staff as staff_module
from cloud.staff.staff import create_staff
from sync.timeutil import CHINA, utcnow
from tests.cloud.ledger.ledgerpages import NOW, build_ledger_hub
from tests.cloud.pagekit import PASSWORD, _hashed, portal_client, post, text

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def hub(hub_url):
    h = build_ledger_hub(hub_url)
    with h.engine.begin() as conn:
        h.dist = create_partner(conn, "TRAVEL", "Travel Co", "distributor", 7, "test", NOW)
        h.agent = create_partner(conn, "AGENT", "Agent Co", "agent", 7, "test", NOW)
        with mock.patch("cloud.ledger.partners.hash_password", _hashed):
            add_portal_user(conn, h.dist, "travel-user", "Wang Fang", PASSWORD, "test", NOW)
            add_portal_user(conn, h.agent, "agent-user", "Zhao Lei", PASSWORD, "test", NOW)
        with mock.patch.object(staff_module, "hash_password", _hashed):
            create_staff(conn, "ticketing-user", PASSWORD, "ticketing", actor="test")
    yield h
    h.engine.dispose()


def topups(hub) -> list[str]:
    with hub.engine.connect() as conn:
        return list(conn.execute(sa.select(ledger_entries.c.key)
                                 .where(ledger_entries.c.kind == "topup")).scalars())


def balances(hub, partner_id: int) -> dict:
    with hub.engine.connect() as conn:
        return accounts.balances(conn, partner_id)


def test_a_top_up_is_confirmed_first_posted_once_and_only_by_finance(hub):
    page = f"/channels/accounts/{hub.dist}"
    finance = hub.client("finance")
    assert "Travel Co" in text(finance.get("/channels/accounts"))
    asked = post(finance, f"{page}/top-up", {"amount": "1,200.50", "reference": "BANK-001"},
                 page=page)
    assert asked.status_code == 200 and "Yes, post it" in text(asked)
    assert "1,200.50 CNY" in text(asked) and topups(hub) == []  # nothing posted yet
    data = {"amount": "1200.50", "reference": "BANK-001", "confirmed": "yes"}
    assert post(finance, f"{page}/top-up", data, page=page).status_code == 303
    assert topups(hub) == ["topup:BANK-001"] and balances(hub, hub.dist)["prepaid"] == 120050
    again = post(finance, f"{page}/top-up", data, page=page)
    assert again.status_code == 409
    assert "The reference BANK-001 was entered before: nothing more was posted." in text(again)
    other = post(finance, f"{page}/top-up", {**data, "amount": "5"}, page=page)
    assert other.status_code == 409
    assert "the reference BANK-001 was entered for another top-up" in text(other)
    bad = post(finance, f"{page}/top-up", {**data, "amount": "12.345"}, page=page)
    assert bad.status_code == 422 and "An amount in yuan above zero" in text(bad)
    assert topups(hub) == ["topup:BANK-001"] and balances(hub, hub.dist)["prepaid"] == 120050
    # who may not move money: ticketing runs channels and sees the accounts, but does not
    # post to them; a clerk neither
    for role, sees in (("ticketing", 200), ("sales", 403)):
        client = hub.client(role)
        assert client.get(page).status_code == sees, role
        r = post(client, f"{page}/top-up", {**data, "reference": "BANK-002"}, page="/")
        assert r.status_code == 403, role
    assert topups(hub) == ["topup:BANK-001"]


def test_the_limit_a_repayment_and_the_months_statement(hub):
    page = f"/channels/accounts/{hub.dist}"
    admin = hub.client("admin")
    assert post(admin, f"{page}/credit-limit", {"limit": "500"}, page=page).status_code == 303
    with hub.engine.begin() as conn:  # an order took 300 yuan of the credit
        chart.ensure(conn, chart.UNDISTRIBUTED, now=NOW)
        post_entry(conn, "account:order:test", "account_payment",
                   [Leg(chart.credit_line(hub.dist), 30_000, "credit"),
                    Leg(chart.UNDISTRIBUTED, -30_000, "organiser")], now=utcnow())
    cut = post(admin, f"{page}/credit-limit", {"limit": "100"}, page=page)
    assert cut.status_code == 409 and "200.00 CNY" in text(cut)
    assert balances(hub, hub.dist)["credit_limit"] == 50_000
    too_much = post(admin, f"{page}/repay", {"amount": "400", "reference": "R-1",
                                             "confirmed": "yes"}, page=page)
    assert too_much.status_code == 409 and "owes 300.00 CNY" in text(too_much)
    assert post(admin, f"{page}/repay", {"amount": "120", "reference": "R-1",
                                         "confirmed": "yes"}, page=page).status_code == 303
    assert balances(hub, hub.dist)["credit_available"] == 32_000
    month = utcnow().astimezone(CHINA).strftime("%Y-%m")
    statement = text(admin.get(f"{page}/statement?month={month}"))
    assert "300.00 CNY" in statement and "120.00 CNY" in statement
    csv = admin.get(f"{page}/statement.csv?month={month}")
    assert csv.mimetype == "text/csv"
    assert text(csv).splitlines()[-1].endswith("closing,,,180.00,")
    assert admin.get(f"{page}/statement?month=2026-13").status_code == 400
    # an organiser orders from no account: it has no page here
    assert admin.get(f"/channels/accounts/{hub.org}").status_code == 404


def test_a_webhooks_secret_is_shown_once_and_disabling_asks_first(hub):
    page = f"/channels/accounts/{hub.dist}"
    admin = hub.client("admin")
    made = post(admin, f"{page}/webhooks", {"url": "https://ota.example/hook",
                                            "events": ["order.confirmed"]}, page=page)
    secret = re.search(r'id="webhook-secret">([0-9a-f]{64})<', text(made)).group(1)
    listed = text(admin.get(page))
    assert "https://ota.example/hook" in listed and secret not in listed
    refused = post(admin, f"{page}/webhooks", {"url": "http://ota.example/hook",
                                               "events": ["order.confirmed"]}, page=page)
    assert refused.status_code == 422 and "Address is missing or not valid" in text(refused)
    hook_id = re.search(r"/webhooks/(\d+)/disable", listed).group(1)
    ask = admin.get(f"{page}/webhooks/{hook_id}/disable")
    assert "Yes, disable it" in text(ask) and secret not in text(ask)
    assert post(admin, f"{page}/webhooks/{hook_id}/disable", page=page).status_code == 303
    assert "/disable" not in text(admin.get(page))


def portal(hub, username: str):
    return portal_client(hub.app, username)


def test_a_partner_sees_its_own_account_only(hub):
    with hub.engine.begin() as conn:
        accounts.top_up(conn, hub.dist, 88_800, "CNY", "BANK-T", "test", utcnow())
        accounts.set_credit_limit(conn, hub.dist, 50_000, "test", utcnow())
        accounts.top_up(conn, hub.agent, 12_300, "CNY", "BANK-A", "test", utcnow())
    mine = text(portal(hub, "travel-user").get("/partner/account"))
    assert "888.00 CNY" in mine and "500.00 CNY" in mine and "BANK-T" in mine
    assert "123.00 CNY" not in mine and "BANK-A" not in mine
    theirs = portal(hub, "agent-user")
    page = text(theirs.get("/partner/account"))
    assert "123.00 CNY" in page and "888.00 CNY" not in page
    balance = text(theirs.get("/partner/balance"))
    assert "Your prepaid balance" in balance and "Owed by you to the platform" not in balance
    assert theirs.get("/partner/account?month=x").status_code == 400
    assert hub.app.test_client().get("/partner/account").status_code == 303


def test_the_finance_pages_name_a_partners_prepaid_and_credit_accounts(hub):
    from cloud.ledger.pages import account_name

    with hub.app.test_request_context("/"):
        named = {kind: account_name({"code": f"partner:{hub.dist}:{kind}",
                                     "name": f"Travel Co:{kind}"})
                 for kind in ("payable", "receivable", "prepaid", "credit_line",
                              "credit_granted")}
    assert named == {"payable": "Travel Co: payable", "receivable": "Travel Co: receivable",
                     "prepaid": "Travel Co: prepaid balance",
                     "credit_line": "Travel Co: unused credit",
                     "credit_granted": "Travel Co: credit granted"}
