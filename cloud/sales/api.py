"""The hub's JSON API for staff tools, under ``/api/v1/`` (described in docs/openapi.json).

Every call carries ``Authorization: Bearer <API token>``; the token acts with its staff
member's role, and each route names the roles it admits (admin admits everywhere). Errors are
``{"error": code, "message": words}`` with a 4xx status; a refused request changes nothing.
Holder data leaves only masked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

import sqlalchemy as sa
from flask import g, jsonify, request

from cloud.catalog.tables import venues
from cloud.catalog.venues import VenueError, create_venue
from cloud.ops.tables import conflicts
from cloud.sales.tables import holders, tickets
from cloud.sales.tickets import TicketError, TicketSpec, issue_tickets, revoke_ticket
from cloud.staff import staff as staff_mod
from cloud.web.http import ApiError, engine, json_blueprint, json_body
from sync.identity import mask_document, mask_name
from sync.timeutil import to_iso

bp = json_blueprint("api", "/api/v1")


@bp.errorhandler(staff_mod.StaffError)
def _staff_error(e: staff_mod.StaffError):
    return jsonify(error=e.code, message=str(e)), 401


@bp.errorhandler(TicketError)
@bp.errorhandler(VenueError)
def _refused(e: Exception):
    return jsonify(error=getattr(e, "code", "refused"), message=str(e)), 409


def requires(*roles: str) -> Callable:
    """Admit API tokens of these roles (and admins)."""
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or not token:
                raise ApiError(401, "unauthorized", "missing Authorization: Bearer <token>")
            with engine().connect() as conn:
                who = staff_mod.token_staff(conn, token.strip())
            if not staff_mod.admits(who.role, roles):
                raise ApiError(403, "forbidden", f"the {who.role} role may not do this")
            g.staff = who
            return view(*args, **kwargs)
        return wrapper
    return decorate


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _actor() -> str:
    return f"staff:{g.staff.id}"


@bp.get("/venues")
@requires("sales", "ops")
def list_venues():
    with engine().connect() as conn:
        rows = conn.execute(sa.select(venues).order_by(venues.c.id)).all()
    return jsonify(venues=[{"id": r.id, "code": r.code, "name": r.name, "address": r.address,
                            "timezone": r.timezone} for r in rows])


@bp.post("/venues")
@requires()
def post_venue():
    b = json_body()
    if not isinstance(b.get("code"), str) or not isinstance(b.get("name"), str):
        raise ApiError(400, "bad_request", "code and name are required strings")
    with engine().begin() as conn:
        venue_id = create_venue(conn, b["code"], b["name"], str(b.get("address", "")),
                                str(b.get("timezone", "Asia/Shanghai")), actor=_actor())
    return jsonify(id=venue_id), 201


def _ticket_json(conn: sa.Connection, t) -> dict[str, Any]:
    out = {"id": t.id, "number": t.number, "kind": t.kind, "role": t.role, "state": t.state,
           "session_id": t.session_id, "scope": t.scope, "zone_id": t.zone_id,
           "seat_id": t.seat_id, "amount": t.amount, "currency": t.currency,
           "rfid_uid": t.rfid_uid, "code": t.code, "holder": None}
    if t.holder_id is not None:
        h = conn.execute(sa.select(holders).where(holders.c.id == t.holder_id)).one()
        out["holder"] = {"name": mask_name(h.name), "doc_type": h.doc_type,
                         "doc_number": mask_document(h.doc_number)}
    return out


@bp.get("/tickets/<number>")
@requires("sales", "ops")
def get_ticket(number: str):
    with engine().connect() as conn:
        t = conn.execute(sa.select(tickets).where(tickets.c.number == number)).first()
        if t is None:
            raise ApiError(404, "not_found", f"no ticket {number}")
        return jsonify(_ticket_json(conn, t))


@bp.post("/sessions/<int:session_id>/tickets")
@requires("sales")
def sell(session_id: int):
    """The box office: one ticket, or several (``{"tickets": [...]}``), for a session."""
    b = json_body()
    items = b.get("tickets", [b])
    if not isinstance(items, list) or not 1 <= len(items) <= 1000:
        raise ApiError(400, "bad_request", "tickets must be a list of 1 to 1000 objects")
    specs = []
    for item in items:
        if not isinstance(item, dict):
            raise ApiError(400, "bad_request", "each ticket is an object")
        holder = item.get("holder")
        if holder is not None:
            if not isinstance(holder, dict) or not all(
                    isinstance(holder.get(k), str) for k in ("name", "doc_type", "doc_number")):
                raise ApiError(400, "bad_request", "holder needs name, doc_type, doc_number")
            holder = (holder["name"], holder["doc_type"], holder["doc_number"])
        for key in ("seat_id", "price_tier_id"):
            if item.get(key) is not None and not isinstance(item[key], int):
                raise ApiError(400, "bad_request", f"{key} must be a whole number")
        specs.append(TicketSpec(session_id=session_id, seat_id=item.get("seat_id"),
                                price_tier_id=item.get("price_tier_id"), holder=holder,
                                customer=item.get("customer")))
    with engine().begin() as conn:
        issued = issue_tickets(conn, specs, actor=_actor())
    return jsonify(tickets=[{"id": t.id, "number": t.number, "code": t.code} for t in issued]), 201


@bp.post("/tickets/<number>/refund")
@requires("sales")
def refund(number: str):
    """Body (optional): ``{"reason": text}``, needed, with an admin's token, for a ticket that
    has admitted someone (409 ``admitted_needs_supervisor`` / ``reason_required``)."""
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise ApiError(400, "bad_request", "reason must be text")
    with engine().begin() as conn:
        ticket_id = conn.execute(sa.select(tickets.c.id)
                                 .where(tickets.c.number == number)).scalar()
        if ticket_id is None:
            raise ApiError(404, "not_found", f"no ticket {number}")
        revoke_ticket(conn, ticket_id, "refunded", actor=_actor(), reason=reason,
                      supervisor=staff_mod.admits(g.staff.role, staff_mod.SUPERVISOR_ROLES))
    return jsonify(number=number, state="refunded")


@bp.get("/conflicts")
@requires("ops")
def list_conflicts():
    with engine().connect() as conn:
        rows = conn.execute(sa.select(conflicts).order_by(conflicts.c.id.desc())
                            .limit(500)).all()
    return jsonify(conflicts=[{"id": r.id, "kind": r.kind, "ticket_id": r.ticket_id,
                               "entry_ids": r.entry_ids, "detail": r.detail,
                               "detected_at": to_iso(_utc(r.detected_at)),
                               "reviewed": r.reviewed_at is not None} for r in rows])
