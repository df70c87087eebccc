"""The journal's rules, on both databases: entries balance, an event posts once, guarded
accounts never go below zero, pending entries hold and are then posted or voided, and the
database itself refuses any change to a posted entry or a posting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from cloud.core.db import init_db, make_engine
from cloud.ledger import chart
from cloud.ledger.errors import LedgerError
from cloud.ledger.journal import (
    Leg,
    available,
    balance,
    open_account,
    post,
    post_pending,
    reverse,
    trial_balance,
    void,
)
from cloud.ledger.tables import ledger_entries, ledger_postings, partners

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(hub_url):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        conn.execute(sa.insert(partners).values(id=1, code="ORG", name="Organiser",
                                                kind="organiser", created_by="t",
                                                created_at=NOW))
        for code in (chart.clearing("wechat"), chart.payable(1), chart.BANK,
                     chart.PLATFORM_REVENUE):
            chart.ensure(conn, code, now=NOW)
        open_account(conn, "prepaid:1", "Prepaid", "liability", guarded=True, now=NOW)
    yield engine
    engine.dispose()


def _sale(key: str, amount: int, fee: int) -> list[Leg]:
    return [Leg(chart.clearing("wechat"), amount, "clearing"),
            Leg(chart.payable(1), -(amount - fee), "organiser"),
            Leg(chart.PLATFORM_REVENUE, -fee, "platform")]


def test_an_entry_posts_once_and_balances_follow(engine):
    with engine.begin() as conn:
        first = post(conn, "payment:1", "payment", _sale("payment:1", 10000, 500), now=NOW)
        again = post(conn, "payment:1", "payment", _sale("payment:1", 10000, 500), now=NOW)
        assert not first.replayed and again.replayed and again.entry_id == first.entry_id
        assert balance(conn, chart.clearing("wechat")) == 10000
        assert balance(conn, chart.payable(1)) == 9500
        assert available(conn, chart.payable(1)) == 9500
        assert balance(conn, chart.PLATFORM_REVENUE) == 500
        assert trial_balance(conn) == {"CNY": 0}
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger_postings)).scalar() == 3


@pytest.mark.parametrize("legs, code", [
    ([Leg(chart.BANK, 100, "x"), Leg(chart.PLATFORM_REVENUE, -99, "x")], "unbalanced_entry"),
    ([Leg(chart.BANK, 100, "x")], "malformed_entry"),
    ([Leg(chart.BANK, 0, "x"), Leg(chart.PLATFORM_REVENUE, 0, "x")], "malformed_entry"),
    ([Leg(chart.BANK, 100, "x"), Leg("nowhere", -100, "x")], "unknown_account"),
])
def test_an_entry_that_does_not_balance_is_refused_and_writes_nothing(engine, legs, code):
    with engine.begin() as conn:
        with pytest.raises(LedgerError) as refused:
            with conn.begin_nested():
                post(conn, "bad", "adjustment", legs, now=NOW)
        assert refused.value.code == code
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger_entries)).scalar() == 0


def test_a_guarded_account_never_goes_below_zero(engine):
    with engine.begin() as conn:
        post(conn, "topup", "topup", [Leg(chart.BANK, 1000, "bank"),
                                      Leg("prepaid:1", -1000, "prepaid")], now=NOW)
        post(conn, "spend:1", "order", [Leg("prepaid:1", 700, "prepaid"),
                                        Leg(chart.PLATFORM_REVENUE, -700, "platform")], now=NOW)
        with pytest.raises(LedgerError) as refused:
            with conn.begin_nested():
                post(conn, "spend:2", "order", [Leg("prepaid:1", 301, "prepaid"),
                                                Leg(chart.PLATFORM_REVENUE, -301, "platform")],
                     now=NOW)
        assert refused.value.code == "insufficient_funds"
        assert refused.value.params["available"] == 300
        assert available(conn, "prepaid:1") == 300 == balance(conn, "prepaid:1")


def test_a_pending_entry_holds_then_posts_or_voids(engine):
    with engine.begin() as conn:
        post(conn, "payment:1", "payment", _sale("payment:1", 10000, 500), now=NOW)
        payout = [Leg(chart.payable(1), 6000, "payout"), Leg(chart.BANK, -6000, "bank")]
        post(conn, "payout:1", "payout", payout, pending=True, now=NOW)
        assert balance(conn, chart.payable(1)) == 9500  # a pending entry counts nowhere yet
        assert available(conn, chart.payable(1)) == 3500  # but what it takes is held
        with pytest.raises(LedgerError):
            with conn.begin_nested():
                post(conn, "payout:2", "payout", [Leg(chart.payable(1), 4000, "payout"),
                                                  Leg(chart.BANK, -4000, "bank")],
                     pending=True, now=NOW)
        assert post_pending(conn, "payout:1", NOW) and not post_pending(conn, "payout:1", NOW)
        assert balance(conn, chart.payable(1)) == 3500 == available(conn, chart.payable(1))
        post(conn, "payout:3", "payout", [Leg(chart.payable(1), 3000, "payout"),
                                          Leg(chart.BANK, -3000, "bank")], pending=True, now=NOW)
        assert void(conn, "payout:3", NOW) and available(conn, chart.payable(1)) == 3500
        with pytest.raises(LedgerError) as refused:
            post_pending(conn, "payout:3", NOW)
        assert refused.value.code == "entry_not_pending"
        assert trial_balance(conn) == {"CNY": 0}


def test_a_correction_is_a_reversing_entry(engine):
    with engine.begin() as conn:
        post(conn, "payment:1", "payment", _sale("payment:1", 10000, 500), now=NOW)
        reversed_ = reverse(conn, "payment:1", "reversal:payment:1", now=NOW)
        assert reverse(conn, "payment:1", "reversal:payment:1", now=NOW).replayed
        assert balance(conn, chart.clearing("wechat")) == 0 == balance(conn, chart.payable(1))
        row = conn.execute(sa.select(ledger_entries)
                           .where(ledger_entries.c.id == reversed_.entry_id)).one()
        assert row.kind == "reversal" and row.reverses is not None


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_postings SET amount = amount + 1",
    "DELETE FROM ledger_postings",
    "UPDATE ledger_entries SET amount = amount + 1",
    "UPDATE ledger_entries SET state = 'voided'",
    "DELETE FROM ledger_entries",
])
def test_the_database_refuses_any_change_to_the_journal(engine, statement):
    with engine.begin() as conn:
        post(conn, "payment:1", "payment", _sale("payment:1", 10000, 500), now=NOW)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(ledger_postings.c.amount))).scalar() == 0
        assert conn.execute(sa.select(ledger_entries.c.state)).scalar() == "posted"
