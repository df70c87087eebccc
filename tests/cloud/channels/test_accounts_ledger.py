"""Partners' prepaid and credit accounts in the ledger, on both databases: an order takes the
prepaid balance first and the rest from the unused credit, in one balanced entry with the
sale's split; refunds give back to the credit first; top-ups and repayments post once per
reference; a cut of the limit the partner has used is refused; twenty orders racing on one
prepaid balance never overdraw it; the partner is warned once at its threshold."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.channels import accounts
from cloud.channels.accounts import AccountsError
from cloud.channels.webhooks import register_tasks
from cloud.core.errors import HubError
from cloud.core.jobs import Tasks, jobs
from cloud.core.outbox import opened, outbox
from cloud.ledger import chart, library
from cloud.ledger.journal import balance, legs_of, trial_balance
from cloud.ledger.tables import ledger_accounts, ledger_entries
from cloud.payments.capturing import place
from cloud.payments.checkout import start_payment
from cloud.payments.settings import make_providers, payment_settings
from cloud.sales.orders import TOPUP_PAID_JOB, open_topup_order
from cloud.sales.tables import orders
from tests.cloud.channels.accountkit import DISTRIBUTOR, PRICE, account_hub, partner_orders, profile
from tests.cloud.ledger.ledgerkit import ORGANISER, VENUE
from tests.cloud.orderkit import NOW

D = DISTRIBUTOR


@pytest.fixture
def hub(hub_url):
    hub, second = account_hub(hub_url)
    hub.orders = partner_orders(hub, second, 20)
    yield hub
    hub.engine.dispose()


def charge(conn, order_id: int, amount: int = PRICE, minutes: int = 0) -> dict:
    return accounts.charge_order(conn, partner_id=D, order_id=order_id, amount=amount,
                                 currency="CNY", now=NOW + timedelta(minutes=minutes),
                                 actor="partner:3")


def test_an_order_takes_the_prepaid_balance_first_then_the_credit(hub):
    with hub.engine.begin() as conn:
        accounts.top_up(conn, D, 50000, "CNY", "BANK-1", "staff:fin", NOW)
        accounts.set_credit_limit(conn, D, 100000, "staff:fin", NOW)
        first = charge(conn, hub.orders[0])
        second = charge(conn, hub.orders[1])
    assert (first["from_prepaid"], first["from_credit"]) == (PRICE, 0)
    assert (second["from_prepaid"], second["from_credit"]) == (12000, 26000)
    with hub.engine.connect() as conn:
        assert accounts.balances(conn, D) == {
            "prepaid": 0, "credit_limit": 100000, "credit_available": 74000,
            "warn_below": 0, "warned_at": None}
        entry = conn.execute(sa.select(ledger_entries).where(
            ledger_entries.c.key == f"account:order:{hub.orders[1]}")).one()
        legs = {(leg.account, leg.part): leg.amount for leg in legs_of(conn, entry.id)}
        assert legs == {(chart.prepaid(D), "prepaid"): 12000,
                        (chart.credit_line(D), "credit"): 26000,
                        (chart.payable(VENUE), "venue"): -3900,  # 10 % and one yuan a ticket
                        (chart.PLATFORM_REVENUE, "platform"): -1900,  # 5 %
                        (chart.payable(ORGANISER), "organiser"): -32200}
        assert entry.provider == "account" and entry.order_id == hub.orders[1]
        assert trial_balance(conn) == {"CNY": 0}


def test_an_order_not_covered_is_refused_and_posts_nothing(hub):
    with hub.engine.begin() as conn:
        accounts.top_up(conn, D, 20000, "CNY", "BANK-1", "staff:fin", NOW)
        accounts.set_credit_limit(conn, D, 10000, "staff:fin", NOW)
    with pytest.raises(AccountsError) as e, hub.engine.begin() as conn:
        charge(conn, hub.orders[0])
    assert (e.value.code, e.value.status) == ("not_covered", 409)
    assert e.value.params == {"available": 30000, "wanted": PRICE}
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(ledger_entries.c.id).where(
            ledger_entries.c.key.like("account:order:%"))).first() is None
        assert accounts.balances(conn, D)["prepaid"] == 20000


def test_an_order_charged_again_posts_nothing_more(hub):
    with hub.engine.begin() as conn:
        accounts.top_up(conn, D, 100000, "CNY", "BANK-1", "staff:fin", NOW)
        charge(conn, hub.orders[0])
        again = charge(conn, hub.orders[0])
    assert again["replayed"] and again["prepaid"] == 100000 - PRICE


def test_a_refund_goes_back_to_the_credit_first_then_the_prepaid_balance(hub):
    with hub.engine.begin() as conn:
        accounts.top_up(conn, D, 12000, "CNY", "BANK-1", "staff:fin", NOW)
        accounts.set_credit_limit(conn, D, 100000, "staff:fin", NOW)
        charge(conn, hub.orders[0])  # 12,000 prepaid, 26,000 credit
        one = accounts.refund_to_account(conn, partner_id=D, order_id=hub.orders[0],
                                         refund_key="R1", amount=30000, now=NOW, actor="t")
    assert (one["credit_available"], one["prepaid"]) == (100000, 4000)
    with hub.engine.begin() as conn:
        rest = accounts.refund_to_account(conn, partner_id=D, order_id=hub.orders[0],
                                          refund_key="R2", amount=8000, now=NOW, actor="t")
        assert rest["prepaid"] == 12000
        again = accounts.refund_to_account(conn, partner_id=D, order_id=hub.orders[0],
                                           refund_key="R2", amount=8000, now=NOW, actor="t")
        assert again["replayed"] and again["prepaid"] == 12000
        # the split came back exactly: every part of the sale is where it started
        for code in (chart.payable(VENUE), chart.payable(ORGANISER), chart.PLATFORM_REVENUE):
            assert balance(conn, code) == 0, code
        assert trial_balance(conn) == {"CNY": 0}
    with pytest.raises(AccountsError) as e, hub.engine.begin() as conn:
        accounts.refund_to_account(conn, partner_id=D, order_id=hub.orders[0],
                                   refund_key="R3", amount=1, now=NOW, actor="t")
    assert e.value.code == "account_refund_exceeds"
    with pytest.raises(AccountsError) as e, hub.engine.begin() as conn:
        accounts.refund_to_account(conn, partner_id=D, order_id=hub.orders[1],
                                   refund_key="R4", amount=1, now=NOW, actor="t")
    assert e.value.code == "no_account_charge"


def test_a_top_up_posts_once_per_bank_reference(hub):
    with hub.engine.begin() as conn:
        accounts.top_up(conn, D, 50000, "CNY", "BANK-1", "staff:fin", NOW)
        again = accounts.top_up(conn, D, 50000, "CNY", "BANK-1", "staff:fin", NOW)
        assert again["replayed"] and again["prepaid"] == 50000
    for partner, amount in ((D, 40000), (VENUE, 50000)):
        with pytest.raises(AccountsError) as e, hub.engine.begin() as conn:
            accounts.top_up(conn, partner, amount, "CNY", "BANK-1", "staff:fin", NOW)
        assert e.value.code == "topup_reference_used"
    for args, field in (((D, 0, "CNY", "B"), "amount"), ((D, 10, "cny", "B"), "currency"),
                        ((D, 10, "CNY", "no spaces"), "reference"),
                        ((D, "10", "CNY", "B"), "amount")):
        with pytest.raises(AccountsError) as e, hub.engine.begin() as conn:
            accounts.top_up(conn, *args, "staff:fin", NOW)
        assert (e.value.code, e.value.params) == ("bad_account_request", {"field": field})


def test_a_cut_of_the_limit_the_unused_credit_does_not_cover_is_refused(hub):
    with hub.engine.begin() as conn:
        accounts.set_credit_limit(conn, D, 50000, "staff:fin", NOW)
        charge(conn, hub.orders[0])  # all on credit: 12,000 unused
    with pytest.raises(AccountsError) as e, hub.engine.begin() as conn:
        accounts.set_credit_limit(conn, D, 10000, "staff:fin", NOW)
    assert (e.value.code, e.value.params) == ("credit_in_use", {"unused": 12000, "cut": 40000})
    with hub.engine.begin() as conn:
        after = accounts.set_credit_limit(conn, D, 40000, "staff:fin", NOW)
    assert (after["credit_limit"], after["credit_available"]) == (40000, 2000)
    with hub.engine.connect() as conn:
        assert balance(conn, chart.credit_granted(D)) == 40000
        assert trial_balance(conn) == {"CNY": 0}


def test_the_credit_statement_shows_charges_refunds_and_repayments(hub):
    with hub.engine.begin() as conn:
        accounts.set_credit_limit(conn, D, 100000, "staff:fin", NOW)
        charge(conn, hub.orders[0])
        charge(conn, hub.orders[1], minutes=1)
        accounts.refund_to_account(conn, partner_id=D, order_id=hub.orders[1],
                                   refund_key="R1", amount=8000,
                                   now=NOW + timedelta(minutes=2), actor="t")
        accounts.repay_credit(conn, D, 50000, "BANK-9", "staff:fin",
                              NOW + timedelta(minutes=3))
    with pytest.raises(AccountsError) as e, hub.engine.begin() as conn:
        accounts.repay_credit(conn, D, 18001, "BANK-10", "staff:fin", NOW)
    assert (e.value.code, e.value.params) == ("repayment_exceeds_debt",
                                              {"owed": 18000, "amount": 18001})
    with hub.engine.connect() as conn:
        s = accounts.credit_statement(conn, D, "2026-07")
        assert [(x["kind"], x["charged"], x["repaid"]) for x in s["lines"]] == [
            ("charge", PRICE, 0), ("charge", PRICE, 0), ("refund", -8000, 0),
            ("repayment", 0, 50000)]
        assert (s["opening"], s["charged"], s["repaid"], s["closing"]) == (
            0, 2 * PRICE - 8000, 50000, 18000)
        assert accounts.credit_statement(conn, D, "2026-06")["lines"] == []
        with pytest.raises(AccountsError):
            accounts.credit_statement(conn, D, "2026-13")


def test_twenty_orders_racing_on_one_prepaid_balance_never_overdraw_it(hub):
    with hub.engine.begin() as conn:
        accounts.top_up(conn, D, 100000, "CNY", "BANK-1", "staff:fin", NOW)
    outcomes: list[str] = []
    barrier = threading.Barrier(len(hub.orders))

    def one(order_id: int) -> None:
        barrier.wait()
        try:
            with hub.engine.begin() as conn:
                charge(conn, order_id)
            outcomes.append("ok")
        except HubError as e:
            outcomes.append(e.code)
        except Exception as e:  # noqa: BLE001 - an outcome, so the comparison shows it
            outcomes.append(f"unexpected:{type(e).__name__}: {e}")

    threads = [threading.Thread(target=one, args=(o,)) for o in hub.orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(outcomes) == Counter({"ok": 100000 // PRICE,
                                         "not_covered": 20 - 100000 // PRICE})
    with hub.engine.connect() as conn:
        row = conn.execute(sa.select(ledger_accounts.c.balance).where(
            ledger_accounts.c.code == chart.prepaid(D))).one()
        assert row.balance == balance(conn, chart.prepaid(D)) == 100000 % PRICE
        assert trial_balance(conn) == {"CNY": 0}


def warnings(conn) -> list[dict]:
    rows = conn.execute(sa.select(outbox).where(outbox.c.kind == accounts.WARNING_KIND)
                        .order_by(outbox.c.id)).all()
    return [{"channel": r.channel, "to": opened(conn, r)[0], **opened(conn, r)[1]}
            for r in rows]


def test_the_partner_is_warned_once_when_its_balance_falls_to_the_threshold(hub):
    with hub.engine.begin() as conn:
        profile(conn, D, warn_below=20000,
                contact='{"name": "Li Lei", "email": "ops@travel.example"}')
        accounts.top_up(conn, D, 80000, "CNY", "BANK-1", "staff:fin", NOW)
        accounts.set_credit_limit(conn, D, 100000, "staff:fin", NOW)
        charge(conn, hub.orders[0])  # 42,000 left: above
        assert warnings(conn) == []
        charge(conn, hub.orders[1], minutes=1)  # 4,000: at or below
        charge(conn, hub.orders[2], minutes=2)  # still below: not again
        assert warnings(conn) == [{"channel": "email", "to": "ops@travel.example",
                                   "partner": "Partner 3", "balance": "40.00",
                                   "threshold": "200.00"}]
        assert accounts.balances(conn, D)["warned_at"] is not None
        accounts.top_up(conn, D, 50000, "CNY", "BANK-2", "staff:fin", NOW)  # above again
        assert accounts.balances(conn, D)["warned_at"] is None
        charge(conn, hub.orders[3], minutes=3)
        assert [w["balance"] for w in warnings(conn)] == ["40.00", "120.00"]
        paid_online(conn, 30000, minutes=4)  # 420.00, and warned again at the next fall
        charge(conn, hub.orders[4], minutes=5)
        assert [w["balance"] for w in warnings(conn)] == ["40.00", "120.00", "40.00"]


def paid_online(conn, amount: int, minutes: int) -> str:
    """A top-up of the partner's prepaid balance paid online (captured as any order's
    payment is, here by the offline provider, which settles as it is made); its number."""
    now = NOW + timedelta(minutes=minutes)
    order_id, number = open_topup_order(conn, partner_id=D, actor="partner_user:1",
                                        total=amount, currency="CNY", now=now)
    offline = make_providers(payment_settings({"PAYMENT_PROVIDERS": "offline"}, {}))["offline"]
    started = start_payment(conn, offline, order_id, amount, "top-up", now + timedelta(hours=1),
                            now)
    assert place(conn, started.outcome, now).state == "paid"
    # the job the capture wrote, done by the handler the worker registers for it
    payload = conn.execute(sa.select(jobs.c.payload).where(jobs.c.kind == TOPUP_PAID_JOB)
                           .order_by(jobs.c.id.desc())).scalars().first()
    assert payload == {"order_id": order_id}
    tasks = Tasks()
    register_tasks(tasks)
    tasks.handlers[TOPUP_PAID_JOB](conn, payload, now)
    return number


def test_a_top_up_paid_online_is_on_the_prepaid_balance_and_sells_nothing(hub):
    with hub.engine.begin() as conn:
        with pytest.raises(HubError) as refused:
            open_topup_order(conn, partner_id=D, actor="t", total=0, currency="CNY", now=NOW)
        assert refused.value.code == "bad_topup_amount"
        number = paid_online(conn, 123456, minutes=0)
        entry = conn.execute(sa.select(ledger_entries).where(
            ledger_entries.c.order_id == orders_of(conn, number))).one()
        assert (entry.kind, entry.channel) == ("payment", "topup")
        assert sorted((leg.account, leg.amount) for leg in legs_of(conn, entry.id)) == [
            (chart.clearing("offline"), 123456), (chart.prepaid(D), -123456)]
        assert accounts.balances(conn, D)["prepaid"] == 123456
        assert [e["kind"] for e in accounts.recent_entries(conn, D)] == ["payment"]
        day = (NOW - timedelta(days=1), NOW + timedelta(days=1))
        assert library.ticket_library(conn, *day) == library.costs(conn, *day) == []
        assert trial_balance(conn) == {"CNY": 0}


def orders_of(conn, number: str) -> int:
    return conn.execute(sa.select(orders.c.id).where(orders.c.number == number)).scalar_one()
