"""The notification rule on SQLite and PostgreSQL, fed notifications signed here as the
providers sign them (with the sandbox's signing code, not the adapters'): refused ones change
nothing, a duplicate or an older state changes nothing, a success is reported exactly once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from cloud.app import create_app
from cloud.payments import sandbox_signing as signer
from cloud.payments.checkout import start_payment
from cloud.payments.errors import PaymentError
from cloud.payments.notifications import handle_notification
from cloud.payments.refunds import request_refund
from cloud.payments.tables import payment_notifications, payment_refunds, payments

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def _payment(engine, provider: str, amount: int = 8_800, state: str = "pending",
             trade: str = "T0001") -> int:
    with engine.begin() as conn:
        return conn.execute(sa.insert(payments).values(
            order_id=41, provider=provider, out_trade_no=trade, amount=amount, state=state,
            created_at=NOW).returning(payments.c.id)).scalar_one()


def _state(engine, payment_id: int):
    with engine.connect() as conn:
        p = conn.execute(sa.select(payments).where(payments.c.id == payment_id)).one()
        n = conn.execute(sa.select(sa.func.count()).select_from(payment_notifications)
                         ).scalar_one()
    return p.state, n


def wechat_notice(side, trade="T0001", state="SUCCESS", total=8_800, nid="N1", when=NOW,
                  mchid=None, event=None, refund=None):
    plain = {"mchid": mchid or side.settings["WECHAT_PAY_MCHID"],
             "appid": side.settings["WECHAT_PAY_APPID"], "out_trade_no": trade,
             "transaction_id": "4200" + trade, "trade_state": state,
             "amount": {"total": total, "currency": "CNY"}}
    if refund is not None:
        plain = {"mchid": plain["mchid"], "out_trade_no": trade, "out_refund_no": refund[0],
                 "refund_id": "5030", "refund_status": refund[1],
                 "amount": {"total": total, "refund": refund[2]}}
    body = json.dumps({"id": nid, "create_time": "2026-12-06T16:00:00+08:00",
                       "event_type": event or ("REFUND." + refund[1] if refund
                                               else "TRANSACTION.SUCCESS"),
                       "resource_type": "encrypt-resource",
                       "resource": signer.wechat_seal(side.apiv3_key, plain, "transaction")
                       }).encode()
    headers = signer.wechat_headers(side.platform, side.platform_key_id, body,
                                    int(when.timestamp()))
    return headers, body


def alipay_notice(side, trade="T0001", status="TRADE_SUCCESS", total="88.00", nid="A1",
                  app_id=None, **extra):
    fields = {"notify_id": nid, "notify_type": "trade_status_sync",
              "app_id": app_id or side.settings["ALIPAY_APP_ID"], "seller_id": "2088000000000001",
              "trade_no": "2026" + trade, "out_trade_no": trade, "trade_status": status,
              "total_amount": total, "subject": "决赛", **extra}
    return {}, urlencode(signer.alipay_notification(side.alipay, fields)).encode()


def _take(engine, provider, headers, body, now=NOW):
    with engine.begin() as conn:
        return handle_notification(conn, provider, headers, body, now)


def test_a_wechat_payment_succeeds_once_and_its_duplicate_changes_nothing(
        engine, providers, provider_side):
    pid = _payment(engine, "wechat")
    first = _take(engine, providers["wechat"], *wechat_notice(provider_side))
    assert (first.newly_succeeded, first.order_id, first.amount, first.payment_id) == (
        True, 41, 8_800, pid)
    assert first.provider_reference == "4200T0001"
    again = _take(engine, providers["wechat"], *wechat_notice(provider_side))
    assert (again.duplicate, again.changed, again.newly_succeeded) == (True, False, False)
    other_id = _take(engine, providers["wechat"], *wechat_notice(provider_side, nid="N2"))
    assert (other_id.duplicate, other_id.changed) == (False, False)
    assert _state(engine, pid) == ("succeeded", 2)


def _tamper(headers, body):
    return headers, body.replace(b'"N1"', b'"N9"')


def _signtest(headers, body):
    return {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" +
            headers["Wechatpay-Signature"]}, body


REFUSED_WECHAT = {
    "stale": (dict(when=NOW - timedelta(minutes=6)), None, "stale_notification"),
    "tampered": ({}, _tamper, "bad_signature"),
    "signtest": ({}, _signtest, "bad_signature"),
    "unsigned": ({}, lambda h, b: ({}, b), "bad_signature"),
    "amount": (dict(total=8_801), None, "amount_mismatch"),
    "unknown_trade": (dict(trade="T9999"), None, "unknown_trade"),
    "foreign": (dict(mchid="1999999999"), None, "foreign_merchant"),
    "unknown_event": (dict(event="TRANSFER.SUCCESS"), None, "bad_notification"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_WECHAT))
def test_a_refused_wechat_notification_changes_nothing(engine, providers, provider_side,
                                                       case):
    kwargs, change, code = REFUSED_WECHAT[case]
    pid = _payment(engine, "wechat")
    headers, body = wechat_notice(provider_side, **kwargs)
    if change:
        headers, body = change(headers, body)
    with pytest.raises(PaymentError) as e:
        _take(engine, providers["wechat"], headers, body)
    assert e.value.code == code
    assert _state(engine, pid) == ("pending", 0)


def test_a_notification_signed_with_another_key_is_refused(engine, providers,
                                                           provider_side):
    from dataclasses import replace

    pid = _payment(engine, "wechat")
    stranger = replace(provider_side, platform=provider_side.alipay)
    with pytest.raises(PaymentError) as e:
        _take(engine, providers["wechat"], *wechat_notice(stranger))
    assert e.value.code == "bad_signature"
    assert _state(engine, pid) == ("pending", 0)


def test_an_older_state_after_success_changes_nothing_and_money_outranks_a_close(
        engine, providers, provider_side):
    wechat = providers["wechat"]
    pid = _payment(engine, "wechat")
    _take(engine, wechat, *wechat_notice(provider_side))
    for n, state in enumerate(("CLOSED", "NOTPAY", "PAYERROR")):
        late = _take(engine, wechat, *wechat_notice(provider_side, state=state,
                                                        nid=f"L{n}"))
        assert (late.changed, late.state) == (False, "succeeded")
    closed = _payment(engine, "wechat", trade="T0002")
    _take(engine, wechat, *wechat_notice(provider_side, trade="T0002", state="CLOSED",
                                             nid="C1"))
    assert _state(engine, closed)[0] == "closed"
    paid = _take(engine, wechat, *wechat_notice(provider_side, trade="T0002", nid="C2"))
    assert paid.newly_succeeded and _state(engine, pid)[0] == "succeeded"


def test_an_alipay_payment_is_verified_without_sign_type_and_taken_once(
        engine, providers, provider_side):
    alipay = providers["alipay"]
    pid = _payment(engine, "alipay")
    assert _take(engine, alipay, *alipay_notice(provider_side)).newly_succeeded
    assert _take(engine, alipay, *alipay_notice(provider_side)).duplicate
    finished = _take(engine, alipay, *alipay_notice(provider_side, status="TRADE_FINISHED",
                                                        nid="A2"))
    waiting = _take(engine, alipay, *alipay_notice(provider_side, status="WAIT_BUYER_PAY",
                                                       nid="A3"))
    assert not finished.changed and not waiting.changed
    assert _state(engine, pid) == ("succeeded", 3)
    assert alipay.reply(True).body == b"success" and alipay.reply(False).body != b"success"


@pytest.mark.parametrize("case,code", [("tampered", "bad_signature"),
                                       ("no_sign_type", "bad_signature"),
                                       ("amount", "amount_mismatch"),
                                       ("foreign_app", "foreign_merchant"),
                                       ("not_fen", "bad_notification")])
def test_a_refused_alipay_notification_changes_nothing(engine, providers, provider_side,
                                                       case, code):
    pid = _payment(engine, "alipay")
    kwargs = {"amount": {"total": "88.01"}, "foreign_app": {"app_id": "2021999"},
              "not_fen": {"total": "88.001"}}.get(case, {})
    headers, body = alipay_notice(provider_side, **kwargs)
    if case == "tampered":
        body = body.replace(b"total_amount=88.00", b"total_amount=0.01")
    elif case == "no_sign_type":
        body = body.replace(b"sign_type=RSA2", b"sign_type=RSA")
    with pytest.raises(PaymentError) as e:
        _take(engine, providers["alipay"], headers, body)
    assert e.value.code == code
    assert _state(engine, pid) == ("pending", 0)


def test_concurrent_deliveries_of_one_notification_are_taken_once(engine, providers,
                                                                  provider_side):
    pid = _payment(engine, "wechat")
    headers, body = wechat_notice(provider_side)
    start, results = threading.Barrier(4), []

    def deliver():
        start.wait()
        try:
            results.append(_take(engine, providers["wechat"], headers, body).newly_succeeded)
        except Exception as e:  # noqa: BLE001 - an outcome, so the comparison shows it
            results.append(f"unexpected:{type(e).__name__}: {e}")

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=repr) == [False, False, False, True]
    assert _state(engine, pid) == ("succeeded", 1)


def test_an_offline_payment_succeeds_at_once_and_refunds_never_exceed_it(engine,
                                                                        providers):
    offline = providers["offline"]
    with engine.begin() as conn:
        checkout = start_payment(conn, offline, 5, 3_000, "Booth sale", NOW, NOW)
    assert checkout.state == "succeeded" and checkout.outcome.newly_succeeded
    assert (checkout.outcome.order_id, checkout.outcome.amount) == (5, 3_000)
    with engine.begin() as conn:
        refund = request_refund(conn, offline, checkout.payment_id, 2_000, "r", "staff:1", NOW)
    assert (refund.state, refund.refund_finished) == ("succeeded", True)
    with engine.begin() as conn, pytest.raises(PaymentError) as e:
        request_refund(conn, offline, checkout.payment_id, 1_001, "r", "staff:1", NOW)
    assert e.value.code == "refund_exceeds_payment"
    # the database itself refuses a total above the amount paid
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.update(payments).where(payments.c.id == checkout.payment_id)
                     .values(refunded=3_001))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(payment_refunds)
                            ).scalar_one() == 1


def test_a_pending_payment_cannot_be_refunded(engine, providers):
    pid = _payment(engine, "offline")
    with engine.begin() as conn, pytest.raises(PaymentError) as e:
        request_refund(conn, providers["offline"], pid, 100, "r", "staff:1", NOW)
    assert e.value.code == "payment_not_refundable"


def test_a_refund_notification_ends_the_refund_and_a_failure_frees_its_amount(
        engine, providers, provider_side):
    wechat = providers["wechat"]
    pid = _payment(engine, "wechat", state="succeeded")
    with engine.begin() as conn:
        refunded = [conn.execute(sa.insert(payment_refunds).values(
            payment_id=pid, out_refund_no=f"R{n}", amount=4_400, state="processing",
            created_at=NOW).returning(payment_refunds.c.id)).scalar_one() for n in (1, 2)]
        conn.execute(sa.update(payments).where(payments.c.id == pid).values(refunded=8_800))
    ok = _take(engine, wechat, *wechat_notice(provider_side, nid="R1",
                                                  refund=("R1", "SUCCESS", 4_400)))
    failed = _take(engine, wechat, *wechat_notice(provider_side, nid="R2",
                                                      refund=("R2", "ABNORMAL", 4_400)))
    late = _take(engine, wechat, *wechat_notice(provider_side, nid="R3",
                                                    refund=("R2", "SUCCESS", 4_400)))
    assert (ok.refund_finished, failed.state, late.changed) == (True, "failed", False)
    assert refunded == [ok.refund_id, failed.refund_id]
    with engine.connect() as conn:
        assert conn.execute(sa.select(payments.c.refunded).where(payments.c.id == pid)
                            ).scalar_one() == 4_400
    with pytest.raises(PaymentError) as e:
        _take(engine, wechat, *wechat_notice(provider_side, nid="R4",
                                                 refund=("R9", "SUCCESS", 1)))
    assert e.value.code == "unknown_refund"


def test_the_notify_endpoints_answer_as_each_provider_expects(hub_url, provider_side):
    from cloud.core.db import init_db

    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "SECRET_KEY": "t",
                      **provider_side.settings})
    client, engine = app.test_client(), app.extensions["db"]
    _payment(engine, "wechat")
    _payment(engine, "alipay", trade="T0002")
    now = datetime.now(UTC)
    headers, body = wechat_notice(provider_side, when=now)
    forged = client.post("/api/v1/payments/notify/wechat", data=body.replace(b"N1", b"N2"),
                         headers=headers, content_type="application/json")
    assert forged.status_code == 400 and forged.get_json()["code"] == "FAIL"
    taken = client.post("/api/v1/payments/notify/wechat", data=body, headers=headers,
                        content_type="application/json")
    assert taken.status_code == 204
    _, form = alipay_notice(provider_side, trade="T0002")
    answer = client.post("/api/v1/payments/notify/alipay", data=form,
                         content_type="application/x-www-form-urlencoded")
    assert (answer.status_code, answer.data) == (200, b"success")
    refused = client.post("/api/v1/payments/notify/alipay", data=form + b"&x=1",
                          content_type="application/x-www-form-urlencoded")
    assert refused.data == b"fail"
    assert client.post("/api/v1/payments/notify/paypal", data=b"{}").status_code == 404
    with engine.connect() as conn:
        states = conn.execute(sa.select(payments.c.state).order_by(payments.c.id)).scalars()
        assert list(states) == ["succeeded", "succeeded"]
    engine.dispose()


def test_follow_ups_go_round_every_open_payment_however_many_stay_open(engine):
    # five payments nobody pays, taken two a round: each round goes on where the last one
    # stopped and wraps round, so every one is asked within three rounds and none twice in one
    from cloud.payments.followups import followups, reached

    opened = [_payment(engine, "wechat", trade=f"T10{n}") for n in range(5)]
    later = NOW + timedelta(minutes=1)
    seen, after = [], (0, 0)
    with engine.connect() as conn:
        for _ in range(3):
            items = followups(conn, later, limit=2, after=after)
            ids = [f.id for f in items]
            assert len(ids) == len(set(ids)) == 2
            seen.append(ids)
            after = reached(items, after)
    assert seen == [opened[0:2], opened[2:4], [opened[4], opened[0]]]
    assert set(opened) <= {i for ids in seen for i in ids}


def test_open_payments_and_unended_refunds_are_listed_for_follow_up(engine):
    from cloud.payments.followups import Followup, followups
    from cloud.sales.tables import orders

    pending = _payment(engine, "wechat")
    _payment(engine, "alipay", state="succeeded", trade="T0002")
    _payment(engine, "offline", state="created", trade="T0003")
    paid = _payment(engine, "alipay", state="succeeded", trade="T0004")
    with engine.begin() as conn:
        ids = [conn.execute(sa.insert(payment_refunds).values(
            payment_id=paid, out_refund_no=f"R{n}", amount=100, state=state, created_at=NOW)
            .returning(payment_refunds.c.id)).scalar_one()
            for n, state in enumerate(("requested", "processing", "succeeded", "failed"))]
        # open payments of orders of every kind: waiting in time, lapsed (not yet tidied),
        # cancelled, and paid by another payment; the last three can take no money any more
        order_ids = [conn.execute(sa.insert(orders).values(
            number=f"W{n}", actor="clerk", state=state, total=8_800, kind=kind,
            expires_at=NOW + timedelta(seconds=30 - 60 * (n == 1)), created_at=NOW)
            .returning(orders.c.id)).scalar_one() for n, (state, kind) in enumerate(
            (("pending_payment", "sale"), ("pending_payment", "presale"),
             ("cancelled", "topup"), ("paid", "sale")))]
        opened = [conn.execute(sa.insert(payments).values(
            order_id=order_id, provider="wechat", out_trade_no=f"T1{n}", amount=8_800,
            state="created" if n == 2 else "pending", created_at=NOW)
            .returning(payments.c.id)).scalar_one() for n, order_id in enumerate(order_ids)]
    with engine.connect() as conn:
        # closed at once, however young: the buyer must not pay them meanwhile
        assert followups(conn, NOW, now=NOW) == [
            Followup("close_payment", p, "wechat") for p in opened[1:]]
        assert followups(conn, NOW + timedelta(minutes=1), now=NOW) == [
            Followup("settle_payment", pending, "wechat"),
            Followup("settle_payment", opened[0], "wechat"),
            *[Followup("close_payment", p, "wechat") for p in opened[1:]],
            Followup("send_refund", ids[0], "alipay"), Followup("settle_refund", ids[1], "alipay")]
