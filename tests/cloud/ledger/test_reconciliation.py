"""Reconciliation of a provider's statement with the ledger, on both databases: orders paid
and refunded through the payments area's own flow post the entries; each difference planted in
the statement is exactly one exception of its kind; a day imported again adds nothing; an
exception is resolved once, audited, and an adjustment is a balanced entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.core.audit import audit_log
from cloud.ledger import chart
from cloud.ledger.errors import LedgerError
from cloud.ledger.journal import balance, entry_of, legs_of, trial_balance
from cloud.ledger.reconciliation import (
    CHINA,
    StatementLine,
    day_window,
    exceptions,
    imports,
    reconcile,
    resolve,
)
from cloud.ledger.tables import recon_imports
from cloud.payments.checkout import open_payment
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order
from tests.cloud.ledger.reconkit import make_shop, pay, refund

NOW = datetime.now(UTC)
DAY = NOW.astimezone(CHINA).date()


@pytest.fixture
def shop(hub_url):
    shop = make_shop(hub_url)
    yield shop
    shop.engine.dispose()


@pytest.fixture
def day(shop):
    """Two payments at WeChat, the first partly refunded, all posted today (China time), and
    the statement that agrees with them line for line."""
    first, second = pay(shop, now=NOW), pay(shop, tickets=1, now=NOW)
    refund_no = refund(shop, first, 10_000, now=NOW)
    lines = [StatementLine("payment", first.out_trade_no, first.amount),
             StatementLine("payment", second.out_trade_no, second.amount),
             StatementLine("refund", first.out_trade_no, 10_000, refund_no)]
    return first, second, refund_no, lines


def _import(shop, lines, day=DAY, **kw):
    with shop.engine.begin() as conn:
        return reconcile(conn, "wechat", day, lines, "staff:1", NOW, **kw)


def _seen(imported) -> list[tuple]:
    return [(x.kind, x.entry, x.out_trade_no, x.out_refund_no, x.hub_amount,
             x.statement_amount) for x in imported.exceptions]


def test_a_statement_that_agrees_with_the_ledger_raises_nothing(shop, day):
    *_, lines = day
    imported = _import(shop, lines)
    assert (imported.rows, imported.exceptions) == (3, [])
    with shop.engine.connect() as conn:
        [row] = imports(conn)
        assert (row.provider, row.day, row.rows, row.exceptions) == (
            "wechat", DAY.isoformat(), 3, 0)
        assert conn.execute(sa.select(audit_log.c.action, audit_log.c.subject).where(
            audit_log.c.action == "ledger.statement.import")).all() == [
            ("ledger.statement.import", f"wechat:{DAY.isoformat()}")]


def _unpaid(shop) -> tuple[str, int]:
    """A trade the provider took but whose notification never came: the hub's payment is
    still open, the ledger has nothing."""
    with shop.engine.begin() as conn:
        order = create_order(conn, OrderRequest(shop.session, (LineRequest(
            zone_id=shop.zone, price_tier_id=shop.tier),), actor="staff:1"), NOW)
        row = open_payment(conn, "wechat", order.order_id, order.total, NOW)
    return row.out_trade_no, order.total


def test_each_planted_difference_is_exactly_one_exception_of_its_kind(shop, day):
    first, second, refund_no, lines = day
    lost_trade, lost_amount = _unpaid(shop)
    planted = [
        lines[1:],                                                    # first payment left out
        [lines[0], StatementLine("payment", second.out_trade_no, second.amount + 1), lines[2]],
        [*lines, StatementLine("payment", lost_trade, lost_amount)],
        [*lines, StatementLine("refund", first.out_trade_no, 500, "R-never-asked")],
        [*lines, lines[1]],
    ]
    found = []
    for statement in planted:  # the same day again: only the planted difference is new
        found += _seen(_import(shop, statement))
    assert found == [
        ("missing_from_statement", "payment", first.out_trade_no, "", first.amount, None),
        ("amount_differs", "payment", second.out_trade_no, "", second.amount,
         second.amount + 1),
        ("missing_in_ledger", "payment", lost_trade, "", None, lost_amount),
        ("unknown_refund", "refund", first.out_trade_no, "R-never-asked", None, 500),
        ("duplicate", "payment", second.out_trade_no, "", second.amount, 2 * second.amount),
    ]


def test_a_refund_asked_for_whose_notification_never_came_is_missing_in_the_ledger(shop,
                                                                                  day):
    first, _second, _refund_no, lines = day
    lost = refund(shop, first, 2_000, now=NOW, succeed=False)
    statement = [*lines, StatementLine("refund", first.out_trade_no, 2_000, lost)]
    assert _seen(_import(shop, statement, asked_refunds={lost})) == [
        ("missing_in_ledger", "refund", first.out_trade_no, lost, None, 2_000)]


def test_the_ledger_side_is_the_day_in_china_time_and_what_the_statement_names(shop):
    since, until = day_window(DAY)
    assert since.astimezone(CHINA).hour == 0 and until - since == timedelta(days=1)
    late = pay(shop, now=since - timedelta(minutes=1))       # posted the evening before
    today = pay(shop, tickets=1, now=since + timedelta(minutes=1))
    # the statement of the day before lists the late one: its entry is matched though it was
    # posted the next day; today's payment is not the day before's business
    assert _seen(_import(shop, [StatementLine("payment", late.out_trade_no, late.amount)],
                         since.astimezone(CHINA).date() - timedelta(days=1))) == []
    assert _seen(_import(shop, [], DAY)) == [
        ("missing_from_statement", "payment", today.out_trade_no, "", today.amount, None)]


def test_a_payment_no_order_kept_is_matched_by_its_unplaced_entry(shop):
    paid = pay(shop, tickets=1, amount=12_345, now=NOW)    # not the order's total
    with shop.engine.connect() as conn:
        assert entry_of(conn, f"payment:{paid.payment_id}").kind == "unplaced"
    assert _seen(_import(shop, [StatementLine("payment", paid.out_trade_no, 12_345)])) == []


def test_importing_a_day_again_adds_no_exception_twice(shop, day):
    *_, lines = day
    assert len(_import(shop, lines[1:]).exceptions) == 1
    again = _import(shop, lines[1:])
    assert again.exceptions == []
    with shop.engine.connect() as conn:
        assert len(exceptions(conn)) == 1
        assert [r.exceptions for r in conn.execute(
            sa.select(recon_imports).order_by(recon_imports.c.id))] == [1, 0]


def _audit(shop, action: str) -> list:
    with shop.engine.connect() as conn:
        return conn.execute(sa.select(audit_log).where(audit_log.c.action == action)).all()


def test_accept_and_follow_up_are_audited_and_resolve_once(shop, day):
    first, second, refund_no, lines = day
    [x] = _import(shop, lines[1:]).exceptions
    [y] = _import(shop, [*lines, lines[0]]).exceptions
    with shop.engine.begin() as conn:
        later = resolve(conn, x.id, "follow_up", "asked WeChat", "staff:2", NOW)
        assert (later.state, later.resolved_by, later.note) == ("follow_up", "staff:2",
                                                                "asked WeChat")
        done = resolve(conn, x.id, "accept", "WeChat listed it a day late", "staff:2", NOW)
        assert done.state == "accepted" and done.adjustment_entry_id is None
        assert resolve(conn, y.id, "accept", "", "staff:3", NOW).state == "accepted"
        assert [r.id for r in exceptions(conn, state="open")] == []
        assert [r.id for r in exceptions(conn, state="accepted", provider="wechat")] == [
            x.id, y.id]
    assert [(a.actor, a.subject, a.before, a.after["state"])
            for a in _audit(shop, "ledger.exception.follow_up")] == [
        ("staff:2", f"recon_exception:{x.id}", {"state": "open"}, "follow_up")]
    assert len(_audit(shop, "ledger.exception.accept")) == 2


@pytest.mark.parametrize("action, code", [("adjust", "exception_resolved"),
                                          ("accept", "exception_resolved"),
                                          ("ignore", "bad_ledger_request")])
def test_a_resolved_exception_or_an_unknown_action_is_refused(shop, day, action, code):
    *_, lines = day
    [x] = _import(shop, lines[1:]).exceptions
    with shop.engine.begin() as conn:
        resolve(conn, x.id, "accept", "", "staff:2", NOW)
    with shop.engine.begin() as conn, pytest.raises(LedgerError) as e:
        resolve(conn, x.id, action, "", "staff:2", NOW)
    assert e.value.code == code
    with shop.engine.begin() as conn, pytest.raises(LedgerError) as e:
        resolve(conn, x.id + 100, "accept", "", "staff:2", NOW)
    assert e.value.code == "unknown_exception"


def test_an_adjustment_is_a_balanced_entry_between_clearing_and_suspense(shop, day):
    first, second, refund_no, lines = day
    clearing = chart.clearing("wechat")
    with shop.engine.connect() as conn:
        before = balance(conn, clearing)
    [more] = _import(shop, [lines[0], StatementLine("payment", second.out_trade_no,
                                                    second.amount + 7), lines[2]]).exceptions
    [back] = _import(shop, [*lines, StatementLine("refund", first.out_trade_no, 500, "R-x")],
                     DAY - timedelta(days=1)).exceptions
    with shop.engine.begin() as conn:
        adjusted = resolve(conn, more.id, "adjust", "WeChat took 7 fen more", "staff:2", NOW)
        resolve(conn, back.id, "adjust", "refund we never asked for", "staff:2", NOW)
        entry = entry_of(conn, f"adjustment:{more.id}")
        assert adjusted.state == "adjusted" and adjusted.adjustment_entry_id == entry.id
        assert (entry.kind, entry.provider, entry.reference) == (
            "adjustment", "wechat", second.out_trade_no)
        assert sorted((leg.account, leg.amount) for leg in legs_of(conn, entry.id)) == [
            (clearing, 7), (chart.SUSPENSE, -7)]
        assert balance(conn, clearing) == before + 7 - 500
        assert balance(conn, chart.SUSPENSE) == -7 + 500
        assert trial_balance(conn) == {"CNY": 0}
    [audited, _] = _audit(shop, "ledger.exception.adjust")
    assert audited.after["adjustment_entry_id"] == entry.id
    # the adjustment is not a payment: importing the day again finds the same difference, which
    # is recorded already, and nothing new
    assert _import(shop, [lines[0], StatementLine("payment", second.out_trade_no,
                                                  second.amount + 7), lines[2]]).exceptions == []


@pytest.mark.parametrize("line", [StatementLine("payment", "", 100),
                                  StatementLine("refund", "T1", 100),
                                  StatementLine("payment", "T1", -1),
                                  StatementLine("transfer", "T1", 100)])
def test_a_malformed_statement_line_is_refused_and_nothing_is_imported(shop, line):
    with pytest.raises(LedgerError) as e:
        _import(shop, [StatementLine("payment", "T0", 100), line])
    assert (e.value.code, e.value.params["field"]) == ("bad_ledger_request", "lines.1")
    with shop.engine.connect() as conn:
        assert imports(conn) == [] and exceptions(conn) == []
