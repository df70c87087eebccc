"""The sandbox as a real process and the hub served beside it: payments paid end to end with
their notifications retried until the hub's endpoint takes them, duplicates and faults
refused or ignored, refunds ending later, statements read. Every wait is for an event the
sandbox reports (its /_sandbox/wait), never a sleep."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.payments.checkout import settle_payment, start_payment
from cloud.payments.refunds import request_refund, send_refund, settle_refund
from cloud.payments.tables import payment_notifications, payment_refunds, payments

PROVIDERS = ["wechat", "alipay"]


def _start(app, name: str, order_id: int = 1, amount: int = 12_345):
    adapter = app.extensions["payment_providers"][name]
    url = app.config["HUB_PUBLIC_URL"] + "/api/v1/payments/notify/" + name
    with app.extensions["db"].begin() as conn:
        return start_payment(conn, adapter, order_id, amount, "Final · 2 tickets",
                             datetime.now(UTC) + timedelta(minutes=15), notify_url=url)


def _payment(app, payment_id: int):
    with app.extensions["db"].connect() as conn:
        return conn.execute(sa.select(payments).where(payments.c.id == payment_id)).one()


def _notifications(app) -> int:
    with app.extensions["db"].connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(payment_notifications)
                            ).scalar_one()


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_buyer_pays_and_the_signed_notification_reaches_the_hub(hub_server, sandbox, name):
    checkout = _start(hub_server, name)
    assert checkout.state == "pending" and checkout.qr_text.endswith(checkout.out_trade_no)
    sandbox.control("POST", f"/_sandbox/pay/{checkout.out_trade_no}", json={"result": "pay"})
    sandbox.wait(checkout.out_trade_no, acked=1, settled=1)
    p = _payment(hub_server, checkout.payment_id)
    assert (p.state, p.amount, p.order_id) == ("succeeded", 12_345, 1)
    assert p.provider_reference and p.succeeded_at is not None
    calls = [r for r in sandbox.control("GET", "/_sandbox/requests")["requests"]
             if r["out_trade_no"] == checkout.out_trade_no]
    assert all(r["signed"] for r in calls)
    # WeChat's amounts are whole fen; Alipay's two-decimal yuan
    assert calls[0]["amount"] == ({"total": 12_345, "currency": "CNY"} if name == "wechat"
                                  else "123.45")


def _count(app, table, **where) -> int:
    with app.extensions["db"].connect() as conn:
        q = sa.select(sa.func.count()).select_from(table)
        for column, value in where.items():
            q = q.where(table.c[column] == value)
        return conn.execute(q).scalar_one()


FIRST_ATTEMPT_FAULTS = [("wechat", "bad_signature"), ("wechat", "stale_timestamp"),
                        ("wechat", "signtest"), ("wechat", "wrong_key"),
                        ("alipay", "bad_signature"), ("alipay", "wrong_key")]


@pytest.mark.parametrize("name,fault", FIRST_ATTEMPT_FAULTS)
def test_a_forged_first_delivery_is_refused_and_the_retry_is_taken(hub_server, sandbox,
                                                                   name, fault):
    sandbox.control("POST", "/_sandbox/faults", json={"faults": [fault]})
    checkout = _start(hub_server, name)
    sandbox.control("POST", f"/_sandbox/pay/{checkout.out_trade_no}", json={"result": "pay"})
    [delivery] = sandbox.wait(checkout.out_trade_no, acked=1, settled=1)
    first, second = delivery["attempts"][:2]
    assert not first["acked"] and second["acked"] and len(delivery["attempts"]) == 2
    assert first["status"] == (400 if name == "wechat" else 200)   # Alipay: the word "fail"
    assert _payment(hub_server, checkout.payment_id).state == "succeeded"
    assert _count(hub_server, payment_notifications, payment_id=checkout.payment_id) == 1


@pytest.mark.parametrize("name", PROVIDERS)
def test_duplicated_and_out_of_order_notifications_change_nothing(hub_server, sandbox, name):
    sandbox.control("POST", "/_sandbox/faults", json={"faults": ["duplicate", "out_of_order"]})
    checkout = _start(hub_server, name)
    sandbox.control("POST", f"/_sandbox/pay/{checkout.out_trade_no}", json={"result": "pay"})
    deliveries = sandbox.wait(checkout.out_trade_no, acked=6, settled=1)
    assert len(deliveries) == 6 and all(d["acked"] for d in deliveries)
    p = _payment(hub_server, checkout.payment_id)
    assert p.state == "succeeded"
    # two notifications (the success and the older state), each recorded once
    assert _count(hub_server, payment_notifications, payment_id=p.id) == 2
    assert _count(hub_server, payment_notifications, payment_id=p.id, outcome="applied") == 1


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("fault", ["amount_mismatch", "foreign_merchant"])
def test_a_notification_for_another_amount_or_merchant_is_refused_every_time(
        hub_server, sandbox, name, fault):
    sandbox.control("POST", "/_sandbox/faults", json={"faults": [fault]})
    checkout = _start(hub_server, name)
    sandbox.control("POST", f"/_sandbox/pay/{checkout.out_trade_no}", json={"result": "pay"})
    [delivery] = sandbox.wait(checkout.out_trade_no, attempts=3)
    assert not any(a["acked"] for a in delivery["attempts"])
    assert _payment(hub_server, checkout.payment_id).state == "pending"
    assert _count(hub_server, payment_notifications, payment_id=checkout.payment_id) == 0


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_payment_whose_notification_never_came_is_settled_by_query(hub_server, sandbox,
                                                                     name):
    adapter = hub_server.extensions["payment_providers"][name]
    with hub_server.extensions["db"].begin() as conn:
        checkout = start_payment(conn, adapter, 7, 500, "Pass", datetime.now(UTC)
                                 + timedelta(minutes=15), notify_url="http://127.0.0.1:9/x")
    sandbox.control("POST", f"/_sandbox/pay/{checkout.out_trade_no}", json={"result": "pay"})
    with hub_server.extensions["db"].begin() as conn:
        outcome = settle_payment(conn, adapter, checkout.payment_id)
        again = settle_payment(conn, adapter, checkout.payment_id)
    assert (outcome.newly_succeeded, outcome.order_id, outcome.amount) == (True, 7, 500)
    assert (again.changed, again.newly_succeeded) == (False, False)


@pytest.mark.parametrize("name,state", [("wechat", "failed"), ("alipay", "closed")])
def test_a_buyer_who_fails_to_pay_leaves_the_payment_failed_or_closed(hub_server, sandbox,
                                                                       name, state):
    checkout = _start(hub_server, name)
    sandbox.control("POST", f"/_sandbox/pay/{checkout.out_trade_no}", json={"result": "fail"})
    if name == "alipay":     # Alipay tells of the close; WeChat only answers a query
        sandbox.wait(checkout.out_trade_no, acked=1, settled=1)
    else:
        with hub_server.extensions["db"].begin() as conn:
            settle_payment(conn, hub_server.extensions["payment_providers"][name],
                           checkout.payment_id)
    assert _payment(hub_server, checkout.payment_id).state == state


def _paid(app, sandbox, name: str, amount: int = 10_000, faults=()):
    if faults:
        sandbox.control("POST", "/_sandbox/faults", json={"faults": list(faults)})
    checkout = _start(app, name, amount=amount)
    sandbox.control("POST", f"/_sandbox/pay/{checkout.out_trade_no}", json={"result": "pay"})
    sandbox.wait(checkout.out_trade_no, acked=1, settled=1)
    return checkout


def _refund(app, name: str, payment_id: int, amount: int):
    url = app.config["HUB_PUBLIC_URL"] + "/api/v1/payments/notify/" + name
    with app.extensions["db"].begin() as conn:
        return request_refund(conn, app.extensions["payment_providers"][name], payment_id,
                              amount, "changed plans", "staff:1", notify_url=url)


def _refund_row(app, refund_id: int):
    with app.extensions["db"].connect() as conn:
        return conn.execute(sa.select(payment_refunds)
                            .where(payment_refunds.c.id == refund_id)).one()


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_refund_is_accepted_and_succeeds_later_by_notification(hub_server, sandbox, name):
    checkout = _paid(hub_server, sandbox, name)
    first = _refund(hub_server, name, checkout.payment_id, 4_000)
    assert first.state == "processing" and not first.refund_finished
    sandbox.wait(checkout.out_trade_no, acked=2, settled=1)
    assert _refund_row(hub_server, first.refund_id).state == "succeeded"
    second = _refund(hub_server, name, checkout.payment_id, 6_000)
    sandbox.wait(checkout.out_trade_no, acked=3, settled=1)
    assert _refund_row(hub_server, second.refund_id).state == "succeeded"
    assert _payment(hub_server, checkout.payment_id).refunded == 10_000
    with hub_server.extensions["db"].begin() as conn:
        settled = settle_refund(conn, hub_server.extensions["payment_providers"][name],
                                second.refund_id)
    assert (settled.state, settled.changed) == ("succeeded", False)


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_refund_the_provider_fails_frees_its_amount(hub_server, sandbox, name):
    checkout = _paid(hub_server, sandbox, name, faults=["refund_fail"])
    outcome = _refund(hub_server, name, checkout.payment_id, 10_000)
    if name == "wechat":     # accepted, then ABNORMAL by notification
        assert outcome.state == "processing"
        sandbox.wait(checkout.out_trade_no, acked=2, settled=1)
    assert _refund_row(hub_server, outcome.refund_id).state == "failed"
    assert _payment(hub_server, checkout.payment_id).refunded == 0


def _arrived(sandbox, field: str, number: str) -> None:
    """Wait until the sandbox has taken a call for ``number`` (its trade or refund number):
    a held call is released only once it is held, and a retry comes only after it."""
    deadline = time.monotonic() + 60
    while not any(r[field] == number
                  for r in sandbox.control("GET", "/_sandbox/requests")["requests"]):
        assert time.monotonic() < deadline, f"no call for {number} reached the sandbox"
        time.sleep(0.05)


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_call_that_times_out_after_the_provider_committed_is_retried_with_the_same_number(
        hub_server, sandbox, name):
    from cloud.payments.settings import make_providers, payment_settings

    # only the calls the sandbox holds are made with a short timeout: every other call, the
    # retries included, has the hub's own, which a busy machine's sandbox always answers within
    impatient = make_providers(payment_settings({**sandbox.settings,
                                                 "PAYMENTS_TIMEOUT": "0.5"}, {}))[name]
    adapter = hub_server.extensions["payment_providers"][name]
    sandbox.control("POST", "/_sandbox/faults", json={"faults": ["timeout_after_commit"]})
    engine = hub_server.extensions["db"]
    expires = datetime.now(UTC) + timedelta(minutes=15)
    with engine.begin() as conn:
        lost = start_payment(conn, impatient, 9, 2_000, "Final", expires)
    _arrived(sandbox, "out_trade_no", lost.out_trade_no)
    sandbox.control("POST", "/_sandbox/release")
    assert lost.unavailable and lost.state == "created" and lost.qr_text is None
    with engine.begin() as conn:
        again = start_payment(conn, adapter, 9, 2_000, "Final", expires)
    assert (again.payment_id, again.out_trade_no, again.state) == (
        lost.payment_id, lost.out_trade_no, "pending")
    calls = [r for r in sandbox.control("GET", "/_sandbox/requests")["requests"]
             if r["out_trade_no"] == lost.out_trade_no]
    assert len(calls) == 2
    # a refund that timed out is asked again with its own number: refunded once
    sandbox.control("POST", f"/_sandbox/pay/{lost.out_trade_no}", json={"result": "pay"})
    with engine.begin() as conn:
        settle_payment(conn, adapter, lost.payment_id)
    sandbox.control("POST", "/_sandbox/faults", json={"faults": ["timeout_after_commit"],
                                                       "out_trade_no": lost.out_trade_no})
    with engine.begin() as conn:
        refund = request_refund(conn, impatient, lost.payment_id, 2_000, "r", "staff:1")
    _arrived(sandbox, "out_refund_no", refund.out_refund_no)
    sandbox.control("POST", "/_sandbox/release")
    assert refund.state == "requested"
    with engine.begin() as conn:
        resent = send_refund(conn, adapter, refund.refund_id)
    assert resent.state in ("processing", "succeeded")
    refunds = [r for r in sandbox.control("GET", "/_sandbox/requests")["requests"]
               if r["out_refund_no"] == refund.out_refund_no]
    assert len(refunds) == 2


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_statement_lists_payments_and_refunds_in_fen(hub_server, sandbox, name):
    checkout = _paid(hub_server, sandbox, name, amount=3_099)
    refund = _refund(hub_server, name, checkout.payment_id, 1_001)
    sandbox.wait(checkout.out_trade_no, acked=2, settled=1)
    rows = hub_server.extensions["payment_providers"][name].bill(date.today())
    mine = {(r.kind, r.amount, r.out_refund_no) for r in rows
            if r.out_trade_no == checkout.out_trade_no}
    assert mine == {("payment", 3_099, None), ("refund", 1_001, refund.out_refund_no)}


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_hub_refuses_an_answer_not_signed_by_the_provider_and_the_provider_a_request_not_signed_by_the_hub(
        hub_server, sandbox, provider_side, name):
    from cloud.payments.errors import PaymentError
    from cloud.payments.settings import make_providers, payment_settings

    expires = datetime.now(UTC) + timedelta(minutes=15)
    # the provider's key swapped for another: every answer looks forged
    stranger = {**sandbox.settings, "WECHAT_PAY_PLATFORM_KEY":
                provider_side.settings["WECHAT_PAY_PLATFORM_KEY"],
                "ALIPAY_PUBLIC_KEY": provider_side.settings["ALIPAY_PUBLIC_KEY"]}
    # the merchant's key swapped for another: the provider refuses every request
    impostor = {**sandbox.settings, "WECHAT_PAY_PRIVATE_KEY":
                provider_side.settings["WECHAT_PAY_PRIVATE_KEY"],
                "ALIPAY_PRIVATE_KEY": provider_side.settings["ALIPAY_PRIVATE_KEY"]}
    for settings, code in ((stranger, "forged_response"), (impostor, "provider_refused")):
        adapter = make_providers(payment_settings(settings, {}))[name]
        with hub_server.extensions["db"].begin() as conn, pytest.raises(PaymentError) as e:
            start_payment(conn, adapter, 3, 100, "x", expires)
        assert e.value.code == code
    refused = sandbox.control("GET", "/_sandbox/requests")["requests"][-1]
    assert refused["signed"] is False


@pytest.mark.parametrize("fault", ["bill_wrong_hash", "bill_truncated"])
def test_a_wechat_statement_that_does_not_match_its_signed_hash_is_refused(hub_server,
                                                                          sandbox, fault):
    from cloud.payments.errors import PaymentError

    sandbox.control("POST", "/_sandbox/faults", json={"faults": [fault]})
    with pytest.raises(PaymentError) as e:
        hub_server.extensions["payment_providers"]["wechat"].bill(date.today())
    assert e.value.code == "forged_response"


def test_the_sandbox_process_ends_cleanly_when_asked(tmp_path):
    """SIGTERM (how the demo and systemd stop a process) ends it with exit status 0."""
    from cloud.payments.keys import make_merchant_keys
    from tests.cloud.payments.conftest import start_sandbox

    make_merchant_keys(tmp_path / "merchant")
    process, _port = start_sandbox(tmp_path)
    try:
        process.terminate()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
