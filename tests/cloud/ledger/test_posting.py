"""Every payment and refund posts its split in its own transaction, on both databases: the
split follows the rules in force when it was paid, a refund reverses what it refunds, a
payment no order kept is owed back, a retried event posts nothing — and any interleaving of
sales, duplicate payments, cancellations, partial refunds and failed refunds keeps every
entry balanced, the trial balance at zero and no guarded account below zero."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.core.errors import HubError
from cloud.ledger import chart
from cloud.ledger.journal import Leg, balance, post, trial_balance
from cloud.ledger.posting import Paid, post_payment, post_refund
from cloud.ledger.tables import ledger_accounts, ledger_entries, ledger_postings
from cloud.payments.tables import payment_refunds, payments
from cloud.sales.orders import cancel_order
from tests.cloud.ledger.ledgerkit import ORGANISER, VENUE, add_rule, ledger_hub, order, pay, refund
from tests.cloud.orderkit import NOW


@pytest.fixture
def hub(hub_url, key_store):
    h = ledger_hub(hub_url)
    yield h
    h.engine.dispose()


def _parts(conn, key: str) -> dict[str, int]:
    rows = conn.execute(sa.select(ledger_postings.c.part, ledger_postings.c.amount)
                        .join(ledger_entries, ledger_entries.c.id == ledger_postings.c.entry_id)
                        .where(ledger_entries.c.key == key)).all()
    return {part: amount for part, amount in rows}


def test_a_payment_is_split_by_the_rules_and_a_refund_reverses_its_part(hub):
    with hub.engine.begin() as conn:
        made = order(conn, hub, NOW, seats=2)  # 2 × 380.00
        paid = pay(conn, made.order_id, made.total, NOW)
        assert _parts(conn, f"payment:{paid.payment_id}") == {
            "clearing": 76000, "venue": -(7600 + 200), "platform": -3800,
            "provider_fee": -456, "organiser": -(76000 - 7800 - 3800 - 456)}
        assert balance(conn, chart.payable(ORGANISER)) == 63944
        rid = refund(conn, paid.payment_id, 38000, NOW)  # one of the two tickets
        assert _parts(conn, f"refund:{rid}") == {
            "clearing": -38000, "venue": 3900, "platform": 1900, "provider_fee": 228,
            "organiser": 31972}
        assert balance(conn, chart.clearing("wechat")) == 38000
        assert trial_balance(conn) == {"CNY": 0}


def test_a_rule_change_applies_only_to_later_sales(hub):
    change = NOW + timedelta(minutes=30)
    with hub.engine.begin() as conn:
        first = order(conn, hub, NOW)
        add_rule(conn, "platform", None, 800, since=change)  # the newer rule wins from then on
        early = pay(conn, first.order_id, first.total, NOW)
        second = order(conn, hub, change)
        late = pay(conn, second.order_id, second.total, change + timedelta(minutes=1))
        assert _parts(conn, f"payment:{early.payment_id}")["platform"] == -1900
        assert _parts(conn, f"payment:{late.payment_id}")["platform"] == -3040


def test_a_payment_no_order_keeps_is_owed_back_until_refunded(hub):
    with hub.engine.begin() as conn:
        made = order(conn, hub, NOW)
        pay(conn, made.order_id, made.total, NOW)
        second = pay(conn, made.order_id, made.total, NOW, provider="alipay")  # paid twice
        assert _parts(conn, f"payment:{second.payment_id}") == {
            "clearing": 38000, "refunds_payable": -38000}
        refund(conn, second.payment_id, 38000, NOW, provider="alipay")
        assert balance(conn, chart.REFUNDS_PAYABLE) == 0 == balance(conn, chart.clearing("alipay"))


def test_an_event_told_twice_posts_once(hub):
    with hub.engine.begin() as conn:
        made = order(conn, hub, NOW)
        paid = pay(conn, made.order_id, made.total, NOW)
        rid = refund(conn, paid.payment_id, 1000, NOW)
        p = Paid(paid.payment_id, made.order_id, "wechat", paid.out_trade_no, made.total)
        before = conn.execute(sa.select(sa.func.count()).select_from(ledger_postings)).scalar()
        assert post_payment(conn, p, NOW).replayed
        assert post_refund(conn, p, rid, "again", 1000, NOW).replayed
        after = conn.execute(sa.select(sa.func.count()).select_from(ledger_postings)).scalar()
        assert before == after


def test_a_refund_after_the_payout_leaves_the_partner_owing_the_rest(hub):
    with hub.engine.begin() as conn:
        made = order(conn, hub, NOW)
        paid = pay(conn, made.order_id, made.total, NOW)
        owed = balance(conn, chart.payable(VENUE))  # 3800 + 100
        post(conn, "payout:t", "payout", [Leg(chart.payable(VENUE), owed - 1000, "payout"),
                                          Leg(chart.ensure(conn, chart.BANK), -(owed - 1000),
                                              "bank")], now=NOW)
        refund(conn, paid.payment_id, made.total, NOW)
        assert balance(conn, chart.payable(VENUE)) == 0
        assert balance(conn, chart.receivable(VENUE)) == owed - 1000
        assert trial_balance(conn) == {"CNY": 0}


def _step(hub, draw, conn, made: list, paid: list, now) -> None:
    action = draw(st.sampled_from(["order", "pay", "pay_again", "cancel", "refund",
                                   "refund_fails", "replay"]))
    pick = draw(st.integers(0, 999))  # drawn every step, so draws never depend on the data
    cut = draw(st.integers(1, 76000))
    if action == "order":
        made.append(order(conn, hub, now, seats=draw(st.integers(1, 2)),
                          buyer=draw(st.sampled_from(["buyer:1", "box"]))))
    elif action in ("pay", "pay_again") and made:
        o = made[pick % len(made)]
        provider = "wechat" if action == "pay" else "alipay"
        outcome = pay(conn, o.order_id, o.total, now, provider)
        paid.append((outcome.payment_id, provider))
    elif action == "cancel" and made:
        cancel_order(conn, made[pick % len(made)].order_id, now=now)
    elif action in ("refund", "refund_fails") and paid:
        payment_id, provider = paid[pick % len(paid)]
        state = "succeeded" if action == "refund" else "failed"
        refund(conn, payment_id, cut, now, state, provider)
    elif action == "replay" and paid:
        payment_id, provider = paid[pick % len(paid)]
        p = conn.execute(sa.select(payments).where(payments.c.id == payment_id)).one()
        post_payment(conn, Paid(p.id, p.order_id, provider, p.out_trade_no, p.amount), now)


def _check(conn) -> None:
    sums = conn.execute(sa.select(sa.func.sum(ledger_postings.c.amount))
                        .group_by(ledger_postings.c.entry_id)).scalars().all()
    assert all(s == 0 for s in sums)
    assert set(trial_balance(conn).values()) <= {0}
    for a in conn.execute(sa.select(ledger_accounts).where(ledger_accounts.c.guarded)):
        assert a.balance - a.held >= 0 and a.balance == balance(conn, a.code), a.code
    # each payment's clearing: what it took, less its refunds that succeeded
    for p in conn.execute(sa.select(payments).where(payments.c.state == "succeeded")):
        out = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(payment_refunds.c.amount), 0))
                           .where(payment_refunds.c.payment_id == p.id,
                                  payment_refunds.c.state == "succeeded")).scalar()
        cleared = conn.execute(
            sa.select(sa.func.sum(ledger_postings.c.amount))
            .join(ledger_entries, ledger_entries.c.id == ledger_postings.c.entry_id)
            .where(ledger_entries.c.payment_id == p.id,
                   ledger_postings.c.part == "clearing")).scalar()
        assert cleared == p.amount - out


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_interleaving_of_sales_and_refunds_keeps_the_books_balanced(hub, data):
    """Each example runs in one transaction rolled back at its end (the fixture's hub is
    shared by every example); each step is a savepoint, rolled back when refused."""
    made: list = []
    paid: list = []
    now = NOW
    with hub.engine.connect() as conn:
        conn.begin()
        try:
            for _ in range(data.draw(st.integers(1, 14))):
                now += timedelta(minutes=data.draw(st.sampled_from([0, 1, 20])))
                try:
                    with conn.begin_nested():
                        _step(hub, data.draw, conn, made, paid, now)
                except HubError:
                    pass  # refused: nothing changed
                _check(conn)
        finally:
            conn.rollback()
