"""The messaging pages: the outbox (masked, filtered, resend after a confirmation), the
templates with their preview, send tasks with their counts, the public ticket link page, and
the receipt endpoint refusing a forged receipt — each only for ``messages.manage``."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from cloud.app import create_app
from cloud.core.audit import audit_log
from cloud.core.outbox import enqueue, outbox
from cloud.messaging.delivery import deliver_order
from cloud.messaging.sending import Messenger
from cloud.sales.tables import tickets
from cloud.sales.tickets import revoke_ticket
from tests.cloud.messaging.kit import paid_order
from tests.cloud.messaging.test_sending import NOW, Recording
from tests.cloud.orderkit import build
from tests.cloud.pagekit import SECRET, build_hub, csrf, post, text


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    yield h
    h.engine.dispose()


def failed_message(engine, to="13800138000") -> int:
    with engine.begin() as conn:
        i = enqueue(conn, kind="refund_done", channel="sms", to=to,
                    params={"order": "W1", "amount": "1.00 CNY"}, now=NOW)
    Messenger(engine, {"sms": Recording("refused")}).turn(NOW)
    return i


def test_the_outbox_shows_masked_recipients_and_resends_after_a_confirmation(hub):
    i = failed_message(hub.engine)
    assert hub.client("sales").get("/messages/").status_code == 403
    admin = hub.client("admin")
    page = text(admin.get("/messages/?state=failed"))
    assert "138****8000" in page and "13800138000" not in page and "no" in page
    assert "138****8000" not in text(admin.get("/messages/?state=delivered"))
    assert admin.get("/messages/?state=lost").status_code == 400
    confirm = text(admin.get(f"/messages/{i}/resend"))
    assert "confirm-resend" in confirm
    r = post(admin, f"/messages/{i}/resend", page=f"/messages/{i}/resend")
    assert r.status_code == 303
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(outbox.c.state).where(outbox.c.id == i)).scalar() == \
            "waiting"
        assert conn.execute(sa.select(audit_log.c.actor).where(
            audit_log.c.action == "messages.resend")).scalar() == f"staff:{hub.staff['admin']}"
    again = post(admin, f"/messages/{i}/resend", page="/messages/", follow_redirects=True)
    assert "only a failed or dead message is sent again" in text(again)


def test_templates_are_previewed_refused_and_saved(hub):
    admin = hub.client("admin")
    assert "Ticket delivery" in text(admin.get("/messages/templates"))
    path = "/messages/templates/sign_in_code/en"
    shown = post(admin, path, {"subject": "Code", "body": "Your code: {{ code }}",
                               "action": "preview"}, page=path)
    assert shown.status_code == 200 and "Your code: 428913" in text(shown)
    bad = post(admin, path, {"subject": "Code", "body": "{{ password }}", "action": "save"},
               page=path)
    assert bad.status_code == 422 and "password" in text(bad)
    saved = post(admin, path, {"subject": "Code", "body": "Your code: {{ code }}",
                               "action": "save"}, page=path)
    assert saved.status_code == 303
    assert "Your code: {{ code }}" in text(admin.get("/messages/templates"))
    admin.post("/lang", data={"lang": "zh", "next": "/", "csrf_token": csrf(admin, path)})
    assert "消息模板" in text(admin.get("/messages/templates"))


def test_a_send_task_is_written_and_its_progress_shown(hub):
    admin = hub.client("admin")
    new = "/messages/tasks/new?kind=session_changed"
    r = post(admin, new, {"title": "Gate change", "channel": "sms", "language": "en",
                          "param_session": "Final", "param_change": "Gate 3 opens",
                          "recipients": "13800138000\n13900139000\n13800138000"}, page=new)
    assert r.status_code == 303
    page = text(admin.get(r.headers["Location"]))
    assert "0 of 2 finished" in page and "139****9000" in page
    Messenger(hub.engine, {"sms": Recording()}).turn(NOW)
    assert "0 of 2 finished: 2 sent" in text(admin.get(r.headers["Location"]))
    refused = post(admin, new, {"channel": "sms", "param_session": "F", "param_change": "c",
                                "recipients": "hello"}, page=new)
    assert refused.status_code == 422
    assert "&#39;hello&#39; is not a mobile number or e-mail address" in text(refused)


@pytest.fixture
def shop(hub_url):
    h = build(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "SECRET_KEY": SECRET,
                      "SMS_RECEIPT_KEY": "k" * 32})
    yield h, app
    app.extensions["db"].dispose()
    h.engine.dispose()


def _link(h) -> tuple[str, int]:
    order_id = paid_order(h, seats=(("A", "2", 1),))
    with h.engine.begin() as conn:
        deliver_order(conn, order_id, sms_to="13800138000", language="en", now=NOW)
    sms = Recording()
    Messenger(h.engine, {"sms": sms}, public_url="http://hub").turn(NOW)
    return "/t/" + sms.batches[0][0].body.rsplit("/", 1)[1], order_id


def test_the_ticket_link_page_shows_the_code_until_the_ticket_is_refunded(shop):
    h, app = shop
    path, order_id = _link(h)
    buyer = app.test_client()
    page = text(buyer.get(path))
    assert "<svg" in page and "Zone A" in page and "L1-2-1" in page
    assert "张小三" not in page and "张" in page and "Entry rules" in page
    assert buyer.get(path[:-2] + "zz").status_code == 404
    again = buyer.post(path, data={"csrf_token": csrf(buyer, path)})
    assert again.status_code == 200 and "The ticket is sent again." in text(again)
    with h.engine.begin() as conn:
        revoke_ticket(conn, conn.execute(sa.select(tickets.c.id).where(
            tickets.c.order_id == order_id)).scalar_one(), "refunded", NOW)
    refunded = text(buyer.get(path))
    assert "<svg" not in refunded and "not valid for entry" in refunded


def test_a_forged_receipt_is_refused_by_the_endpoint(shop):
    _h, app = shop
    body = json.dumps({"receipts": []}).encode()
    r = app.test_client().post("/api/v1/messaging/receipts", data=body, headers={
        "X-Wicket-Signature": "t=1,v1=00", "Content-Type": "application/json"})
    assert r.status_code == 401 and r.get_json()["error"] == "bad_receipt_signature"
