"""Paying an order through the staff tools' JSON API: ``POST /api/v1/orders/<number>/payments``
with ``{"provider": "offline" | "wechat" | "alipay"}`` (the providers this hub is set up
with). A booth's cash or card (``offline``) pays at once: the answer carries the order's
tickets with their codes, shown this once. An online provider answers what the buyer scans
or opens (``qr_text`` / ``redirect_url``); the order is paid when the provider's signed
notification comes (cloud/payments/api.py), or when the worker asks the provider.

The box office's instant sale, ``POST /api/v1/sessions/<id>/tickets``, is here too: its
order is paid at the counter through the offline provider in the sale's transaction, so the
cash taken is a payment posted to the ledger like any other.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, g, jsonify

from cloud.payments.api import notify_url
from cloud.payments.capturing import place
from cloud.payments.checkout import ask_to_pay, open_payment, record_asked, start_payment
from cloud.payments.offline import OfflineProvider
from cloud.payments.settings import provider
from cloud.sales.api import ticket_specs
from cloud.sales.order_plan import OrderError
from cloud.sales.orders import Captured, OrderCreated, payable, payable_by_number
from cloud.sales.selling import sell as sell_tickets
from cloud.web.http import ApiError, api_actor, api_blueprint, api_permission, engine, json_body
from cloud.web.idempotent import idempotent, transaction

bp = api_blueprint("order_payments_api")


def _adapter():
    name = json_body().get("provider")
    if not isinstance(name, str):
        raise ApiError("bad_request", field="provider")
    return provider(current_app.extensions["payment_providers"], name)


def _calls_out(number: str) -> bool:
    """Whether paying with the provider asked for calls another service (an online provider);
    the booth's own (``offline``) calls nothing, and its payment is made in one transaction."""
    return getattr(_adapter(), "calls_out", True)


def _due(conn, number: str) -> tuple[int, object]:
    """The order's id and what it has to pay; ``unknown_order`` or ``order_not_pending``."""
    due = payable_by_number(conn, number)
    order_id = due.order_id
    if due.state != "pending_payment":
        raise OrderError("order_not_pending", order_id=number, state=due.state,
                         field="number")
    return order_id, due


def _ask(number: str) -> tuple:
    """Open the order's payment (committed at once) and ask its provider, with no transaction
    open while the provider answers: on SQLite a transaction kept open would stop every other
    sale for as long as the provider takes."""
    adapter = _adapter()
    with engine().begin() as conn:
        order_id, due = _due(conn, number)
        row = open_payment(conn, adapter.name, order_id, due.amount, currency=due.currency)
    return row, ask_to_pay(adapter, row, due.description, due.expires_at,
                           notify_url=notify_url(adapter.name))


@bp.post("/orders/<number>/payments")
@api_permission("tickets.sell")
@idempotent(apart=_ask, apart_if=_calls_out)
def pay(number: str):
    adapter = _adapter()
    with transaction() as conn:
        if g.apart is None:  # nothing to wait for: opened, asked and recorded here
            order_id, due = _due(conn, number)
            started = start_payment(conn, adapter, order_id, due.amount, due.description,
                                    due.expires_at, currency=due.currency)
        else:
            row, asked = g.apart
            started = record_asked(conn, row.id, asked)
        answer = {"order": number, "provider": adapter.name, "payment": started.out_trade_no,
                  "state": started.state, "qr_text": started.qr_text,
                  "redirect_url": started.redirect_url, "unavailable": started.unavailable}
        if started.outcome is not None:
            captured = place(conn, started.outcome)
            answer.update(order_state=captured.state, refund_needed=captured.refund_needed,
                          tickets=[{"number": t.number, "code": t.code}
                                   for t in captured.tickets])
    return jsonify(answer), 200 if started.outcome is not None else 201


def _at_the_counter(conn: sa.Connection, made: OrderCreated) -> Captured:
    """An instant sale's money, taken at the counter: the offline provider's payment, placed
    (captured, and posted to the ledger) in the sale's transaction."""
    due = payable(conn, made.order_id)
    started = start_payment(conn, OfflineProvider(), made.order_id, due.amount,
                            due.description, due.expires_at, currency=due.currency)
    return place(conn, started.outcome)


@bp.post("/sessions/<int:session_id>/tickets")
@api_permission("tickets.sell")
@idempotent
def sell(session_id: int):
    """The box office's instant sale: one ticket, or several (``{"tickets": [...]}``), for a
    session, paid at the counter; the answer carries each ticket's code, shown this once."""
    specs = ticket_specs(json_body(), session_id)
    with transaction() as conn:
        issued = sell_tickets(conn, session_id, specs, actor=api_actor(), pay=_at_the_counter)
    return jsonify(tickets=[{"id": t.id, "number": t.number, "code": t.code} for t in issued]), 201
