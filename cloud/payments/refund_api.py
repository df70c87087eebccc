"""The JSON API of refunds, under ``/api/v1/`` (every write takes an ``Idempotency-Key``):

- ``GET|PUT /sessions/<id>/refund-policy`` — ``{"refundable_until": ISO time or null,
  "fee_kind": "none"|"percent"|"fixed", "fee_value": int}`` (``sessions.manage`` to set);
- ``POST /orders/<number>/refunds`` — ``{"tickets": [numbers] (default: all live),
  "reason": text}``: a request, 201 (``orders.request_refund``);
- ``GET /refunds?state=pending`` (``orders.approve_refund``), ``GET /refunds/<id>``;
- ``POST /refunds/<id>/approve`` ``{"note": text}`` and ``/reject`` ``{"note": text}``
  (``orders.approve_refund``; never the request's maker);
- ``POST /refunds/<id>/retry`` ``{}``: a failed refund sent again (``orders.approve_refund``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import g, jsonify, request

from cloud.payments.refund_approval import approve_refund, retry_refund
from cloud.payments.tables import payment_refunds
from cloud.sales.refunds import (
    RefundError,
    order_by_number,
    policy,
    refund_request,
    reject_request,
    request_lines,
    request_refund,
    request_rows,
    set_policy,
    ticket_ids,
)
from cloud.sales.tables import REFUND_REQUEST_STATES, orders
from cloud.web.http import ApiError, api_actor, api_blueprint, api_permission, engine, json_body
from cloud.web.idempotent import idempotent, transaction
from sync.timeutil import to_iso

bp = api_blueprint("refund_api")
SUPERVISOR = "orders.approve_refund"


def _text(body: dict, name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise ApiError("bad_request", field=name)
    return value[:1000]


def _policy_json(p) -> dict[str, Any]:
    return {"session_id": p.session_id, "refundable_until": to_iso(p.refundable_until),
            "fee_kind": p.fee_kind, "fee_value": p.fee_value, "explicit": p.explicit,
            "postponed": p.postponed}


@bp.get("/sessions/<int:session_id>/refund-policy")
@api_permission("tickets.search")
def get_policy(session_id: int):
    with engine().connect() as conn:
        return jsonify(_policy_json(policy(conn, session_id)))


@bp.put("/sessions/<int:session_id>/refund-policy")
@api_permission("sessions.manage")
@idempotent
def put_policy(session_id: int):
    body = json_body()
    until = body.get("refundable_until")
    try:
        when = datetime.fromisoformat(until) if until is not None else None
    except (TypeError, ValueError):
        raise ApiError("bad_request", field="refundable_until") from None
    if when is not None and when.tzinfo is None:
        raise ApiError("bad_request", field="refundable_until")
    with transaction() as conn:
        p = set_policy(conn, session_id, when, body.get("fee_kind", "none"),
                       body.get("fee_value", 0), api_actor())
    return jsonify(_policy_json(p))


def _request_json(conn: sa.Connection, request_id: int) -> dict[str, Any]:
    r = refund_request(conn, request_id)
    number = conn.execute(sa.select(orders.c.number).where(orders.c.id == r.order_id)).scalar()
    money = None
    if r.payment_refund_id is not None:
        p = conn.execute(sa.select(payment_refunds).where(
            payment_refunds.c.id == r.payment_refund_id)).one()
        money = {"out_refund_no": p.out_refund_no, "state": p.state, "amount": p.amount}
    return {"id": r.id, "order": number, "state": r.state, "gross": r.gross, "fee": r.fee,
            "amount": r.amount, "currency": r.currency, "reason": r.reason, "maker": r.maker,
            "checker": r.checker, "note": r.decision_note, "bulk": r.bulk,
            "tickets": [{"number": line.number, "price": line.amount, "fee": line.fee,
                         "state": line.ticket_state} for line in request_lines(conn, r.id)],
            "provider_refund": money}


@bp.post("/orders/<number>/refunds")
@api_permission("orders.request_refund")
@idempotent
def create(number: str):
    body = json_body()
    chosen = body.get("tickets")
    if chosen is not None and (not isinstance(chosen, list) or len(chosen) > 200
                               or not all(isinstance(n, str) for n in chosen)):
        raise ApiError("bad_request", field="tickets")
    with transaction() as conn:
        o = order_by_number(conn, number)
        if o is None:
            raise RefundError("order_not_refundable", order_id=number, state="unknown")
        ids = ticket_ids(conn, o, chosen) if chosen is not None else None
        rid = request_refund(conn, o.id, ids, api_actor(), _text(body, "reason"))
        answer = _request_json(conn, rid)
    return jsonify(answer), 201


@bp.get("/refunds")
@api_permission(SUPERVISOR)
def index():
    state = request.args.get("state", "pending")
    if state not in REFUND_REQUEST_STATES:
        raise ApiError("bad_request", field="state")
    with engine().connect() as conn:
        rows = request_rows(conn, state=state)
        return jsonify({"refunds": [_request_json(conn, r.id) for r in rows]})


@bp.get("/refunds/<int:request_id>")
@api_permission("tickets.search")
def get(request_id: int):
    with engine().connect() as conn:
        return jsonify(_request_json(conn, request_id))


@bp.post("/refunds/<int:request_id>/approve")
@api_permission(SUPERVISOR)
@idempotent
def approve(request_id: int):
    """Approve (never one's own request): tickets revoked, the money sent back."""
    note = _text(json_body(), "note")
    with transaction() as conn:
        approve_refund(conn, request_id, api_actor(), note=note,
                       supervisor=SUPERVISOR in g.permissions)
        answer = _request_json(conn, request_id)
    return jsonify(answer)


@bp.post("/refunds/<int:request_id>/reject")
@api_permission(SUPERVISOR)
@idempotent
def reject(request_id: int):
    note = _text(json_body(), "note")
    with transaction() as conn:
        reject_request(conn, request_id, api_actor(), note)
        answer = _request_json(conn, request_id)
    return jsonify(answer)


@bp.post("/refunds/<int:request_id>/retry")
@api_permission(SUPERVISOR)
@idempotent
def retry(request_id: int):
    """A refund the provider failed, sent again under a new refund number."""
    json_body()
    with transaction() as conn:
        retry_refund(conn, request_id, api_actor())
        answer = _request_json(conn, request_id)
    return jsonify(answer)
