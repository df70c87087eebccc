"""The finance pages on the test client, on both databases: the trial balance, an account's
history, the journal's entries and an entry's postings; who may open them; and a bad
address refused naming its argument."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from cloud.ledger import chart, reads
from tests.cloud.ledger.ledgerpages import NOW, build_ledger_hub, reconcile_day
from tests.cloud.pagekit import PASSWORD, post, text


@pytest.fixture
def hub(hub_url):
    h = build_ledger_hub(hub_url)
    yield h
    h.engine.dispose()


def _account_id(hub, code: str) -> int:
    with hub.engine.connect() as conn:
        return next(r["id"] for r in reads.account_list(conn) if r["code"] == code)


def test_the_trial_balance_sums_to_zero_and_lists_every_account(hub):
    page = text(hub.client("finance").get("/finance/"))
    totals = re.search(r'<table id="trial-totals">(.*?)</table>', page, re.S).group(1)
    assert "0.00 CNY" in totals and "bad" not in totals
    for words in ("Orchard Live: payable", "Rival Promotions: payable", "Clearing at WeChat Pay",
                  "Platform revenue", "170.00 CNY", "95.00 CNY", "67.00 CNY", "8.00 CNY"):
        assert words in page, words


def test_an_accounts_history_shows_its_postings_on_its_normal_side(hub):
    client = hub.client("finance")
    payable = _account_id(hub, chart.payable(hub.org))
    page = text(client.get(f"/finance/accounts/{payable}"))
    assert "95.00 CNY" in page and "organiser" in page
    assert "70.00" not in page and "67.00" not in page  # the rival's sale is not on it
    assert client.get("/finance/accounts/999999").status_code == 404


def test_entries_are_listed_filtered_and_shown_with_their_postings(hub):
    client = hub.client("finance")
    page = text(client.get("/finance/entries"))
    assert "W-ORG-0001" in page and "W-RIVAL-0002" in page
    page = text(client.get("/finance/entries?kind=payment&state=pending"))
    assert "W-ORG-0001" not in page and "No entries." in page
    first = re.search(r'href="/finance/entries/(\d+)"', text(client.get("/finance/entries")))
    entry = text(client.get(f"/finance/entries/{first.group(1)}"))
    assert "payment:2" in entry and "Debit" in entry and "70.00 CNY" in entry
    assert "box office" in entry
    assert client.get("/finance/entries/999999").status_code == 404


def test_the_pages_are_in_chinese_for_a_chinese_reader(hub):
    client = hub.client("finance")
    page = text(client.get("/finance/", headers={"Accept-Language": "zh-CN"}))
    assert "试算平衡" in page and "Orchard Live：应付" in page


def test_only_finance_roles_see_the_finance_pages(hub):
    assert hub.client("sales").get("/finance/").status_code == 403
    assert hub.client("ops").get("/finance/entries").status_code == 403
    assert hub.client("admin").get("/finance/").status_code == 200
    assert 'href="/finance/"' in text(hub.client("finance").get("/finance/entries"))
    assert 'href="/finance/"' not in text(hub.client("sales").get("/"))


def test_a_bad_address_is_refused_naming_its_argument(hub):
    client = hub.client("finance")
    r = client.get("/finance/entries?before=99999999999999999999")
    assert r.status_code == 400 and "before=99999999999999999999" in text(r)
    assert client.get("/finance/entries?state=lost").status_code == 400


# -- partners and their portal users ----------------------------------------------------------------


def test_finance_sets_up_a_partner_and_its_portal_user_naming_each_bad_field(hub):
    client = hub.client("finance")
    r = post(client, "/finance/partners", {"code": "VEN", "name": "City Arena",
                                           "kind": "venue", "settle_days": "3"},
             page="/finance/partners")
    assert r.status_code == 303
    page_path = r.headers["Location"]
    assert "City Arena" in text(client.get(page_path))
    for form, words in (({"code": "VEN", "name": "Again", "kind": "venue", "settle_days": "3"},
                         "a partner has the code VEN already"),
                        ({"code": "NEW", "name": "X", "kind": "venue", "settle_days": "91"},
                         "Settlement cycle (days): give a whole number from 0 to 90."),
                        ({"code": "new", "name": "X", "kind": "venue", "settle_days": "1"},
                         "Code is missing or not valid."),
                        ({"code": "NEW", "name": "X", "kind": "bank", "settle_days": "1"},
                         "Kind: choose from the list."),
                        ({"code": "NEW", "name": "", "kind": "venue", "settle_days": "1"},
                         "Name: give a value.")):
        r = post(client, "/finance/partners", form, page="/finance/partners")
        assert r.status_code == 422 and words in text(r).replace("&#39;", "'"), words
    user = {"username": "arena-desk", "display_name": "Zhang Wei", "password": PASSWORD,
            "password_again": PASSWORD}
    r = post(client, f"{page_path}/users", {**user, "password_again": "other"}, page=page_path)
    assert r.status_code == 422 and "The two passwords differ." in text(r)
    r = post(client, f"{page_path}/users", {**user, "username": "org-user"}, page=page_path)
    assert r.status_code == 422 and "the user name org-user is taken" in text(r)
    assert post(client, f"{page_path}/users", user, page=page_path).status_code == 303
    page = text(client.get(page_path))
    assert "arena-desk" in page and "Zhang Wei" not in page  # the name is masked
    assert "sign in" in text(hub.app.test_client().get("/partner/sign-in")).lower()


def test_a_portal_user_is_disabled_only_through_its_own_partners_page(hub):
    client = hub.client("finance")
    org_page = f"/finance/partners/{hub.org}"
    r = post(client, f"{org_page}/users/{hub.rival_user}/state", {"state": "disabled"},
             page=org_page)
    assert r.status_code == 404
    r = post(client, f"{org_page}/users/{hub.org_user}/state", {"state": "disabled"},
             page=org_page, follow_redirects=True)
    assert "cannot sign in any more" in text(r)


def test_only_finance_managers_change_partners(hub):
    assert hub.client("sales").get("/finance/partners").status_code == 403
    r = post(hub.client("admin"), f"/finance/partners/{hub.org}",
             {"name": "Orchard", "settle_days": "5", "state": "suspended"},
             page=f"/finance/partners/{hub.org}")
    assert r.status_code == 303
    assert "suspended" in text(hub.client("finance").get(f"/finance/partners/{hub.org}"))


# -- split rules ---------------------------------------------------------------------------------------


def test_a_rule_is_added_and_ended_and_bad_fields_are_named(hub):
    client = hub.client("finance")
    r = post(client, "/finance/rules", {"part": "platform", "percent": "5.5", "fixed": "1.20"},
             page="/finance/rules")
    assert r.status_code == 303
    page = text(client.get("/finance/rules"))
    assert "5.50 %" in page and "1.20 CNY" in page
    for form, words in (({"part": "venue", "percent": "5"}, "Partner: give a whole number"),
                        ({"part": "platform", "percent": "101"}, "Percentage: give a percentage"),
                        ({"part": "platform", "fixed": "1.234"}, "Fixed amount per ticket: give"),
                        ({"part": "platform", "effective_from": "2020-01-01T10:00"},
                         "In force from is missing or not valid."),
                        ({"part": "organiser", "partner_id": str(hub.org), "percent": "3"},
                         "Percentage is missing or not valid."),
                        ({"part": "platform", "channel": "moon"}, "Channel: choose from")):
        r = post(client, "/finance/rules", form, page="/finance/rules")
        assert r.status_code == 422 and words in text(r), words
    rule_id = re.search(r"<td>(\d+)</td><td>platform fee", page).group(1)
    r = post(client, f"/finance/rules/{rule_id}/end", {"effective_until": ""},
             page="/finance/rules", follow_redirects=True)
    assert f"Split rule {rule_id} ends" in text(r)
    assert "5.50 %" not in text(client.get("/finance/rules"))
    assert "5.50 %" in text(client.get("/finance/rules?show=all"))
    assert post(client, "/finance/rules/999999/end", page="/finance/rules").status_code == 404


# -- settlements ---------------------------------------------------------------------------------------


def test_a_run_makes_statements_that_another_person_marks_paid_after_confirming(hub):
    maker, checker = hub.client("finance"), hub.client("finance2")
    r = post(maker, "/finance/settlements", {"as_of": ""}, page="/finance/settlements")
    assert r.status_code == 303
    run = text(maker.get(r.headers["Location"]))
    assert "ORG" in run and "RIVAL" in run and "95.00 CNY" in run
    statement = re.search(r'href="/finance/statements/(\d+)">\d+</a></td><td>ORG', run).group(1)
    path = f"/finance/statements/{statement}"
    page = text(maker.get(path))
    assert "You prepared this statement" in page and "confirm-pay" not in page
    assert maker.get(f"{path}.csv").mimetype == "text/csv"
    assert maker.get(f"{path}.pdf").data.startswith(b"%PDF")
    # the maker may not: refused in words, nothing paid
    r = post(maker, f"{path}/pay", {"reference": "BANK-1"}, page=path, follow_redirects=True)
    assert "another person with the pay permission" in text(r)
    confirm = text(checker.get(f"{path}/confirm-pay"))
    assert "This cannot be undone." in confirm and 'name="reference"' in confirm
    r = post(checker, f"{path}/pay", {"reference": ""}, page=path, follow_redirects=True)
    assert "Bank reference: give a value." in text(r)
    r = post(checker, f"{path}/pay", {"reference": "BANK-1"}, page=path, follow_redirects=True)
    assert "marked paid" in text(r) and "BANK-1" in text(r)
    assert "prepared, not paid yet" not in text(checker.get(path))
    r = checker.get(f"{path}/confirm-cancel", follow_redirects=True)
    assert f"statement {statement} is paid" in text(r)


def test_cancelling_a_statement_is_confirmed_first_and_frees_its_lines(hub):
    client = hub.client("finance")
    r = post(client, "/finance/settlements", {"as_of": ""}, page="/finance/settlements")
    run_page = text(client.get(r.headers["Location"]))
    statement = re.search(r'href="/finance/statements/(\d+)">\d+</a></td><td>RIVAL',
                          run_page).group(1)
    path = f"/finance/statements/{statement}"
    assert "Withdraw this statement?" in text(client.get(f"{path}/confirm-cancel"))
    r = post(client, f"{path}/cancel", page=path, follow_redirects=True)
    assert "The statement is cancelled" in text(r)
    assert hub.client("admin").get(f"{path}/confirm-pay").status_code == 403  # admin: no pay
    r = post(client, "/finance/settlements", {"as_of": ""}, page="/finance/settlements")
    assert "RIVAL" in text(client.get(r.headers["Location"]))  # due again, in the next run
    for as_of in ("tomorrow", "0001-01-01T00:00"):
        r = post(client, "/finance/settlements", {"as_of": as_of}, page="/finance/settlements")
        assert r.status_code == 422 and "Settle up to: give a date and time." in text(r)
    assert client.get("/finance/statements/999999").status_code == 404
    assert client.get("/finance/settlements/999999").status_code == 404


# -- reconciliation ------------------------------------------------------------------------------------


def test_exceptions_are_resolved_after_a_confirmation_and_an_adjustment_balances(hub):
    with hub.engine.begin() as conn:
        found = reconcile_day(conn, NOW - timedelta(days=2))
    assert set(found) == {"amount_differs", "missing_from_statement", "missing_in_ledger"}
    client = hub.client("finance")
    page = text(client.get("/finance/reconciliation"))
    for words in ("amounts differ", "in the ledger, not in the statement", "W-LOST-0003",
                  "a missing callback", "100.00 CNY", "90.00 CNY"):
        assert words in page, words
    differs = found["amount_differs"].id
    confirm = text(client.get(f"/finance/reconciliation/{differs}/confirm/adjust"))
    assert "Post an adjustment of -10.00 CNY" in confirm and "This cannot be undone." in confirm
    r = post(client, f"/finance/reconciliation/{differs}/resolve",
             {"action": "adjust", "note": "fee taken\r\ntwice"}, page="/finance/reconciliation",
             follow_redirects=True)
    assert f"Exception {differs}: Post an adjustment, done." in text(r)
    assert "0.00 CNY" in text(client.get("/finance/"))  # the trial balance still sums to zero
    assert "Reconciliation suspense" in text(client.get("/finance/"))
    assert "fee taken twice" in text(client.get("/finance/reconciliation"))
    r = post(client, f"/finance/reconciliation/{differs}/resolve", {"action": "accept"},
             page="/finance/reconciliation", follow_redirects=True)
    assert "is adjusted already" in text(r)
    lost = found["missing_in_ledger"].id
    r = post(client, f"/finance/reconciliation/{lost}/resolve", {"action": "follow_up"},
             page="/finance/reconciliation", follow_redirects=True)
    assert "Mark for follow-up, done." in text(r)
    r = post(client, f"/finance/reconciliation/{lost}/resolve", {"action": "shrug"},
             page="/finance/reconciliation", follow_redirects=True)
    assert "Action: choose from the list." in text(r)
    assert "to follow up" in text(client.get("/finance/reconciliation?state=follow_up"))
    assert client.get("/finance/reconciliation/999999/confirm/accept").status_code == 404
    assert hub.client("sales").get("/finance/reconciliation").status_code == 403


def test_the_import_form_names_its_fields_and_says_what_it_found(hub):
    calls = []

    class Imported:
        rows, exceptions = 4, [object()]

    hub.app.extensions["ledger_statement_providers"] = lambda: ["wechat"]
    hub.app.extensions["ledger_statement_import"] = \
        lambda *args: calls.append(args) or Imported()
    client = hub.client("finance")
    page = "/finance/reconciliation"
    for form, words in (({"provider": "paypal", "day": "2026-07-01"},
                         "Payment provider: choose from the list."),
                        ({"provider": "wechat", "day": "07/01/2026"}, "Day: give a date"),
                        ({"provider": "wechat", "day": "2999-01-01"}, "ready the day after")):
        r = post(client, f"{page}/import", form, page=page)
        assert r.status_code == 422 and words in text(r).replace("&#39;", "'"), words
    assert calls == []
    r = post(client, f"{page}/import", {"provider": "wechat", "day": "2026-07-01"}, page=page,
             follow_redirects=True)
    assert "4 rows, 1 new exceptions" in text(r)
    assert [(c[0], c[1].isoformat()) for c in calls] == [("wechat", "2026-07-01")]


def test_the_ticket_library_and_costs_reports_take_a_period(hub):
    client = hub.client("finance")
    assert "No orders paid in this period." in text(client.get("/finance/library"))
    page = text(client.get("/finance/costs"))
    assert 'id="costs"' in page
    for bad_query in ("since=2026-13-01", "since=2026-07-10&until=2026-07-01",
                      "since=2026-01-01&until=2026-12-31", "until=x"):
        r = client.get(f"/finance/library?{bad_query}")
        assert r.status_code == 400, bad_query
    r = client.get("/finance/costs?until=x", headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 400 and "地址中的截至为 x" in text(r)
