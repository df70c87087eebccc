"""Paying an order through the staff tools' JSON API: ``POST /api/v1/orders/<number>/payments``
with ``{"provider": "offline" | "wechat" | "alipay"}`` (the providers this hub is set up
with). A booth's cash or card (``offline``) pays at once: the answer carries the order's
tickets with their codes, shown this once. An online provider answers what the buyer scans
or opens (``qr_text`` / ``redirect_url``); the order is paid when the provider's signed
notification comes (cloud/payments/api.py), or when the worker asks the provider.
"""

from __future__ import annotations

from flask import current_app, g, jsonify

from cloud.payments.api import notify_url
from cloud.payments.capturing import place
from cloud.payments.checkout import ask_to_pay, open_payment, record_asked
from cloud.payments.settings import provider
from cloud.sales.order_plan import OrderError
from cloud.sales.orders import payable
from cloud.sales.tables import orders
from cloud.web.http import ApiError, api_blueprint, api_permission, engine, json_body
from cloud.web.idempotent import idempotent, transaction

bp = api_blueprint("order_payments_api")


def _ask(number: str) -> tuple:
    """Open the order's payment (committed at once) and ask its provider, with no transaction
    open while the provider answers: on SQLite a transaction kept open would stop every other
    sale for as long as the provider takes."""
    name = json_body().get("provider")
    if not isinstance(name, str):
        raise ApiError("bad_request", field="provider")
    adapter = provider(current_app.extensions["payment_providers"], name)
    with engine().begin() as conn:
        order_id = conn.execute(orders.select().with_only_columns(orders.c.id)
                                .where(orders.c.number == number)).scalar()
        if order_id is None:
            raise OrderError("unknown_order", order_id=number, field="number")
        due = payable(conn, order_id)
        if due.state != "pending_payment":
            raise OrderError("order_not_pending", order_id=number, state=due.state,
                             field="number")
        row = open_payment(conn, name, order_id, due.amount, currency=due.currency)
    return name, row, ask_to_pay(adapter, row, due.description, due.expires_at,
                                 notify_url=notify_url(name))


@bp.post("/orders/<number>/payments")
@api_permission("tickets.sell")
@idempotent(apart=_ask)
def pay(number: str):
    name, row, asked = g.apart
    with transaction() as conn:
        started = record_asked(conn, row.id, asked)
        answer = {"order": number, "provider": name, "payment": started.out_trade_no,
                  "state": started.state, "qr_text": started.qr_text,
                  "redirect_url": started.redirect_url, "unavailable": started.unavailable}
        if started.outcome is not None:
            captured = place(conn, started.outcome)
            answer.update(order_state=captured.state, refund_needed=captured.refund_needed,
                          tickets=[{"number": t.number, "code": t.code}
                                   for t in captured.tickets])
    return jsonify(answer), 200 if started.outcome is not None else 201
