"""The channels against real servers: the sandbox SMS gateway process (sends, refusals,
de-duplication, failures, time-outs, WeChat template messages, signed receipts reaching the
hub) and e-mail over SMTP to a local server."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.outbox import enqueue, outbox
from cloud.messaging.channels import (
    GatewaySms,
    GatewayWeChat,
    Outgoing,
    SmtpMail,
    SmtpSettings,
)
from cloud.messaging.sending import Messenger
from tests.cloud.messaging.conftest import API_KEY, start_gateway, stop
from tests.cloud.messaging.test_sending import NOW


def sms(delivery_id: str, to: str = "13800138000") -> Outgoing:
    return Outgoing(delivery_id, "sms", to, "sign_in_code", "s", f"code for {delivery_id}")


def test_the_gateway_takes_refuses_and_deduplicates_by_delivery_id(gateway):
    provider = GatewaySms(gateway.url, API_KEY, timeout=30)
    first = provider.send([sms("d1"), sms("d2", "13000000000")])
    assert [o.result for o in first] == ["sent", "refused"]
    assert "not in service" in first[1].error
    again = provider.send([sms("d1")])
    assert [o.result for o in again] == ["sent"]
    seen = gateway.control("GET", "/_sandbox/received")
    assert [(r["delivery_id"], r["sends"]) for r in seen["received"]] == [("d1", 2)]
    assert seen["duplicates"] == 1


def test_the_gateway_refuses_a_wrong_key_and_its_failures_are_retried(gateway):
    wrong = GatewaySms(gateway.url, "not the key", timeout=30).send([sms("d1")])
    assert wrong[0].result == "error" and "401" in wrong[0].error
    gateway.control("POST", "/_sandbox/faults", json={"faults": ["fail", "timeout"]})
    provider = GatewaySms(gateway.url, API_KEY, timeout=1)
    failed = provider.send([sms("d2")])
    assert failed[0].result == "error" and "503" in failed[0].error
    timed_out = provider.send([sms("d3")])
    assert timed_out[0].result == "error" and "Timeout" in timed_out[0].error
    gateway.control("POST", "/_sandbox/release")
    assert gateway.control("GET", "/_sandbox/received")["received"] == []
    assert provider.send([sms("d3")])[0].result == "sent"


def test_wechat_template_messages_go_through_the_same_gateway(engine, gateway):
    with engine.begin() as conn:
        enqueue(conn, kind="refund_done", channel="wechat", to="oOPENID0001",
                params={"order": "W1", "amount": "9.00 CNY"}, language="en", now=NOW)
    messenger = Messenger(engine, {"wechat": GatewayWeChat(gateway.url, API_KEY, 30)})
    assert messenger.turn(NOW) == {"sent": 1}
    (got,) = gateway.control("GET", "/_sandbox/received")["received"]
    assert (got["channel"], got["to"], got["kind"]) == ("wechat", "oOPENID0001", "refund_done")
    assert got["data"] == {"order": {"value": "W1"}, "amount": {"value": "9.00 CNY"}}
    assert got["text"] == "[Wicket] Order W1 was refunded: 9.00 CNY."


def test_signed_receipts_from_the_gateway_reach_the_hub(served_hub, tmp_path):
    app, url = served_hub
    engine = app.extensions["db"]
    gw = start_gateway(tmp_path, receipts_url=url + "/api/v1/messaging/receipts",
                       undeliverable="13900139000")
    try:
        with engine.begin() as conn:
            ids = [enqueue(conn, kind="sign_in_code", channel="sms", to=to,
                           params={"code": "1", "minutes": 5}, now=NOW)
                   for to in ("13800138000", "13900139000")]
        assert Messenger(engine, {"sms": GatewaySms(gw.url, API_KEY, 30)}).turn(NOW) == {
            "sent": 2}
        gw.wait(count=2, receipts=2)
    finally:
        stop(gw.process)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(outbox))}
    assert rows[ids[0]].state == "delivered"
    assert (rows[ids[1]].state, rows[ids[1]].last_error) == ("failed", "the phone is unreachable")


def test_email_goes_over_smtp_and_arrives(engine, smtp_server):
    with engine.begin() as conn:
        ok = enqueue(conn, kind="order_paid", channel="email", to="Buyer@Example.com",
                     params={"order": "W7", "amount": "380.00 CNY", "session": "Final"},
                     language="en", now=NOW)
        nobody = enqueue(conn, kind="order_paid", channel="email", to="nobody@example.com",
                         params={"order": "W8", "amount": "1", "session": "Final"}, now=NOW)
    mail = SmtpMail(SmtpSettings(smtp_server.host, smtp_server.port, sender="tickets@hub.test",
                                 timeout=30))
    assert Messenger(engine, {"email": mail}).turn(NOW) == {"sent": 1, "failed": 1}
    (got,) = smtp_server.messages
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(outbox))}
    assert (got["To"], got["From"], got["Subject"]) == ("buyer@example.com", "tickets@hub.test",
                                                        "Order paid")
    assert got["Message-ID"] == f"<{rows[ok].delivery_id}@wicket>"
    assert got.get_payload(decode=True).decode().strip() == \
        "[Wicket] Order W7 is paid: 380.00 CNY, Final."
    assert "550" in rows[nobody].last_error and rows[nobody].state == "failed"


def test_an_unreachable_smtp_server_is_retried(engine):
    with engine.begin() as conn:
        i = enqueue(conn, kind="refund_done", channel="email", to="a@example.com",
                    params={"order": "W1", "amount": "1"}, now=NOW)
    mail = SmtpMail(SmtpSettings("127.0.0.1", 9, timeout=5))
    assert Messenger(engine, {"email": mail}).turn(NOW) == {"waiting": 1}
    with engine.connect() as conn:
        assert "SMTP" in conn.execute(sa.select(outbox.c.last_error)
                                      .where(outbox.c.id == i)).scalar()


def test_the_settings_choose_the_channels():
    from cloud.messaging.channels import make_providers
    from cloud.messaging.settings import messaging_settings

    none = make_providers(messaging_settings({}, {}))
    assert none == {}
    s = messaging_settings({"SMTP_HOST": "mail.example"}, {
        "WICKET_HUB_SMS_GATEWAY_URL": "http://gw", "WICKET_HUB_SMS_API_KEY": "k",
        "WICKET_HUB_SMTP_PORT": "2525"})
    providers = make_providers(s)
    assert sorted(providers) == ["email", "sms", "wechat"]
    assert providers["wechat"].url == "http://gw/wechat/template/send"
    assert (providers["email"].s.host, providers["email"].s.port) == ("mail.example", 2525)


def test_the_messenger_command_refuses_to_start_without_a_channel(tmp_path, monkeypatch):
    from cloud.cli import main
    from cloud.core.db import init_db

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    init_db(url)
    for name in ("SMS_GATEWAY_URL", "WECHAT_GATEWAY_URL", "SMTP_HOST"):
        monkeypatch.delenv(f"WICKET_HUB_{name}", raising=False)
    assert main(["--db", url, "messenger"]) == 2
    assert main(["--db", url, "messenger", "--batch", "0"]) == 2
