"""The staff JSON API: role scoping, the box office, refunds, and the OpenAPI file."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloud.app import create_app
from cloud.catalog.events import create_event
from cloud.catalog.tables import sessions
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.db import init_db
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.inventory.tables import session_seats
from cloud.sales.tables import tickets
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from sync.sample import resident_id
from sync.timeutil import utcnow

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
PASSWORD = "correct horse battery"


@pytest.fixture
def api(hub_url):
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True})
    engine = app.extensions["db"]
    tokens = {}
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "North Stand")
        import_seats_csv(conn, venue, "level,zone,row,number,category\nL1,A,1,1,std\n")
        start = utcnow() + timedelta(days=1)
        session = create_session(conn, create_event(conn, "G", "Games"), venue, "Final", start,
                                 start + timedelta(hours=2))
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        for role in ("admin", "sales", "ops"):
            staff_id = create_staff(conn, f"{role}-user", PASSWORD, role, actor="test")
            tokens[role] = {"Authorization": f"Bearer {create_token(conn, staff_id, 't', 'test')[1]}"}
    yield app.test_client(), tokens, session
    engine.dispose()


def test_the_api_refuses_to_sell_a_session_that_is_not_on_sale(api):
    """A sale through the API takes the same rules as the box office page: a session that is
    not on sale sells nothing, whatever else the request gets right."""
    client, tokens, session = api
    with client.application.extensions["db"].begin() as conn:
        start = utcnow() + timedelta(days=2)
        venue = conn.execute(sa.select(sessions.c.venue_id)
                             .where(sessions.c.id == session)).scalar_one()
        closed = create_session(conn, create_event(conn, "H", "Heats"), venue, "Heat 1", start,
                                start + timedelta(hours=2))
    r = client.post(f"/api/v1/sessions/{closed}/tickets", headers=tokens["sales"],
                    json={"seat_id": 1})
    assert r.status_code == 409
    assert r.get_json() == {"error": "not_on_sale", "params": {"session_id": closed},
                            "message": f"session {closed} is not on sale"}
    with client.application.extensions["db"].connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar() == 0
        sold = conn.execute(sa.select(session_seats.c.status).where(
            session_seats.c.session_id == closed)).scalars().all()
    assert sold == ["available"]


def test_roles_decide_who_may_do_what(api):
    client, tokens, session = api
    assert client.get("/api/v1/venues").status_code == 401
    assert client.get("/api/v1/venues", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/venues", headers=tokens["ops"]).status_code == 200
    r = client.post("/api/v1/venues", json={"code": "AQC", "name": "Aquatics"},
                    headers=tokens["ops"])
    assert r.status_code == 403 and r.get_json()["error"] == "forbidden"
    assert client.post("/api/v1/venues", json={"code": "AQC", "name": "Aquatics"},
                       headers=tokens["admin"]).status_code == 201
    assert client.post(f"/api/v1/sessions/{session}/tickets", json={},
                       headers=tokens["ops"]).status_code == 403
    assert client.get("/api/v1/conflicts", headers=tokens["sales"]).status_code == 403
    assert client.get("/api/v1/conflicts", headers=tokens["ops"]).get_json() == {"conflicts": []}


def test_box_office_sale_lookup_and_refund(api):
    client, tokens, session = api
    number = resident_id("11010119900307123")
    r = client.post(f"/api/v1/sessions/{session}/tickets", headers=tokens["sales"],
                    json={"seat_id": 1, "holder": {"name": "张小三", "doc_type": "resident_id",
                                                   "doc_number": number}})
    assert r.status_code == 201
    sold = r.get_json()["tickets"][0]
    again = client.post(f"/api/v1/sessions/{session}/tickets", headers=tokens["sales"],
                        json={"seat_id": 1})
    assert again.status_code == 409 and "not for sale" in again.get_json()["message"]
    t = client.get(f"/api/v1/tickets/{sold['number']}", headers=tokens["ops"]).get_json()
    assert t["holder"] == {"name": "张*三", "doc_type": "resident_id",
                           "doc_number": number[:4] + "*" * 10 + number[-4:]}
    assert number not in json.dumps(t, ensure_ascii=False)
    # paid through an order (the counter's instant sale is one): refunded by a request on it
    alone = client.post(f"/api/v1/tickets/{sold['number']}/refund", headers=tokens["sales"])
    assert alone.status_code == 409 and alone.get_json()["error"] == "refund_by_request"
    assert client.get("/api/v1/tickets/T000000999", headers=tokens["ops"]).status_code == 404
    bad = client.post(f"/api/v1/sessions/{session}/tickets", headers=tokens["sales"],
                      json={"holder": {"name": "x"}})
    assert bad.status_code == 400


def test_an_instant_sale_is_a_payment_posted_to_the_ledger(api):
    from cloud.catalog.events import add_price_tier
    from cloud.ledger.journal import trial_balance
    from cloud.ledger.tables import ledger_entries
    from cloud.payments.tables import payments

    client, tokens, session = api
    engine = client.application.extensions["db"]
    with engine.begin() as conn:
        tier = add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
    r = client.post(f"/api/v1/sessions/{session}/tickets", headers=tokens["sales"],
                    json={"seat_id": 1, "price_tier_id": tier})
    assert r.status_code == 201, r.get_json()
    with engine.connect() as conn:
        paid = conn.execute(sa.select(payments)).one()
        entry = conn.execute(sa.select(ledger_entries.c.kind).where(
            ledger_entries.c.key == f"payment:{paid.id}")).scalar()
        assert trial_balance(conn) == {"CNY": 0}
    assert (paid.provider, paid.state, paid.amount, entry) == (
        "offline", "succeeded", 38000, "payment")


def test_the_openapi_file_matches_the_routes(api):
    client, tokens, session = api
    app = client.application
    spec = json.loads(OPENAPI.read_text())
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/api/v1/", "/api/public/v1/")):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served


def test_a_refund_of_a_ticket_that_admitted_someone_needs_an_admin_and_a_reason(api):
    import uuid

    from cloud.core.audit import audit_log
    from cloud.fleet import appliances
    from cloud.fleet.tables import entries
    from cloud.sales.tables import tickets
    from cloud.sales.tickets import issue_ticket

    client, tokens, session = api
    engine = client.application.extensions["db"]
    with engine.begin() as conn:  # a ticket issued outside any order: refunded by itself
        made = issue_ticket(conn, session_id=session, seat_id=1, actor="test")
        sold = {"id": made.id, "number": made.number}
        venue = conn.execute(sa.select(tickets.c.venues).where(tickets.c.id == sold["id"])
                             ).scalar_one()[0]
        box = appliances.register(conn, venue, "box").id
        now = utcnow()
        conn.execute(sa.insert(entries).values(
            id=str(uuid.uuid4()), appliance_id=box, venue_id=venue, seq=1, at=now, lane="N1",
            direction="in", ticket_id=sold["id"], session_id=session, admitted=True,
            reason="OK", cursor=1, received_at=now))
    url = f"/api/v1/tickets/{sold['number']}/refund"
    r = client.post(url, headers=tokens["sales"], json={"reason": "asked for it"})
    assert r.status_code == 409 and r.get_json()["error"] == "admitted_needs_supervisor"
    r = client.post(url, headers=tokens["admin"])
    assert r.status_code == 409 and r.get_json()["error"] == "reason_required"
    assert client.post(url, headers=tokens["admin"], json={"reason": 7}).status_code == 400
    r = client.post(url, headers=tokens["admin"], json={"reason": "event cancelled at half"})
    assert r.status_code == 200 and r.get_json()["state"] == "refunded"
    r = client.post(url, headers=tokens["admin"], json={"reason": "event cancelled at half"})
    assert r.status_code == 409 and r.get_json()["error"] == "not_live"
    with engine.connect() as conn:
        after = conn.execute(sa.select(audit_log.c.after).where(
            audit_log.c.action == "ticket.refund")).scalar_one()
    assert after == {"state": "refunded", "admissions": 1, "reason": "event cancelled at half"}
