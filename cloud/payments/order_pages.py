"""Orders for staff: the list and search, the order page (lines, tickets, payments, refunds,
each ticket's entries), the printable receipt, the payment page of an online payment (its QR
code, refreshed until the provider's notification pays the order), and cancelling an order
still waiting for payment.

A ticket's code is a bearer credential: the receipt shows the codes once, to the clerk who
has just sold the order, and never again (the ticket page's audited reveal is the way back).
Refunds are shown read-only; asking for one is the refund pages' (``/orders/<n>/refund``).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import abort, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from cloud.core.errors import HubError
from cloud.payments.api import notify_url
from cloud.payments.capturing import place
from cloud.payments.checkout import (
    Asked,
    apply_trade_status,
    ask_to_pay,
    open_payment,
    record_asked,
)
from cloud.payments.order_record import order_id_of, order_record, recent_orders
from cloud.payments.tables import payments
from cloud.sales.orders import cancel_order, payable
from cloud.sales.pages import entry_reason_words
from cloud.sales.tables import orders
from cloud.web.query import query_choice, query_text
from cloud.web.web import actor, back, can, engine, ok, page_blueprint, permission, qr_svg, refused
from cloud.web.words import rule_error

bp = page_blueprint("orders", "/orders")
_NUMBER = re.compile(r"[0-9A-Za-z]{1,20}")
JUST_SOLD_ORDER = "just_sold_orders"  # the clerk's orders whose codes are not shown yet
MAX_JUST_SOLD = 5  # a clerk waiting for several online payments at once
ORDER_STATES = ("pending_payment", "paid", "partially_refunded", "refunded", "expired",
                "cancelled")
PAY_LABELS = {"cash": lazy_gettext("Cash"), "card": lazy_gettext("Card"),
              "wechat": lazy_gettext("WeChat Pay"), "alipay": lazy_gettext("Alipay"),
              "offline": lazy_gettext("Cash or card at the counter"),
              "account": lazy_gettext("From the partner's account"),
              "transfer": lazy_gettext("Bank transfer")}
STATE_WORDS = {
    "pending_payment": lazy_gettext("waiting for payment"), "paid": lazy_gettext("paid"),
    "partially_refunded": lazy_gettext("partly refunded"), "refunded": lazy_gettext("refunded"),
    "expired": lazy_gettext("expired"), "cancelled": lazy_gettext("cancelled"),
    "created": lazy_gettext("created"), "pending": lazy_gettext("pending"),
    "succeeded": lazy_gettext("succeeded"), "failed": lazy_gettext("failed"),
    "closed": lazy_gettext("closed"), "requested": lazy_gettext("requested"),
    "processing": lazy_gettext("processing"), "issued": lazy_gettext("issued"),
    "void": lazy_gettext("void"), "held": lazy_gettext("held"),
    "released": lazy_gettext("released"),
}


def just_sold(number: str) -> None:
    """Remember that this clerk has just sold order ``number``: its receipt shows the codes
    once, when the order has its tickets."""
    sold = [n for n in session.get(JUST_SOLD_ORDER) or [] if n != number]
    session[JUST_SOLD_ORDER] = [number, *sold][:MAX_JUST_SOLD]


def state_words(state: str) -> str:
    words = STATE_WORDS.get(state)
    return str(words) if words is not None else state


def pay_words(name: str | None) -> str:
    words = PAY_LABELS.get(name or "")
    return str(words) if words is not None else (name or "")


def _order_id(conn: sa.Connection, number: str) -> int | None:
    """The order's id; None for a number no order has (or that no order could have)."""
    return order_id_of(conn, number) if _NUMBER.fullmatch(number) else None


def _record_or_404(conn: sa.Connection, number: str):
    order_id = _order_id(conn, number)
    if order_id is None:
        abort(404)
    return order_record(conn, order_id)


@bp.get("")
@permission("tickets.search")
def index():
    number = query_text("number", 20).upper()
    state = query_choice("state", ORDER_STATES, "")
    with engine().connect() as conn:
        rows = recent_orders(conn, number, state)
    return render_template("sales/orders.html", rows=rows, number=number, state=state,
                           states=ORDER_STATES, state_words=state_words)


@bp.get("/<number>")
@permission("tickets.search")
def detail(number: str):
    with engine().connect() as conn:
        rec = _record_or_404(conn, number)
    return render_template("sales/order.html", rec=rec, state_words=state_words,
                           pay_words=pay_words, reason_words=entry_reason_words,
                           may_sell=can("tickets.sell"))


@bp.get("/<number>/receipt")
@permission("tickets.search")
def receipt(number: str):
    with engine().connect() as conn:
        rec = _record_or_404(conn, number)
    codes = {}
    # shown once, to the clerk who sold the order, when its tickets exist
    sold = session.get(JUST_SOLD_ORDER) or []
    if rec.tickets and number in sold and can("tickets.sell"):
        session[JUST_SOLD_ORDER] = [n for n in sold if n != number]
        codes = {t.number: qr_svg(t.code, scale=3) for t in rec.tickets}
    return render_template("sales/receipt.html", rec=rec, codes=codes, state_words=state_words,
                           pay_words=pay_words)


@bp.get("/<number>/state")
@permission("tickets.search")
def state(number: str):
    """The order's state, for the payment page to notice when it is paid."""
    with engine().connect() as conn:
        order_id = _order_id(conn, number)
        if order_id is None:
            abort(404)
        due = payable(conn, order_id)
    return jsonify({"number": number, "state": due.state,
                    "receipt": url_for("orders.receipt", number=number)})


def pay_page(number: str, method: str, status: int = 200):
    """Show what the buyer scans for an order waiting for an online payment (the same trade
    each time: ``open_payment`` reuses the open one), or go to the receipt once it is paid."""
    adapter = current_app.extensions["payment_providers"].get(method)
    if adapter is None:
        abort(404)
    with engine().begin() as conn:
        order_id = _order_id(conn, number)
        if order_id is None:
            abort(404)
        due = payable(conn, order_id)
        if due.state != "pending_payment":
            return back("orders.receipt" if due.state == "paid" else "orders.detail",
                        number=number)
        row = open_payment(conn, adapter.name, order_id, due.amount, currency=due.currency)
    try:  # no transaction open while the provider answers
        asked = ask_to_pay(adapter, row, due.description, due.expires_at,
                           notify_url=notify_url(method))
    except HubError as e:
        refused(_("The provider could not be asked: %(why)s", why=rule_error(e)))
        asked = Asked(unavailable=rule_error(e))
    with engine().begin() as conn:
        started = record_asked(conn, row.id, asked)
    return render_template("sales/pay.html", number=number, method=method, due=due,
                           started=started, pay_words=pay_words,
                           qr=qr_svg(started.qr_text, scale=4) if started.qr_text else None
                           ), status


def _ask_provider(number: str, method: str) -> None:
    """Ask the provider where the order's open payment stands (no transaction open while it
    answers) and apply the answer as a notification would be: paid, the order is captured."""
    adapter = current_app.extensions["payment_providers"].get(method)
    if adapter is None or not _NUMBER.fullmatch(number):
        return
    with engine().connect() as conn:
        row = conn.execute(sa.select(payments).join(orders, orders.c.id == payments.c.order_id)
                           .where(orders.c.number == number, payments.c.provider == method,
                                  payments.c.state.in_(("created", "pending")))
                           .order_by(payments.c.id.desc()).limit(1)).first()
    if row is None:
        return
    status = adapter.query(row.out_trade_no)
    with engine().begin() as conn:
        outcome = apply_trade_status(conn, row, status)
        if outcome.newly_succeeded:
            place(conn, outcome)


@bp.post("/<number>/pay")
@permission("tickets.sell")
def pay(number: str):
    """The payment page's refresh: the provider is asked, then the page shown again (or the
    receipt, once paid)."""
    method = request.form.get("method", "")
    try:
        _ask_provider(number, method)
    except HubError as e:
        refused(_("The provider could not be asked: %(why)s", why=rule_error(e)))
    return pay_page(number, method)


@bp.get("/<number>/cancel")
@permission("tickets.sell")
def confirm_cancel(number: str):
    with engine().connect() as conn:
        rec = _record_or_404(conn, number)
    return render_template("sales/order_cancel.html", rec=rec, state_words=state_words)


@bp.post("/<number>/cancel")
@permission("tickets.sell")
def cancel(number: str):
    try:
        with engine().begin() as conn:
            order_id = _order_id(conn, number)
            if order_id is None:
                abort(404)
            cancel_order(conn, order_id, actor=actor())
    except HubError as e:
        refused(_("The order was not cancelled: %(why)s", why=rule_error(e)))
    else:
        ok(_("Order %(number)s is cancelled: its seats are on sale again.", number=number))
    return redirect(url_for("orders.detail", number=number), 303)
