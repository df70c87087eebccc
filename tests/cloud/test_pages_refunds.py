"""The refund pages and JSON API, on both databases: a session's policy set by staff who manage
sessions, a refund asked for by customer service (amount shown, then confirmed) and decided by
ticketing operations after a confirmation, never by the person who asked; the API does the same
with Idempotency-Key; the pages speak Chinese too."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier
from cloud.core.audit import audit_log
from cloud.inventory import seats as inventory
from cloud.inventory.tables import session_seats
from cloud.payments.capturing import place
from cloud.payments.checkout import start_payment
from cloud.payments.offline import OfflineProvider
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order
from cloud.sales.tables import refund_policies, refund_requests, tickets
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from tests.cloud.pagekit import PASSWORD, build_hub, csrf, post, text


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    with h.engine.begin() as conn:
        add_price_tier(conn, h.session, "STD", "Standard", 38000, seat_category="std")
        inventory.confirm_configuration(conn, h.session)
        inventory.put_on_sale(conn, h.session)
        for role in ("service", "ticketing"):
            h.staff[role] = create_staff(conn, f"{role}-user", PASSWORD, role, actor="test")
            h.staff[f"{role}-2"] = create_staff(conn, f"{role}-2-user", PASSWORD, role,
                                                actor="test")
    yield h
    h.engine.dispose()


def paid(h, seats=(1, 2)):
    with h.engine.begin() as conn:
        made = create_order(conn, OrderRequest(h.session, tuple(
            LineRequest(seat_id=s) for s in seats), actor="clerk"))
        started = start_payment(conn, OfflineProvider(), made.order_id, made.total, "t",
                                made.expires_at)
        captured = place(conn, started.outcome)
    return made.number, [t.number for t in captured.tickets]


def test_a_refund_is_asked_for_confirmed_and_approved_by_another_person(hub):
    number, (first, second) = paid(hub)
    service, ticketing = hub.client("service"), hub.client("ticketing")
    assert hub.client("ops").get(f"/orders/{number}/refund").status_code == 403
    page = text(service.get(f"/orders/{number}/refund"))
    assert first in page and second in page
    shown = post(service, f"/orders/{number}/refund", {"ticket": [second]},
                 page=f"/orders/{number}/refund")
    assert shown.status_code == 200 and "380.00 CNY" in text(shown)
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(refund_requests)).first() is None  # not before confirming
    made = post(service, f"/orders/{number}/refund", {"ticket": [second], "confirm": "1"},
                page=f"/orders/{number}/refund")
    assert made.status_code == 303
    rid = int(made.headers["Location"].rsplit("/", 1)[1])
    assert service.get("/refunds").status_code == 403  # customer service does not decide
    listed = text(ticketing.get("/refunds"))
    assert f"/refunds/{rid}/approve" in listed
    confirm = text(ticketing.get(f"/refunds/{rid}/approve"))
    assert 'id="confirm-approve"' in confirm
    done = post(ticketing, f"/refunds/{rid}/approve", {}, page=f"/refunds/{rid}/approve")
    assert done.status_code == 303
    with hub.engine.connect() as conn:
        r = conn.execute(sa.select(refund_requests)).one()
        state = conn.execute(sa.select(tickets.c.state).where(tickets.c.number == second))
        seat = conn.execute(sa.select(session_seats.c.status).where(
            session_seats.c.session_id == hub.session, session_seats.c.seat_id == 2))
        assert (r.state, r.maker, r.checker) == ("succeeded", f"staff:{hub.staff['service']}",
                                                 f"staff:{hub.staff['ticketing']}")
        assert state.scalar() == "refunded" and seat.scalar() == "available"
    assert "refunded" in text(ticketing.get(f"/refunds/{rid}"))


def test_the_person_who_asked_cannot_approve_on_the_page(hub):
    number, (first, _second) = paid(hub)
    admin_id, admin = hub.staff["admin"], hub.client("admin")  # may both ask and approve
    # a ticket paid through an order is not marked refunded by itself: no money would move
    assert f'href="/orders/{number}/refund"' in text(admin.get(f"/tickets/{first}"))
    alone = post(admin, f"/tickets/{first}/refund", {"reason": "asked"}, page="/tickets",
                 follow_redirects=True)
    assert f"was paid with order {number}" in text(alone)
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(tickets.c.state)
                            .where(tickets.c.number == first)).scalar() == "issued"
    made = post(admin, f"/orders/{number}/refund", {"ticket": [first], "confirm": "1"},
                page=f"/orders/{number}/refund")
    rid = int(made.headers["Location"].rsplit("/", 1)[1])
    assert "/approve" not in text(admin.get(f"/refunds/{rid}"))
    refused = post(admin, f"/refunds/{rid}/approve", {}, page=f"/refunds/{rid}")
    assert refused.status_code == 303
    with hub.engine.connect() as conn:
        r = conn.execute(sa.select(refund_requests)).one()
    assert (r.state, r.maker) == ("pending", f"staff:{admin_id}")
    assert "another person decides it" in text(admin.get(f"/refunds/{rid}/approve",
                                                          follow_redirects=True))


def test_the_policy_page_saves_and_audits_and_speaks_chinese(hub):
    sales = hub.client("sales")  # box-office staff manage sessions
    path = f"/sessions/{hub.session}/refund-policy"
    assert hub.client("service").get(path).status_code == 403
    assert path in text(sales.get(f"/sessions/{hub.session}"))  # the session's page links it
    saved = post(sales, path, {"until": "", "fee_kind": "percent", "fee_value": "10"}, page=path)
    assert saved.status_code == 303
    assert "10%" in text(sales.get(path))
    bad = post(sales, path, {"until": "", "fee_kind": "percent", "fee_value": "150"}, page=path)
    assert "whole percent" in text(sales.get(bad.headers["Location"]))
    sales.post("/lang", data={"lang": "zh", "next": "/", "csrf_token": csrf(sales, path)})
    assert "退款规则" in text(sales.get(path))
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(refund_policies.c.fee_value)).scalar() == 10
        assert conn.execute(sa.select(audit_log.c.actor).where(
            audit_log.c.action == "refund_policy.set")).scalar() == f"staff:{hub.staff['sales']}"


def _token(hub, role):
    with hub.engine.begin() as conn:
        return {"Authorization": f"Bearer {create_token(conn, hub.staff[role], 't', 'test')[1]}"}


def test_the_api_asks_approves_and_replays_with_an_idempotency_key(hub):
    number, (first, second) = paid(hub)
    client = hub.app.test_client()
    service, ticketing, ticketing2 = (_token(hub, r) for r in
                                      ("service", "ticketing", "ticketing-2"))
    alone = client.post(f"/api/v1/tickets/{first}/refund",
                        headers={**ticketing, "Idempotency-Key": "t-1"}, json={})
    assert alone.status_code == 409 and alone.get_json()["error"] == "refund_by_request"
    put = client.put(f"/api/v1/sessions/{hub.session}/refund-policy",
                     headers={**ticketing, "Idempotency-Key": "p-1"},
                     json={"fee_kind": "fixed", "fee_value": 1000, "refundable_until": None})
    assert put.status_code == 200 and put.get_json()["fee_value"] == 1000
    asked = client.post(f"/api/v1/orders/{number}/refunds",
                        headers={**service, "Idempotency-Key": "r-1"},
                        json={"tickets": [first], "reason": "cannot come"})
    assert asked.status_code == 201, asked.get_json()
    body = asked.get_json()
    assert (body["state"], body["gross"], body["fee"], body["amount"]) == (
        "pending", 38000, 1000, 37000)
    again = client.post(f"/api/v1/orders/{number}/refunds",
                        headers={**service, "Idempotency-Key": "r-1"},
                        json={"tickets": [first], "reason": "cannot come"})
    assert again.get_json() == body and again.headers["Idempotent-Replayed"] == "true"
    twice = client.post(f"/api/v1/orders/{number}/refunds", headers=service,
                        json={"tickets": [first]})
    assert (twice.status_code, twice.get_json()["error"]) == (409, "refund_already_requested")
    assert client.post(f"/api/v1/refunds/{body['id']}/approve", headers=service,
                       json={}).status_code == 403
    pending = client.get("/api/v1/refunds", headers=ticketing).get_json()["refunds"]
    assert [r["id"] for r in pending] == [body["id"]]
    ok = client.post(f"/api/v1/refunds/{body['id']}/approve",
                     headers={**ticketing, "Idempotency-Key": "a-1"}, json={})
    assert ok.status_code == 200 and ok.get_json()["state"] == "succeeded"
    assert ok.get_json()["provider_refund"]["amount"] == 37000
    late = client.post(f"/api/v1/refunds/{body['id']}/approve", headers=ticketing2, json={})
    assert (late.status_code, late.get_json()["error"]) == (409, "refund_not_pending")
    other = client.post(f"/api/v1/orders/{number}/refunds", headers=service, json={})
    rid = other.get_json()["id"]
    short = client.post(f"/api/v1/refunds/{rid}/reject", headers=ticketing, json={"note": "x"})
    assert short.get_json()["error"] == "decision_note_required"
    no = client.post(f"/api/v1/refunds/{rid}/reject", headers=ticketing,
                     json={"note": "after the deadline"})
    assert no.get_json()["state"] == "rejected"
    assert re.fullmatch(r"\d+", str(client.get(f"/api/v1/refunds/{rid}",
                                               headers=service).get_json()["id"]))
