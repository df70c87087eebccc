"""The JSON API of orders, under ``/api/v1/`` (docs/openapi.json): a box office or a tool
creates an order for a session (its seats and quota held until the payment deadline), reads
it, and cancels it while it waits for payment. Paying it is the payments area's
(``POST /api/v1/orders/<number>/payments``, cloud/payments/order_api.py).

Every write takes an ``Idempotency-Key``; a body that does not match the schema below is a
400 naming the field, and a refused order holds nothing. Holders leave only masked; a
ticket's code is in the answer of the payment that issued it, never in a read.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import sqlalchemy as sa
from flask import jsonify

from cloud.inventory.seats import typed_customer
from cloud.sales.holders import holder
from cloud.sales.order_plan import LineRequest, OrderError, OrderRequest
from cloud.sales.orders import OrderCreated, cancel_order, create_order, shown_state
from cloud.sales.tables import order_lines, orders, tickets
from cloud.web.http import ApiError, api_actor, api_blueprint, api_permission, engine, json_body
from cloud.web.idempotent import idempotent, transaction
from sync.identity import mask_document, mask_name

bp = api_blueprint("order_api")
MAX_LINES = 50

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 200}
ORDER_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["lines"],
    "properties": {
        "buyer": {"type": "string", "minLength": 1, "maxLength": 80},
        "customer": {"type": "string", "minLength": 1, "maxLength": 200},
        "lines": {"type": "array", "minItems": 1, "maxItems": MAX_LINES, "items": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "kind": {"enum": ["seat", "ga", "pass"]},
                "seat_id": _ID, "zone_id": _ID, "price_tier_id": _ID, "product_id": _ID,
                "holder": {"type": "object", "additionalProperties": False,
                           "required": ["name", "doc_type", "doc_number"],
                           "properties": {"name": _TEXT, "doc_type": _TEXT,
                                          "doc_number": _TEXT}},
            }}},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(ORDER_SCHEMA)


def _checked(body: Any) -> dict[str, Any]:
    """The body, or a 400 naming the first field that does not match the schema."""
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(body))
    if error is not None:
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            path.append(error.message.split("'")[1])
        elif error.validator == "additionalProperties":
            path.append(error.message.split("'")[1])
        raise ApiError("bad_request", field=".".join(path) or "body")
    return body


def _line(item: dict[str, Any]) -> LineRequest:
    h = item.get("holder")
    return LineRequest(kind=item.get("kind", "seat"), seat_id=item.get("seat_id"),
                       zone_id=item.get("zone_id", 0), price_tier_id=item.get("price_tier_id"),
                       product_id=item.get("product_id"),
                       holder=(h["name"], h["doc_type"], h["doc_number"]) if h else None)


@bp.post("/sessions/<int:session_id>/orders")
@api_permission("tickets.sell")
@idempotent
def create(session_id: int):
    """Hold an order's seats and quota until its payment deadline (201), or refuse it."""
    b = _checked(json_body())
    request = OrderRequest(session_id, tuple(_line(i) for i in b["lines"]), buyer=b.get("buyer"),
                           actor=api_actor(), customer=typed_customer(b.get("customer")))
    with transaction() as conn:
        made = create_order(conn, request)
    return jsonify(_created_json(made)), 201


def _masked(holder: tuple[str, str, str] | None) -> dict[str, str] | None:
    if holder is None:
        return None
    name, doc_type, number = holder
    return {"name": mask_name(name), "doc_type": doc_type, "doc_number": mask_document(number)}


def _created_json(made: OrderCreated) -> dict[str, Any]:
    """An order just held, as :func:`_order_json` reads it back, from what was written: no
    read after the hold, so the transaction commits right after its quota counters."""
    lines = [{"kind": line.kind, "seat_id": seat_id, "zone_id": line.zone_id,
              "price_tier_id": line.price_tier_id, "product_id": line.product_id,
              "amount": line.amount, "currency": line.currency, "state": "held",
              "holder": _masked(line.holder)}
             for line, seat_id in zip(made.lines, made.seat_ids, strict=True)]
    return {"number": made.number, "state": "pending_payment", "total": made.total,
            "currency": made.currency, "expires_at": made.expires_at.isoformat(),
            "lines": lines, "tickets": []}


def _order_id(conn: sa.Connection, number: str) -> int:
    found = conn.execute(sa.select(orders.c.id).where(orders.c.number == number)).scalar()
    if found is None:
        raise OrderError("unknown_order", order_id=number, field="number")
    return found


def _order_json(conn: sa.Connection, order_id: int) -> dict[str, Any]:
    """An order as the API shows it: state (a lapsed hold reads ``expired`` at once), lines with
    their seats and masked holders, and the numbers of its tickets."""
    o = conn.execute(sa.select(orders).where(orders.c.id == order_id)).one()
    lines = []
    for line in conn.execute(sa.select(order_lines).where(order_lines.c.order_id == order_id)
                             .order_by(order_lines.c.id)):
        who = None
        if line.holder_id is not None:
            h = holder(conn, line.holder_id)
            who = {"name": mask_name(h.name), "doc_type": h.doc_type,
                   "doc_number": mask_document(h.doc_number)}
        lines.append({"kind": line.kind, "seat_id": line.seat_id, "zone_id": line.zone_id,
                      "price_tier_id": line.price_tier_id, "product_id": line.product_id,
                      "amount": line.amount, "currency": line.currency, "state": line.state,
                      "holder": who})
    numbers = conn.execute(sa.select(tickets.c.number).where(tickets.c.order_id == order_id)
                           .order_by(tickets.c.id)).scalars().all()
    return {"number": o.number, "state": shown_state(o), "total": o.total,
            "currency": o.currency, "expires_at": o.expires_at.isoformat(), "lines": lines,
            "tickets": numbers}


@bp.get("/orders/<number>")
@api_permission("tickets.search")
def get(number: str):
    with engine().connect() as conn:
        return jsonify(_order_json(conn, _order_id(conn, number)))


@bp.post("/orders/<number>/cancel")
@api_permission("tickets.sell")
@idempotent
def cancel(number: str):
    """Cancel an order waiting for payment: its seats and quota go back on sale at once."""
    with transaction() as conn:
        order_id = _order_id(conn, number)
        cancel_order(conn, order_id, actor=api_actor())
        body = _order_json(conn, order_id)
    return jsonify(body)
