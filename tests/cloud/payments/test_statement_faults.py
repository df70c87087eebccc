"""The sandbox's planted statement discrepancies, end to end: the sandbox as a real process,
the hub served beside it, payments and refunds posted to the ledger by the hub's own
notification endpoint, the statement fetched by the adapter and reconciled
(cloud/payments/statement_import.py). Each planted fault is exactly one exception of its kind
and nothing else; a clean statement is none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.core.jobs import Tasks, run_periodic
from cloud.ledger.reconciliation import CHINA, exceptions, imports
from cloud.ledger.tables import ledger_entries
from cloud.payments.statement_import import import_statement, register_tasks
from tests.cloud.payments.test_sandbox import _paid, _refund, _start

PROVIDERS = ["wechat", "alipay"]


@pytest.fixture
def fresh(sandbox):
    """The sandbox with no trade of the tests before: its statement lists only this test's."""
    sandbox.control("POST", "/_sandbox/forget")
    return sandbox


def _import(app, name: str):
    now = datetime.now(UTC)
    return import_statement(app.extensions["db"], app.extensions["payment_providers"][name],
                            now.astimezone(CHINA).date(), "staff:1", now)


def _entries(app) -> list[tuple]:
    with app.extensions["db"].connect() as conn:
        return conn.execute(sa.select(ledger_entries.c.kind, ledger_entries.c.reference)
                            .order_by(ledger_entries.c.id)).all()


def _day(app, sandbox, name: str):
    """A payment of 88.00 refunded 10.00 and a payment of 7.77, both in the ledger."""
    first = _paid(app, sandbox, name, amount=8_800)
    refund = _refund(app, name, first.payment_id, 1_000)
    sandbox.wait(first.out_trade_no, acked=2, settled=1)
    second = _paid(app, sandbox, name, amount=777)
    assert [kind for kind, _ in _entries(app)] == ["unplaced", "refund", "unplaced"]
    return first, refund, second


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_clean_statement_is_no_exception(hub_server, fresh, name):
    _day(hub_server, fresh, name)
    imported = _import(hub_server, name)
    assert (imported.rows, imported.exceptions) == (3, [])


def _seen(imported) -> list[tuple]:
    return [(x.kind, x.entry, x.hub_amount, x.statement_amount) for x in imported.exceptions]


BILL_FAULTS = [("bill_duplicate", ("duplicate", "payment", 777, 1_554)),
               ("bill_wrong_amount", ("amount_differs", "payment", 777, 778)),
               ("bill_missing", ("missing_from_statement", "payment", 777, None)),
               ("bill_extra", ("missing_in_ledger", "payment", None, 777)),
               ("bill_unknown_refund", ("unknown_refund", "refund", None, 100))]


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("fault,expected", BILL_FAULTS)
def test_each_planted_statement_fault_is_exactly_one_exception(hub_server, fresh, name,
                                                               fault, expected):
    _first, _refund_made, second = _day(hub_server, fresh, name)
    fresh.control("POST", "/_sandbox/faults", json={"faults": [fault]})
    imported = _import(hub_server, name)
    assert _seen(imported) == [expected]
    [x] = imported.exceptions
    if fault != "bill_extra":    # every other fault is about the latest payment
        assert x.out_trade_no == second.out_trade_no
    if fault == "bill_unknown_refund":
        assert x.out_refund_no.startswith("unasked")
    with hub_server.extensions["db"].connect() as conn:
        assert [r.id for r in exceptions(conn, provider=name)] == [x.id]


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_listed_twice_payment_survives_the_adapter_as_two_rows(hub_server, fresh, name):
    paid = _paid(hub_server, fresh, name, amount=4_321)
    fresh.control("POST", "/_sandbox/faults", json={"faults": ["bill_duplicate"]})
    now = datetime.now(UTC)
    rows = hub_server.extensions["payment_providers"][name].bill(now.astimezone(CHINA).date())
    assert [(r.kind, r.out_trade_no, r.amount) for r in rows] == [
        ("payment", paid.out_trade_no, 4_321)] * 2


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_trade_whose_notification_never_came_is_missing_in_the_ledger(hub_server, fresh,
                                                                        name):
    _day(hub_server, fresh, name)
    fresh.control("POST", "/_sandbox/faults", json={"faults": ["no_callback"]})
    lost = _start(hub_server, name, amount=5_000)
    fresh.control("POST", f"/_sandbox/pay/{lost.out_trade_no}", json={"result": "pay"})
    assert fresh.control("GET", "/_sandbox/deliveries",
                         params={"out_trade_no": lost.out_trade_no})["deliveries"] == []
    imported = _import(hub_server, name)
    assert [(x.kind, x.out_trade_no, x.hub_amount, x.statement_amount)
            for x in imported.exceptions] == [("missing_in_ledger", lost.out_trade_no, None,
                                               5_000)]
    assert lost.out_trade_no not in {ref for _, ref in _entries(hub_server)}


def test_the_worker_imports_yesterdays_statements_once_when_they_are_ready(hub_server,
                                                                           fresh):
    _paid(hub_server, fresh, "wechat", amount=600)
    tasks = Tasks()
    register_tasks(tasks, hub_server.extensions["payment_providers"])
    [task] = tasks.periodic
    engine = hub_server.extensions["db"]
    early = datetime.now(CHINA).replace(hour=9, minute=0) + timedelta(days=1)
    assert task.task(engine, early.astimezone(UTC)) == 0     # not ready before 10:30
    ready = early.replace(hour=11)
    assert run_periodic(engine, task, ready.astimezone(UTC))
    with engine.connect() as conn:
        done = imports(conn)
    assert sorted((r.provider, r.day) for r in done) == [
        ("alipay", (ready.date() - timedelta(days=1)).isoformat()),
        ("wechat", (ready.date() - timedelta(days=1)).isoformat())]
    assert task.task(engine, (ready + timedelta(hours=1)).astimezone(UTC)) == 0  # once a day


@pytest.mark.parametrize("fault", ["bill_wrong_hash", "bill_truncated"])
def test_a_statement_that_does_not_hold_together_imports_nothing(hub_server, fresh, fault):
    from cloud.payments.errors import PaymentError

    _paid(hub_server, fresh, "wechat", amount=900)
    fresh.control("POST", "/_sandbox/faults", json={"faults": [fault]})
    with pytest.raises(PaymentError) as e:
        _import(hub_server, "wechat")
    assert e.value.code == "forged_response"
    with hub_server.extensions["db"].connect() as conn:
        assert (imports(conn), exceptions(conn)) == ([], [])


class Refusing:
    """WeChat's adapter while WeChat refuses to give its statement."""

    name = "wechat"

    def bill(self, day):
        from cloud.payments.errors import PaymentError

        raise PaymentError("provider_refused", provider="wechat", detail="500")


def test_one_providers_refused_statement_stops_no_other_and_is_raised(hub_server, fresh):
    from cloud.payments.errors import PaymentError

    providers = hub_server.extensions["payment_providers"]
    engine = hub_server.extensions["db"]
    ready = (datetime.now(CHINA).replace(hour=11) + timedelta(days=1)).astimezone(UTC)
    tasks = Tasks()
    register_tasks(tasks, {**providers, "wechat": Refusing()})
    with pytest.raises(PaymentError) as e:
        tasks.periodic[0].task(engine, ready)
    assert e.value.code == "provider_refused"
    with engine.connect() as conn:
        assert [r.provider for r in imports(conn)] == ["alipay"]
    again = Tasks()   # the next turn asks WeChat again, and only WeChat
    register_tasks(again, providers)
    assert again.periodic[0].task(engine, ready) == 1
    with engine.connect() as conn:
        assert sorted(r.provider for r in imports(conn)) == ["alipay", "wechat"]
