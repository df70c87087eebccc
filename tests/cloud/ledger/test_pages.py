"""The finance pages on the test client, on both databases: the trial balance, an account's
history, the journal's entries and an entry's postings; who may open them; and a bad
address refused naming its argument."""

from __future__ import annotations

import re

import pytest

from cloud.ledger import chart, reads
from tests.cloud.ledger.ledgerpages import build_ledger_hub
from tests.cloud.pagekit import text


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
    for words in ("Orchard Live: payable", "Rival Promotions: payable", "Clearing at wechat",
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
