"""The hub's JSON API for staff tools, under ``/api/v1/`` (described in docs/openapi.json): its
tickets. (Venues: ``cloud/catalog/api.py``; conflicts: ``cloud/ops/api.py``.)

Every call carries ``Authorization: Bearer <API token>``; the token acts with its staff
member's role (or the roles it is scoped to), and each route names the permission it needs
(cloud/staff/permissions.py). Errors are
``{"error": code, "message": words, "params": {...}}`` with a 4xx status; a refused request
changes nothing. Holder data leaves only masked.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import g, jsonify, request

from cloud.inventory.seats import typed_customer
from cloud.sales.holders import holder
from cloud.sales.tables import tickets
from cloud.sales.tickets import TicketError, TicketSpec, refundable_alone, revoke_ticket
from cloud.web.http import ApiError, api_actor, api_blueprint, api_permission, engine
from cloud.web.idempotent import idempotent, transaction
from sync.identity import mask_document, mask_name

bp = api_blueprint("api")
MAX_TICKETS = 1000


def _ticket_json(conn: sa.Connection, t) -> dict[str, Any]:
    out = {"id": t.id, "number": t.number, "kind": t.kind, "role": t.role, "state": t.state,
           "session_id": t.session_id, "scope": t.scope, "zone_id": t.zone_id,
           "seat_id": t.seat_id, "amount": t.amount, "currency": t.currency,
           "rfid_uid": t.rfid_uid, "holder": None}  # the code only in the sale's answer
    if t.holder_id is not None:
        h = holder(conn, t.holder_id)
        out["holder"] = {"name": mask_name(h.name), "doc_type": h.doc_type,
                         "doc_number": mask_document(h.doc_number)}
    return out


@bp.get("/tickets/<number>")
@api_permission("tickets.search")
def get_ticket(number: str):
    with engine().connect() as conn:
        t = conn.execute(sa.select(tickets).where(tickets.c.number == number)).first()
        if t is None:
            raise TicketError("unknown_ticket", ticket=number)
        return jsonify(_ticket_json(conn, t))


def ticket_specs(body: dict, session_id: int) -> list[TicketSpec]:
    """What an instant sale's body asks for (one ticket, or ``{"tickets": [...]}``), each
    field checked (a 400 naming it); the sale is the payments area's, which takes the money
    (cloud/payments/order_api.py)."""
    items = body.get("tickets", [body])
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_TICKETS:
        raise ApiError("bad_ticket_list", limit=MAX_TICKETS)
    specs = []
    for item in items:
        if not isinstance(item, dict):
            raise ApiError("bad_ticket_item")
        holder = item.get("holder")
        if holder is not None:
            if not isinstance(holder, dict) or not all(
                    isinstance(holder.get(k), str) for k in ("name", "doc_type", "doc_number")):
                raise ApiError("bad_holder")
            holder = (holder["name"], holder["doc_type"], holder["doc_number"])
        for key in ("seat_id", "price_tier_id"):
            if item.get(key) is not None and not isinstance(item[key], int):
                raise ApiError("bad_whole_number", field=key)
        specs.append(TicketSpec(session_id=session_id, seat_id=item.get("seat_id"),
                                price_tier_id=item.get("price_tier_id"), holder=holder,
                                customer=typed_customer(item.get("customer"))))
    return specs


@bp.post("/tickets/<number>/refund")
@api_permission("tickets.refund")
@idempotent
def refund(number: str):
    """Body (optional): ``{"reason": text}``, needed, with an admin's token, for a ticket that
    has admitted someone (409 ``admitted_needs_supervisor`` / ``reason_required``)."""
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise ApiError("bad_reason")
    with transaction() as conn:
        ticket_id = conn.execute(sa.select(tickets.c.id)
                                 .where(tickets.c.number == number)).scalar()
        if ticket_id is None:
            raise TicketError("unknown_ticket", ticket=number)
        refundable_alone(conn, ticket_id, number)
        revoke_ticket(conn, ticket_id, "refunded", actor=api_actor(), reason=reason,
                      supervisor="orders.approve_refund" in g.permissions)
    return jsonify(number=number, state="refunded")
