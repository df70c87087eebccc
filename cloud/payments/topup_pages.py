"""The partner portal's online top-up (``/partner/top-up``, with the portal's sign-in, session
and CSRF token: cloud/ledger/portal_pages.py ``share_session``): a signed-in partner pays
money onto its prepaid balance (备用金) through an online provider instead of a bank transfer.

A top-up is an order of its own kind (``topup``, buyer ``partner:<id>``, no lines:
cloud/sales/orders.py ``open_topup_order``) paid as any order is: its payment opened here, the
provider asked with no transaction open, and the provider's signed notification (or the
worker's query) captures it; the ledger then credits the partner's prepaid balance in that same
transaction (cloud/ledger/posting.py ``post_payment``). A payment that comes after the order's
deadline is still taken: a top-up holds nothing another order could have had. Every read names
the signed-in user's partner: another partner's top-up is not found.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.ledger.portal_pages import share_session, signed_in_partner
from cloud.payments.api import notify_url
from cloud.payments.checkout import open_and_ask
from cloud.payments.order_pages import pay_words
from cloud.sales.orders import open_topup_order, shown_state
from cloud.sales.tables import TOPUP, orders
from cloud.web.limits import limited
from cloud.web.web import engine, qr_svg
from cloud.web.words import rule_error
from sync.timeutil import utcnow

bp = share_session(Blueprint("partner_topup", __name__, url_prefix="/partner"))

OFFLINE = "offline"
MINUTES = 30  # how long a top-up waits for its payment
CURRENCY = "CNY"
_YUAN = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")
_NUMBER = re.compile(r"[0-9A-Z]{4,20}")


def _methods() -> list[str]:
    """The online providers a partner may pay with (a booth's cash is not one)."""
    return [m for m in current_app.extensions.get("payment_providers", {}) if m != OFFLINE]


@bp.context_processor
def _helpers() -> dict:
    return {"pay_words": pay_words, "CURRENCY": CURRENCY, "state_words": _state_words}


def _state_words(state: str) -> str:
    return {"pending_payment": _("waiting for payment"), "paid": _("paid: on your balance"),
            "expired": _("not paid in time"), "cancelled": _("cancelled")}.get(state, state)


def _buyer() -> str:
    return f"partner:{signed_in_partner().partner_id}"


def _recent(conn: sa.Connection) -> list:
    return conn.execute(sa.select(orders).where(orders.c.kind == TOPUP,
                                                orders.c.buyer == _buyer())
                        .order_by(orders.c.id.desc()).limit(20)).all()


def _form(error: str | None = None, status: int = 200, amount: str = ""):
    now = utcnow()
    with engine().connect() as conn:
        recent = [(o, shown_state(o, now)) for o in _recent(conn)]
    return render_template("portal/topup/start.html", methods=_methods(), recent=recent,
                           error=error, amount=amount), status


@bp.get("/top-up")
def start():
    return _form()


def _amount(raw: str) -> int | None:
    if not _YUAN.fullmatch(raw):
        return None
    whole, _sep, cents = raw.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


@bp.post("/top-up")
@limited("ORDER_LIMIT")
def create():
    """A new top-up of the amount typed (yuan), shown with what its provider answered."""
    me = signed_in_partner()
    raw, method = request.form.get("amount", "").strip(), request.form.get("method", "")
    amount = _amount(raw)
    if method not in _methods():
        return _form(_("Payment method: choose from the list."), 400, raw[:14])
    if amount is None:
        return _form(_("Amount: give an amount in yuan, such as 500.00."), 400, raw[:14])
    try:
        with engine().begin() as conn:
            _id, number = open_topup_order(conn, partner_id=me.partner_id,
                                           actor=f"partner_user:{me.id}", total=amount,
                                           currency=CURRENCY, now=utcnow(), minutes=MINUTES)
    except HubError as e:
        return _form(rule_error(e), 400, raw[:14])
    return _pay(number, method)


def _mine(conn: sa.Connection, number: str):
    o = None
    if _NUMBER.fullmatch(number):
        o = conn.execute(sa.select(orders).where(orders.c.number == number,
                                                 orders.c.kind == TOPUP,
                                                 orders.c.buyer == _buyer())).first()
    if o is None:
        abort(404)
    return o


@bp.get("/top-up/<number>")
def show(number: str):
    with engine().connect() as conn:
        o = _mine(conn, number)
    return _page(o)


@bp.post("/top-up/<number>/pay")
def pay(number: str):
    """The top-up's payment with the method chosen, opened again (the same trade while it is
    open): for a partner who closed the page before paying."""
    method = request.form.get("method", "")
    with engine().connect() as conn:
        o = _mine(conn, number)
    if method not in _methods() or shown_state(o) != "pending_payment":
        return redirect(url_for("partner_topup.show", number=number), 303)
    return _pay(number, method)


def _pay(number: str, method: str):
    adapter = current_app.extensions["payment_providers"][method]
    with engine().connect() as conn:
        order_id = _mine(conn, number).id
    started = open_and_ask(engine(), adapter, order_id, notify_url(method))
    with engine().connect() as conn:
        o = _mine(conn, number)
    return _page(o, started=started, method=method, unavailable=started.unavailable)


def _page(o, started=None, method: str | None = None, unavailable: str | None = None):
    qr = qr_svg(started.qr_text, scale=4) if started is not None and started.qr_text else None
    return render_template("portal/topup/order.html", o=o, state=shown_state(o),
                           methods=_methods(), started=started, method=method, qr=qr,
                           unavailable=_("The payment service did not answer. Try again in a "
                                         "moment: the same payment is used.")
                           if unavailable else None)
