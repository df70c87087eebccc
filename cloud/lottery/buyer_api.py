"""The buyer's side of the presale lottery over JSON, under ``/api/v1/buyer/`` beside the
buyers' own API (docs/openapi.json): a presale's public facts (its lots, the frozen list's and
the result's SHA-256, the winning application numbers), applying with the people the tickets
will name, paying the application's order with a provider, the buyer's applications, and the
seats a winner chooses.

Signed in as the buyers' API does it (``Authorization: Bearer wkb_…``, cloud/buyers/api.py);
a presale's facts are open to anyone. Holders are named as the account knows them: ``"me"``
(the buyer's own verified identity) or ``"c<id>"`` (a verified companion), resolved by the
buyers area. Another buyer's application is not found. Writes take an ``Idempotency-Key``
scoped to the buyer; a bad field is a 400 naming it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, jsonify

from cloud.buyers.api import open_call, signed_in
from cloud.lottery import applying, choosing, presales
from cloud.lottery.api import checked
from cloud.lottery.errors import LotteryError
from cloud.lottery.tables import presale_applications
from cloud.lottery.views import applications_of, buyer_application, public_winners
from cloud.payments.api import notify_url
from cloud.payments.capturing import place
from cloud.payments.checkout import ask_to_pay, open_payment, record_asked
from cloud.payments.settings import provider
from cloud.sales.order_plan import OrderError
from cloud.sales.orders import payable
from cloud.web.http import ApiError, engine, json_blueprint, json_body
from cloud.web.idempotent import idempotent, transaction

bp = json_blueprint("presale_buyer_api", "/api/v1/buyer")
bp.wicket_limit = ("API_LIMIT", None)
OFFLINE = "offline"

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
APPLY_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["lot_id", "quantity"],
    "properties": {
        "lot_id": _ID, "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
        "holders": {"type": "array", "maxItems": 10, "items": {
            "type": "string", "pattern": "^(me|c[1-9][0-9]{0,9})$"}},
    },
}
SEATS_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["seat_ids"],
                "properties": {"seat_ids": {"type": "array", "minItems": 1, "maxItems": 10,
                                            "items": _ID}}}
PAY_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["provider"],
              "properties": {"provider": {"type": "string", "minLength": 1,
                                          "maxLength": 20}}}


def _buyer() -> str:
    return f"buyer:{g.buyer.buyer_id}"


def _at(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


@bp.get("/presales/<int:presale_id>")
@open_call
def presale(presale_id: int):
    """What anyone may know of a presale once opened: its window, lots, the frozen list's
    SHA-256 (published before the seed is fixed), the seed and result once drawn, and the
    winning application numbers per lot."""
    with engine().connect() as conn:
        p = presales.presale(conn, presale_id)
        if p.state == "draft":
            raise LotteryError("unknown_presale", presale_id=presale_id, field="presale_id")
        drawn = p.state in ("drawn", "assigned")
        body = {
            "id": p.id, "event_id": p.event_id, "name": p.name, "state": p.state,
            "opens_at": _at(p.opens_at), "closes_at": _at(p.closes_at),
            "choose_closes_at": _at(p.choose_closes_at), "real_name": p.real_name,
            "max_quantity": p.max_quantity, "buyer_limit": p.buyer_limit,
            "list_sha256": p.list_sha256, "seed": p.seed if drawn else None,
            "result_sha256": p.result_sha256,
            "lots": [{"id": x.id, "session_id": x.session_id, "session": x.session,
                      "starts_at": _at(x.starts_at), "price_tier_id": x.price_tier_id,
                      "tier": x.tier, "amount": x.amount, "currency": x.currency,
                      "tickets": x.tickets} for x in presales.lots(conn, presale_id)],
            "winners": {str(k): v for k, v in public_winners(conn, presale_id).items()}
            if drawn else {}}
    return jsonify(body)


@bp.post("/presales/<int:presale_id>/applications")
@signed_in
@idempotent(scope=_buyer)
def apply(presale_id: int):
    """Apply for ``quantity`` tickets of a lot naming one holder per ticket (201); the
    application's order is then paid (``…/applications/<number>/payments``) before
    ``expires_at``."""
    b = checked(APPLY_SCHEMA, json_body())
    keys = b.get("holders", [])
    if len(set(keys)) != len(keys):
        raise ApiError("bad_request", field="holders")
    with transaction() as conn:
        made = applying.apply(conn, presale_id, b["lot_id"], b["quantity"], _buyer(),
                              applying.named_holders(conn, g.buyer.buyer_id, keys))
    return jsonify({"number": made.number, "order": made.order_number, "state": "applied",
                    "amount": made.amount, "currency": made.currency,
                    "expires_at": made.expires_at.isoformat()}), 201


def _application_json(view: dict[str, Any]) -> dict[str, Any]:
    shown = {k: view[k] for k in ("number", "presale_id", "presale", "lot_id", "session_id",
                                  "session", "tier", "quantity", "amount", "currency", "rank",
                                  "order_number")}
    shown.update(state=view["shown"], starts_at=_at(view["starts_at"]),
                 created_at=_at(view["created_at"]),
                 payment_expires_at=_at(view["expires_at"]),
                 choose_closes_at=_at(view["choose_closes_at"]))
    if "seats" in view:
        shown["seats"] = view["seats"]
    return shown


@bp.get("/applications")
@signed_in
def list_applications():
    with engine().connect() as conn:
        rows = applications_of(conn, _buyer())
    return jsonify({"applications": [_application_json(r) for r in rows]})


@bp.get("/applications/<number>")
@signed_in
def application(number: str):
    with engine().connect() as conn:
        return jsonify(_application_json(buyer_application(conn, _buyer(), number)))


@bp.put("/applications/<number>/seats")
@signed_in
@idempotent(scope=_buyer)
def choose_seats(number: str):
    """A winner's seats, as many as the application's tickets, of its tier, while the
    choosing window is open: the application with its seats and tickets."""
    b = checked(SEATS_SCHEMA, json_body())
    with transaction() as conn:
        choosing.choose_seats(conn, _buyer(), number, b["seat_ids"])
        view = buyer_application(conn, _buyer(), number)
    return jsonify(_application_json(view))


def _adapter():
    b = checked(PAY_SCHEMA, json_body())
    if b["provider"] == OFFLINE:  # the booth's cash: not for a buyer alone
        raise ApiError("bad_request", field="provider")
    return provider(current_app.extensions["payment_providers"], b["provider"])


def _due(conn: sa.Connection, number: str):
    """The application's order id and what it has to pay; not found for another buyer."""
    order_id = conn.execute(sa.select(presale_applications.c.order_id).where(
        presale_applications.c.number == number,
        presale_applications.c.buyer == _buyer())).scalar()
    if order_id is None:
        raise LotteryError("unknown_application", number=number, field="number")
    due = payable(conn, order_id)
    if due.state != "pending_payment":
        raise OrderError("order_not_pending", order_id=due.number, state=due.state,
                         field="number")
    return order_id, due


def _ask(number: str):
    """Open the order's payment (committed at once) and ask the provider, with no transaction
    open while it answers."""
    adapter = _adapter()
    with engine().begin() as conn:
        order_id, due = _due(conn, number)
        row = open_payment(conn, adapter.name, order_id, due.amount, currency=due.currency)
    return row, ask_to_pay(adapter, row, due.description, due.expires_at,
                           notify_url=notify_url(adapter.name))


@bp.post("/applications/<number>/payments")
@signed_in
@idempotent(apart=_ask, scope=_buyer)
def pay(number: str):
    """Pay the application's order with an online provider (201): what the buyer scans or
    opens (``qr_text`` / ``redirect_url``). The application is paid when the provider's
    signed notification comes (cloud/payments/api.py)."""
    adapter = _adapter()
    row, asked = g.apart
    with transaction() as conn:
        started = record_asked(conn, row.id, asked)
        if started.outcome is not None:  # settled as it was made
            place(conn, started.outcome)
    return jsonify({"application": number, "provider": adapter.name,
                    "payment": started.out_trade_no, "state": started.state,
                    "qr_text": started.qr_text, "redirect_url": started.redirect_url,
                    "unavailable": started.unavailable}), 201
