"""The messaging rules: signed receipts (forged and stale ones refused), templates checked,
edited, previewed and audited, send tasks and their counts, resending, ticket links."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.core.audit import audit_log
from cloud.core.errors import HubError
from cloud.core.outbox import Outcome, claim, enqueue, opened, outbox, record
from cloud.messaging import messages, tasks, templates
from cloud.messaging.delivery import deliver_order, redeliver, ticket_by_link
from cloud.messaging.receipts import sign, take_receipts
from cloud.messaging.rendering import render
from cloud.messaging.sending import Messenger
from cloud.sales.tables import tickets
from cloud.sales.tickets import revoke_ticket
from tests.cloud.messaging.kit import paid_order
from tests.cloud.messaging.test_sending import Recording
from tests.cloud.orderkit import NOW, build

KEY = "receipt-key-0123456789abcdef"


@pytest.fixture
def hub(hub_url):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def refused(code, fn, *args, **kw):
    with pytest.raises(HubError) as e:
        fn(*args, **kw)
    assert e.value.code == code, e.value
    return e.value


def sent_messages(engine, n=1, to="13800138000"):
    with engine.begin() as conn:
        ids = [enqueue(conn, kind="refund_done", channel="sms", to=to,
                       params={"order": f"W{i}", "amount": "1.00 CNY"}, now=NOW)
               for i in range(n)]
    Messenger(engine, {"sms": Recording()}).turn(NOW)
    with engine.connect() as conn:
        return [conn.execute(sa.select(outbox).where(outbox.c.id == i)).one() for i in ids]


def receipts(*pairs):
    return json.dumps({"receipts": [{"delivery_id": d, "status": s, "reason": "r"}
                                    for d, s in pairs]}).encode()


def state(engine, message_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox.c.state).where(outbox.c.id == message_id)).scalar()


def test_signed_receipts_move_sent_messages_to_delivered_or_failed(engine):
    a, b = sent_messages(engine, 2)
    body = receipts((a.delivery_id, "delivered"), (b.delivery_id, "failed"), ("nope", "failed"))
    t = int(NOW.timestamp())
    with engine.begin() as conn:
        assert take_receipts(conn, KEY, body, sign(KEY, body, t), NOW) == 2
        assert take_receipts(conn, KEY, body, sign(KEY, body, t), NOW) == 0  # already final
    assert (state(engine, a.id), state(engine, b.id)) == ("delivered", "failed")


def test_forged_stale_and_unsigned_receipts_change_nothing(engine):
    (a,) = sent_messages(engine)
    body = receipts((a.delivery_id, "delivered"))
    t = int(NOW.timestamp())
    forged = [sign("another key", body, t), sign(KEY, body + b" ", t), None, "t=1,v1=00",
              sign(KEY, body, t - 301), "garbage"]
    with engine.begin() as conn:
        for header in forged:
            refused("bad_receipt_signature", take_receipts, conn, KEY, body, header, NOW)
        refused("bad_receipt_signature", take_receipts, conn, "", body, sign("", body, t), NOW)
        bad = b'{"receipts": [{"delivery_id": "x", "status": "read"}]}'
        refused("bad_receipt", take_receipts, conn, KEY, bad, sign(KEY, bad, t), NOW)
    assert state(engine, a.id) == "sent"


def test_a_receipt_that_overtakes_the_workers_record_finishes_the_message(engine):
    with engine.begin() as conn:
        i = enqueue(conn, kind="refund_done", channel="sms", to="13800138000",
                    params={"order": "W1", "amount": "1"}, now=NOW)
        (m,) = claim(conn, "w", now=NOW)
    body = receipts((m.delivery_id, "delivered"))
    with engine.begin() as conn:
        assert take_receipts(conn, KEY, body, sign(KEY, body, int(NOW.timestamp())), NOW) == 1
        assert record(conn, [(m, Outcome("sent", "ref"))], NOW) == {"lost": 1}
    assert state(engine, i) == "delivered"


def test_templates_name_only_their_parameters_and_render_in_a_sandbox(engine):
    assert render("sign_in_code", "s", "{{ code }} {{ minutes }}",
                  {"code": "1", "minutes": 5, "secret": "x"}).body == "1 5"
    with engine.begin() as conn:
        refused("unknown_template_parameter", templates.save_template, conn, "sign_in_code",
                "zh", "s", "{{ secret }}", "staff:1")
        refused("bad_template", templates.save_template, conn, "sign_in_code", "zh", "s",
                "{{ code ", "staff:1")
        refused("bad_template", templates.preview, "sign_in_code", "s",
                "{{ code.__class__.__mro__ }}")
        refused("unknown_message_kind", templates.preview, "fax", "s", "b")
        refused("unknown_language", templates.save_template, conn, "sign_in_code", "fr", "s",
                "b", "staff:1")
        refused("bad_template_length", templates.preview, "sign_in_code", "s", "x" * 2001)


def test_an_edited_template_is_used_audited_and_can_go_back(engine):
    shown = templates.preview("sign_in_code", "Code", "Code {{ code }} ({{ minutes }} min)")
    assert shown.body == "Code 428913 (5 min)"
    with engine.begin() as conn:
        templates.save_template(conn, "sign_in_code", "en", "Code", "Code {{ code }}",
                                "staff:7", NOW)
        i = enqueue(conn, kind="sign_in_code", channel="sms", to="13800138000",
                    language="en", params={"code": "777", "minutes": 5}, now=NOW)
    sms = Recording()
    Messenger(engine, {"sms": sms}).turn(NOW)
    assert [m.body for m in sms.batches[0]] == ["Code 777"] and state(engine, i) == "sent"
    with engine.begin() as conn:
        assert templates.template(conn, "sign_in_code", "en")[2] is True
        assert templates.template(conn, "sign_in_code", "zh")[2] is False
        assert templates.reset_template(conn, "sign_in_code", "en", "staff:7")
        assert templates.template(conn, "sign_in_code", "en")[2] is False
        actions = conn.execute(sa.select(audit_log.c.action, audit_log.c.actor).where(
            audit_log.c.action.like("messages.%")).order_by(audit_log.c.id)).all()
    assert actions == [("messages.template", "staff:7"), ("messages.template_reset", "staff:7")]


def test_a_send_task_writes_one_message_per_recipient_and_counts_them(engine):
    with engine.begin() as conn:
        refused("no_recipients", tasks.create_task, conn, kind="session_changed",
                recipients=[" "], params={"session": "s", "change": "c"})
        refused("bad_recipient", tasks.create_task, conn, kind="session_changed",
                recipients=["13800138000", "call me"], params={"session": "s", "change": "c"})
        missing = refused("missing_message_parameter", tasks.create_task, conn,
                          kind="session_changed", recipients=["13800138000"],
                          params={"session": "s"})
        assert missing.params == {"kind": "session_changed", "name": "change"}
        task_id = tasks.create_task(
            conn, kind="session_changed", params={"session": "Final", "change": "Gate 3"},
            recipients=["13800138000", "138 0013 8000", "13900139000", "13700137000"],
            title="Gate change", actor="staff:3", now=NOW)
        p = tasks.task_progress(conn, task_id)
    assert (p.recipients, p.waiting, p.sent, p.delivered, p.failed) == (3, 3, 0, 0, 0)

    class Answers(Recording):
        def send(self, batch):
            return [Outcome("refused", error="no") if m.to == "13700137000"
                    else Outcome("sent", m.delivery_id) for m in batch]

    Messenger(engine, {"sms": Answers()}).turn(NOW)
    with engine.begin() as conn:
        first = conn.execute(sa.select(outbox.c.delivery_id).where(
            outbox.c.task_id == task_id, outbox.c.state == "sent")
            .order_by(outbox.c.id)).scalars().first()
        body = receipts((first, "delivered"))
        take_receipts(conn, KEY, body, sign(KEY, body, int(NOW.timestamp())), NOW)
        p = tasks.task_progress(conn, task_id)
        assert [t.id for t in tasks.tasks_progress(conn)] == [task_id]
    assert (p.waiting, p.sent, p.delivered, p.failed, p.done) == (0, 1, 1, 1, 2)


def test_a_failed_message_is_sent_again_under_a_new_delivery_id_and_audited(engine):
    with engine.begin() as conn:
        i = enqueue(conn, kind="refund_done", channel="sms", to="13800138000",
                    params={"order": "W1", "amount": "1"}, now=NOW)
    Messenger(engine, {"sms": Recording("refused")}).turn(NOW)
    with engine.begin() as conn:
        old = conn.execute(sa.select(outbox).where(outbox.c.id == i)).one()
        refused("unknown_message", messages.resend, conn, 999, "staff:1")
        messages.resend(conn, i, "staff:1", NOW)
        refused("not_resendable", messages.resend, conn, i, "staff:1")
        new = conn.execute(sa.select(outbox).where(outbox.c.id == i)).one()
        assert (new.state, new.attempts, new.last_error) == ("waiting", 0, None)
        assert new.delivery_id != old.delivery_id
        assert opened(conn, new) == opened(conn, old)
        listed = messages.list_messages(conn, state="waiting")
        assert [(m.id, m.to) for m in listed] == [(i, "138****8000")]
        audit = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "messages.resend")).one()
    assert audit.before["state"] == "failed" and audit.subject == f"message:{i}"
    sms = Recording()
    assert Messenger(engine, {"sms": sms}).turn(NOW) == {"sent": 1}


def test_a_paid_orders_tickets_are_delivered_by_links_that_show_them(hub):
    order_id = paid_order(hub)
    with hub.engine.begin() as conn:
        ids = deliver_order(conn, order_id, sms_to="13800138000", email_to="b@example.com",
                            language="en", now=NOW)
        assert deliver_order(conn, order_id, sms_to="13800138000", language="en",
                             now=NOW) == []   # a replayed capture writes nothing twice
    assert len(ids) == 4
    sms = Recording()
    Messenger(hub.engine, {"sms": sms}, public_url="https://hub.example").turn(NOW)
    links = [m.body.rsplit(" ", 1)[1] for m in sms.batches[0]]
    assert all(link.startswith("https://hub.example/t/") for link in links)
    tokens = [link.rsplit("/", 1)[1] for link in links]
    with hub.engine.connect() as conn:
        views = [ticket_by_link(conn, t) for t in tokens]
        codes = dict(conn.execute(sa.select(tickets.c.number, tickets.c.code).where(
            tickets.c.order_id == order_id)).all())
    assert {v.number for v in views} == set(codes)
    first = views[0]
    assert first.valid and first.code == codes[first.number]
    assert (first.zone, first.seat, first.gates) == ("Zone A", "L1-2-1", [])
    assert first.holder_name != "张小三" and first.holder_name.startswith("张")
    assert "11010119900307123" not in (first.holder_document or "")


def test_a_forged_link_is_refused_and_a_refunded_ticket_shows_no_code(hub):
    order_id = paid_order(hub, seats=(("A", "2", 3),))
    with hub.engine.begin() as conn:
        deliver_order(conn, order_id, sms_to="13800138000", language="zh", now=NOW)
    sms = Recording()
    Messenger(hub.engine, {"sms": sms}, public_url="https://h").turn(NOW)
    token = sms.batches[0][0].body.rsplit("/", 1)[1]
    with hub.engine.begin() as conn:
        for forged in (token[:-1] + ("A" if token[-1] != "A" else "B"), "", "x" * 500):
            refused("unknown_ticket_link", ticket_by_link, conn, forged)
        ticket_id = conn.execute(sa.select(tickets.c.id).where(
            tickets.c.order_id == order_id)).scalar_one()
        revoke_ticket(conn, ticket_id, "refunded", NOW)
        view = ticket_by_link(conn, token)
        refused("unknown_ticket_link", redeliver, conn, token, NOW)
    assert (view.valid, view.code, view.state) == (False, None, "refunded")


def test_a_ticket_is_sent_again_on_request_a_few_times_an_hour(hub):
    order_id = paid_order(hub, seats=(("A", "2", 4),))
    with hub.engine.begin() as conn:
        deliver_order(conn, order_id, sms_to="13800138000", language="zh", now=NOW)
    sms = Recording()
    Messenger(hub.engine, {"sms": sms}, public_url="https://h").turn(NOW)
    token = sms.batches[0][0].body.rsplit("/", 1)[1]
    for n in range(3):
        with hub.engine.begin() as conn:
            redeliver(conn, token, NOW + timedelta(minutes=n))
    with pytest.raises(HubError) as e, hub.engine.begin() as conn:
        redeliver(conn, token, NOW + timedelta(minutes=5))
    assert e.value.code == "too_many_redeliveries"
    with hub.engine.begin() as conn:
        redeliver(conn, token, NOW + timedelta(minutes=61))
    Messenger(hub.engine, {"sms": sms}, public_url="https://h").turn(NOW + timedelta(hours=2))
    again = [m.body for m in sms.batches[1]]
    assert len(again) == 4 and set(again) == {sms.batches[0][0].body}


def test_delivery_needs_a_paid_order_and_an_address(hub):
    order_id = paid_order(hub, seats=(("A", "2", 5),))
    with hub.engine.begin() as conn:
        refused("no_contact", deliver_order, conn, order_id, language="zh", now=NOW)
        refused("order_not_paid", deliver_order, conn, 9999, sms_to="1", language="zh")
