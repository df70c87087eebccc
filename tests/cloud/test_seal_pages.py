"""Personal data masked everywhere on the hub, and a ticket's code shown only to the clerk who
has just sold it: pages, API answers, logs and the database itself never carry a holder's
name or document number in clear."""

# ruff: noqa: F811 (the fixtures hub and api are imported from their test modules)
from __future__ import annotations

import json
import logging

import sqlalchemy as sa

from cloud.sales.tables import tickets
from tests.cloud.pagekit import post, text
from tests.cloud.test_api import api  # noqa: F401
from tests.cloud.test_pages_tickets import NAME, NUMBER, hub, sell, sold  # noqa: F401
from tests.cloud.test_seal_migration import _database_bytes


def _needles(*values: str) -> list[bytes]:
    return [n for v in values for n in (v.encode(), json.dumps(v)[1:-1].encode())]


def test_the_qr_code_is_shown_once_to_the_clerk_who_sold_the_ticket(hub):
    sales = hub.client("sales")
    r = sell(sales, hub, holder_name=NAME, doc_number=NUMBER)
    number = sold(hub, r)
    with hub.engine.connect() as conn:
        code = conn.execute(sa.select(tickets.c.code).where(tickets.c.number == number)
                            ).scalar_one()
    first = text(sales.get(r.headers["Location"]))  # the sale's receipt
    assert 'class="qr ticket-code"' in first and "<svg" in first
    again = text(sales.get(r.headers["Location"]))  # a later visit: no code
    assert 'class="qr ticket-code"' not in again and "<svg" not in again
    assert 'id="no-codes"' in again
    later = text(sales.get(f"/tickets/{number}"))
    assert "<svg" not in later and 'id="no-qr"' in later
    ops = hub.client("ops")
    for page in (text(ops.get(f"/tickets/{number}")), text(ops.get(r.headers["Location"])),
                 text(ops.get(r.headers["Location"].rsplit("/", 1)[0])),
                 text(post(ops, "/tickets/holder", {"doc_number": NUMBER}, page="/tickets")),
                 text(post(sales, "/tickets/holder", {"doc_number": NUMBER}, page="/tickets"))):
        assert "<svg" not in page and code not in page
        assert NAME not in page and NUMBER not in page


def test_an_ops_clerk_never_sees_the_code_even_right_after_a_sale_in_the_same_session(hub):
    """The one-time mark belongs to the sale's own page view: another role's page shows no
    code even for the ticket just sold (an admin selling is a clerk of the box office)."""
    admin = hub.client("admin")
    r = sell(admin, hub, holder_name=NAME, doc_number=NUMBER)
    assert 'class="qr ticket-code"' not in text(hub.client("ops").get(r.headers["Location"]))
    assert 'class="qr ticket-code"' in text(admin.get(r.headers["Location"]))


def test_api_lookups_mask_the_holder_and_leave_out_the_code(api):
    client, tokens, session = api
    r = client.post(f"/api/v1/sessions/{session}/tickets", headers=tokens["sales"],
                    json={"seat_id": 1, "holder": {"name": NAME, "doc_type": "resident_id",
                                                   "doc_number": NUMBER}})
    sold = r.get_json()["tickets"][0]
    assert sold["code"]  # the sale's answer: the box office prints or shows it now
    for role in ("sales", "ops", "admin"):
        t = client.get(f"/api/v1/tickets/{sold['number']}", headers=tokens[role]).get_json()
        assert "code" not in t and sold["code"] not in json.dumps(t)
        assert t["holder"]["name"] == "张*三"
        assert NAME not in json.dumps(t, ensure_ascii=False) and NUMBER not in json.dumps(t)


def test_no_log_and_no_byte_of_the_database_holds_a_clear_name_or_number(hub, hub_url,
                                                                         caplog):
    caplog.set_level(logging.DEBUG)
    sales, ops = hub.client("sales"), hub.client("ops")
    r = sell(sales, hub, holder_name=NAME, doc_number=NUMBER)
    number = sold(hub, r)
    sales.get(r.headers["Location"])
    ops.get(f"/tickets/{number}")
    post(ops, "/tickets/holder", {"doc_number": NUMBER}, page="/tickets")
    post(sales, f"/tickets/{number}/refund", {}, page=f"/tickets/{number}/refund")
    assert NAME not in caplog.text and NUMBER not in caplog.text
    hub.engine.dispose()
    dump = _database_bytes(hub_url)
    assert [n for n in _needles(NAME, NUMBER) if n in dump] == []


def test_customer_service_reveals_holder_and_code_only_with_a_reason_and_it_is_audited(hub):
    from cloud.core.audit import audit_log
    from cloud.staff.staff import create_staff
    from tests.cloud.pagekit import PASSWORD, sign_in

    number = sold(hub, sell(hub.client("sales"), hub, holder_name=NAME, doc_number=NUMBER))
    with hub.engine.begin() as conn:  # customer service, a role of its own
        create_staff(conn, "service-user", PASSWORD, "service", actor="test")
    service = hub.app.test_client()
    sign_in(service, "service-user")
    assert 'id="reveal-form"' in text(service.get(f"/tickets/{number}"))
    assert 'id="reveal-form"' in text(hub.client("admin").get(f"/tickets/{number}"))
    for role in ("sales", "ops"):  # box-office staff and ops may not
        other = hub.client(role)
        assert 'id="reveal-form"' not in text(other.get(f"/tickets/{number}"))
        r = post(other, f"/tickets/{number}/reveal", {"reason": "customer lost the ticket"},
                 page=f"/tickets/{number}")
        assert r.status_code == 403 and NAME not in text(r)
    short = post(service, f"/tickets/{number}/reveal", {"reason": "x"}, page=f"/tickets/{number}")
    assert short.status_code == 303 and NAME not in text(short)
    shown = post(service, f"/tickets/{number}/reveal", {"reason": "customer lost the ticket"},
                 page=f"/tickets/{number}")
    page = text(shown)
    assert shown.status_code == 200 and 'id="revealed"' in page
    assert NAME in page and NUMBER in page and "<svg" in page
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.action == "ticket.reveal")
                            ).all()
    assert len(rows) == 1 and rows[0].after["reason"] == "customer lost the ticket"
    assert rows[0].actor.startswith("staff:")
    assert NAME not in json.dumps(rows[0].after, ensure_ascii=False)
    assert NUMBER not in json.dumps(rows[0].after)
    assert 'id="revealed"' not in text(service.get(f"/tickets/{number}"))  # once
