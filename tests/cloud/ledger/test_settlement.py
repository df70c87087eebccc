"""Settlement runs on both databases: each partner's due lines on its own cycle, figures that
add up with the ledger, a payout held until someone other than its preparer marks it paid, a
run that stops resumed without settling anything twice, and a cancelled statement's lines
settled again later."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from cloud.core.audit import audit_log
from cloud.ledger import chart, settlement
from cloud.ledger.errors import LedgerError
from cloud.ledger.journal import available, balance, entry_of, trial_balance
from cloud.ledger.partners import edit_partner
from cloud.ledger.settlement import (
    cancel_statement,
    mark_paid,
    resume_run,
    run_settlement,
    runs,
    start_run,
    statement,
    statement_lines,
    statements,
)
from cloud.ledger.tables import settlement_items, settlement_runs
from tests.cloud.ledger.settlekit import day, refund, sell, set_up


@pytest.fixture
def ids(engine):
    with engine.begin() as conn:
        return set_up(conn)


def _by_partner(conn, run_id) -> dict[str, sa.Row]:
    return {s.partner_code: s for s in statements(conn, run_id=run_id)}


def _items(conn) -> list[int]:
    return list(conn.execute(sa.select(settlement_items.c.posting_id)).scalars())


def test_a_run_states_what_is_due_on_each_partners_cycle(engine, ids):
    with engine.begin() as conn:
        sell(conn, 1, 10000, day(0))
        sell(conn, 2, 20000, day(4))
        sell(conn, 3, 5000, day(7.5))
    run_id = run_settlement(engine, day(8), "maker", day(8))
    with engine.begin() as conn:
        got = _by_partner(conn, run_id)
        # ORG is T+7: only what was posted before day 1; VEN is T+3: before day 5
        org, ven = got["ORG"], got["VEN"]
        assert (org.lines, org.gross, org.sales, org.refunds, org.fees, org.net) == (
            1, 10000, 8440, 0, 560, 8440)
        assert (ven.lines, ven.gross, ven.sales, ven.net) == (2, 30000, 3000, 3000)
        assert org.period_until == day(1) and ven.period_until == day(5)
        assert [line.order_number for line in statement_lines(conn, ven.id)] == [
            "W00001", "W00002"]
        line = statement_lines(conn, org.id)[0]
        assert (line.key, line.kind, line.reference, line.gross, line.share, line.fees) == (
            "payment:1", "payment", "T00001", 10000, 8440, 560)
        # the figures are the ledger's: the payable's balance up to the cutoff is the net
        assert balance(conn, chart.payable(ids["ORG"]), until=day(1)) == org.net
        assert balance(conn, chart.payable(ids["VEN"]), until=day(5)) == ven.net
        # the payout is pending: it holds the net, the balance is unchanged until paid
        payout = entry_of(conn, f"payout:{org.id}")
        assert (payout.state, payout.amount, org.payout_entry_id) == ("pending", 8440, payout.id)
        assert available(conn, chart.payable(ids["ORG"])) == \
            balance(conn, chart.payable(ids["ORG"])) - 8440
        assert [(r.id, r.state, r.statements, r.net) for r in runs(conn)] == [
            (run_id, "done", 2, 11440)]


def test_paying_a_statement_posts_its_payout_and_the_ledger_agrees(engine, ids):
    with engine.begin() as conn:
        sell(conn, 1, 10000, day(0))
        sell(conn, 2, 20000, day(6))
    run_id = run_settlement(engine, day(8), "maker", day(8))
    with engine.begin() as conn:
        org = _by_partner(conn, run_id)["ORG"]
        before = balance(conn, chart.payable(ids["ORG"]))
        mark_paid(conn, org.id, "BANK-0001", "checker", day(9))
        paid = statement(conn, org.id)
        assert (paid.state, paid.paid_by, paid.pay_reference) == ("paid", "checker", "BANK-0001")
        assert entry_of(conn, f"payout:{org.id}").state == "posted"
        assert balance(conn, chart.payable(ids["ORG"])) == before - org.net == 16880
        assert balance(conn, chart.BANK) == -(org.net)
        assert trial_balance(conn) == {"CNY": 0}
        actions = conn.execute(sa.select(audit_log.c.action, audit_log.c.actor)
                               .order_by(audit_log.c.id.desc())).first()
        assert tuple(actions) == ("settlement.paid", "checker")
    # the payout is no line of a later statement; the later sale is
    later = run_settlement(engine, day(14), "maker", day(14))
    with engine.begin() as conn:
        again = _by_partner(conn, later)["ORG"]
        assert (again.lines, again.net) == (1, 16880)
        # what the payable still holds after the first payout is what this one states
        assert balance(conn, chart.payable(ids["ORG"])) == again.net


def test_the_preparer_may_not_mark_a_statement_paid(engine, ids):
    with engine.begin() as conn:
        sell(conn, 1, 10000, day(0))
    run_id = run_settlement(engine, day(8), "maker", day(8))
    with engine.begin() as conn:
        org = _by_partner(conn, run_id)["ORG"]
        with pytest.raises(LedgerError) as same:
            mark_paid(conn, org.id, "BANK-1", "maker", day(9))
        assert same.value.code == "same_person"
        assert statement(conn, org.id).state == "prepared"
        assert entry_of(conn, f"payout:{org.id}").state == "pending"
        with pytest.raises(LedgerError) as bad:
            mark_paid(conn, org.id, " ", "checker", day(9))
        assert bad.value.params["field"] == "reference"
        mark_paid(conn, org.id, "BANK-1", "checker", day(9))
        with pytest.raises(LedgerError) as twice:
            mark_paid(conn, org.id, "BANK-2", "auditor", day(9))
        assert (twice.value.code, twice.value.params["state"]) == ("statement_state", "paid")
        with pytest.raises(LedgerError) as cancel:
            cancel_statement(conn, org.id, "checker", day(9))
        assert cancel.value.code == "statement_state"
        with pytest.raises(LedgerError) as unknown:
            mark_paid(conn, 999, "BANK-3", "checker", day(9))
        assert unknown.value.code == "unknown_statement"


def test_a_run_stopped_after_one_partner_is_resumed_without_settling_twice(engine, ids):
    with engine.begin() as conn:
        for n in range(1, 6):
            sell(conn, n, 1000 * n, day(0))

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_settlement(engine, day(8), "maker", day(8), progress=stop)
    with engine.begin() as conn:
        run = conn.execute(sa.select(settlement_runs)).one()
        assert run.state == "running"
        assert [s.partner_code for s in statements(conn, run_id=run.id)] == ["ORG"]
        first = _items(conn)
    seen = []
    resume_run(engine, run.id, day(8), progress=lambda done, total: seen.append((done, total)))
    resume_run(engine, run.id, day(8))
    with engine.begin() as conn:
        assert seen == [(1, 1)]
        got = _by_partner(conn, run.id)
        assert set(got) == {"ORG", "VEN"}
        assert (got["ORG"].lines, got["VEN"].lines) == (5, 5)
        items = _items(conn)
        assert len(items) == len(set(items)) == 10 and set(first) < set(items)
        assert conn.execute(sa.select(settlement_runs.c.state)).scalar() == "done"
        assert got["ORG"].net + got["VEN"].net == \
            balance(conn, chart.payable(ids["ORG"])) + balance(conn, chart.payable(ids["VEN"]))


def test_two_runs_over_the_same_period_settle_each_line_once(engine, ids):
    with engine.begin() as conn:
        sell(conn, 1, 10000, day(0))
        sell(conn, 2, 10000, day(0.5))
    first = run_settlement(engine, day(8), "maker", day(8))
    second = run_settlement(engine, day(8), "maker", day(8))
    with engine.begin() as conn:
        assert set(_by_partner(conn, first)) == {"ORG", "VEN"}
        assert statements(conn, run_id=second) == []
        assert len(_items(conn)) == 4
        with pytest.raises(LedgerError) as later:
            start_run(conn, day(9), "maker", day(8))
        assert later.value.params["field"] == "as_of"


def test_a_refund_in_the_window_waits_with_its_sale(engine, ids):
    with engine.begin() as conn:
        sold = sell(conn, 1, 10000, day(0.5))
        late = sell(conn, 2, 10000, day(7.5))
        refund(conn, sold, 1, 10000, day(7.6))  # after ORG's cutoff, of a sale before it
        refund(conn, late, 2, 4000, day(7.7))  # of a sale after the cutoff: it waits
    run_id = run_settlement(engine, day(8), "maker", day(8))
    with engine.begin() as conn:
        org = _by_partner(conn, run_id)["ORG"]
        assert (org.lines, org.sales, org.refunds, org.net, org.payout_entry_id) == (
            2, 8440, 8440, 0, None)
        assert [line.kind for line in statement_lines(conn, org.id)] == ["payment", "refund"]
    run_id = run_settlement(engine, day(15), "maker", day(15))
    with engine.begin() as conn:
        org = _by_partner(conn, run_id)["ORG"]
        assert (org.lines, org.sales, org.refunds, org.net) == (2, 8440, 3376, 5064)
        assert org.net == balance(conn, chart.payable(ids["ORG"]))
        assert org.gross == 10000 - 4000


def test_a_cancelled_statement_frees_its_lines_and_its_payout(engine, ids):
    with engine.begin() as conn:
        sell(conn, 1, 10000, day(0))
    run_id = run_settlement(engine, day(8), "maker", day(8))
    with engine.begin() as conn:
        org = _by_partner(conn, run_id)["ORG"]
        cancel_statement(conn, org.id, "checker", day(9))
        assert statement(conn, org.id).state == "cancelled"
        assert entry_of(conn, f"payout:{org.id}").state == "voided"
        assert available(conn, chart.payable(ids["ORG"])) == 8440
        assert statement_lines(conn, org.id) == []
    again = run_settlement(engine, day(10), "maker", day(10))
    with engine.begin() as conn:
        redo = _by_partner(conn, again)["ORG"]
        assert (redo.lines, redo.net) == (1, 8440)
        assert [r.net for r in runs(conn)] == [8440, 1000]


def test_a_suspended_partner_is_not_settled(engine, ids):
    with engine.begin() as conn:
        sell(conn, 1, 10000, day(0))
        edit_partner(conn, ids["VEN"], actor="fin", now=day(1), state="suspended")
    run_id = run_settlement(engine, day(8), "maker", day(8))
    with engine.begin() as conn:
        assert set(_by_partner(conn, run_id)) == {"ORG"}


def test_two_runs_at_once_settle_each_line_once_and_every_fen_owed(engine, ids):
    with engine.begin() as conn:
        for n in range(1, 21):
            sell(conn, n, 1000 + 37 * n, day(n / 100))
    start = threading.Barrier(2)
    got: list[int] = []

    def settle_now():
        start.wait()
        got.append(run_settlement(engine, day(8), "maker", day(8)))

    workers = [threading.Thread(target=settle_now) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with engine.begin() as conn:
        assert len(got) == 2
        written = [s for run_id in got for s in statements(conn, run_id=run_id)]
        assert sorted(s.partner_code for s in written) == ["ORG", "VEN"]
        assert all(s.lines == 20 for s in written)
        items = _items(conn)
        assert len(items) == len(set(items)) == 40
        assert sum(s.net for s in written) == sum(
            balance(conn, chart.payable(pid)) for pid in ids.values())


def test_a_refund_of_a_sale_paid_out_waits_for_sales_to_set_it_against(engine, ids):
    with engine.begin() as conn:
        first = sell(conn, 1, 10000, day(0))
    paid_run = run_settlement(engine, day(8), "maker", day(8))
    with engine.begin() as conn:
        for s in statements(conn, run_id=paid_run):
            mark_paid(conn, s.id, f"BANK-{s.id}", "checker", day(8))
        sell(conn, 2, 20000, day(10))
        refund(conn, first, 1, 10000, day(11))  # taken from the second sale's money
    early = run_settlement(engine, day(12), "maker", day(12))
    with engine.begin() as conn:
        assert statements(conn, run_id=early) == []  # the refund alone would be below zero
    later = run_settlement(engine, day(18), "maker", day(18))
    with engine.begin() as conn:
        org = _by_partner(conn, later)["ORG"]
        assert (org.lines, org.sales, org.refunds, org.net) == (2, 16880, 8440, 8440)
        assert org.net == balance(conn, chart.payable(ids["ORG"]))
        # over both statements the organiser gets exactly its part of what was kept
        assert 8440 + org.net == 16880


def test_the_worker_settles_once_a_china_day_after_two_oclock(engine, ids):
    """Sales posted ten days back are due for both partners: the worker's task makes one run
    a day, as of the day's start in China time, and finishes a run of the day that stopped."""
    with engine.begin() as conn:
        sell(conn, 1, 10_000, day(0))
    china = timezone(timedelta(hours=8))
    early = datetime(2026, 7, 11, 1, 59, tzinfo=china)
    assert settlement.daily_settlement(engine, early) == 0  # the day before is not whole yet
    later = datetime(2026, 7, 11, 2, 30, tzinfo=china)
    assert settlement.daily_settlement(engine, later) == 1
    assert settlement.daily_settlement(engine, later + timedelta(hours=1)) == 0
    with engine.connect() as conn:
        (run,) = settlement.runs(conn)
        made = settlement.statements(conn, run_id=run.id)
    assert run.as_of == datetime(2026, 7, 11, tzinfo=china) and run.state == "done"
    assert run.started_by == settlement.SETTLE_ACTOR
    assert {s.partner_id for s in made} == set(ids.values())
    with engine.begin() as conn:  # a run of the next day that stopped before any partner
        stopped = settlement.start_run(conn, datetime(2026, 7, 12, tzinfo=china), "fin",
                                       later + timedelta(days=1))
    assert settlement.daily_settlement(engine, later + timedelta(days=1)) == 1
    with engine.connect() as conn:
        assert [r.state for r in settlement.runs(conn) if r.id == stopped] == ["done"]
        assert len(settlement.runs(conn)) == 2
