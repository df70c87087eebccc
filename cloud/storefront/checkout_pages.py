"""The buyer's purchase pages: checkout (who each picked seat is for, how to pay), the order
page (the hold's countdown, the payment, then the tickets with their codes) and the state the
order page polls until the provider's callback has landed.

Checkout is reached from the seat map (``?seat=<id>`` per seat picked) or from a zone's
best-available form (``?zone=&tier=&quantity=``); placing the order is the order rules'
(:func:`cloud.storefront.checkout.place_order`), limited per client address
(``ORDER_LIMIT``) and per buyer (:data:`BUYER_ORDERS` an hour). Paying opens the order's payment
with the chosen provider (the same trade again on a retry) and shows what the provider
answered: its QR code, and its page to open on a phone. Every page here is the buyer's own:
never cached, and another buyer's order is not found.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from cloud.core import rate_limits
from cloud.core.errors import HubError
from cloud.payments.api import notify_url
from cloud.payments.checkout import open_and_ask
from cloud.payments.order_pages import pay_words
from cloud.storefront import browse, checkout
from cloud.storefront import browser_pages as buyer_session
from cloud.storefront.pages import bp
from cloud.storefront.queue_pages import needs_queue
from cloud.web.limits import limited
from cloud.web.web import engine, qr_svg
from cloud.web.words import rule_error
from sync.timeutil import utcnow
from sync.websafe import whole_number

BUYER_ORDERS = 20  # orders one buyer may place an hour
OFFLINE = "offline"


def _methods() -> list[str]:
    """The online providers a buyer may pay with."""
    return [m for m in current_app.extensions.get("payment_providers", {}) if m != OFFLINE]


def _picks(conn, session_id: int, args) -> list[checkout.Pick]:
    if args.getlist("seat"):
        ids = [whole_number(s, 1, 2**31 - 1) for s in args.getlist("seat")]
        if None in ids:
            raise checkout.CheckoutError("bad_pick", limit=checkout.MAX_TICKETS, field="seat")
        return checkout.chosen_seats(conn, session_id, ids)
    zone = whole_number(args.get("zone", ""), 1, 2**31 - 1)
    tier = whole_number(args.get("tier", ""), 1, 2**31 - 1)
    quantity = whole_number(args.get("quantity", ""), 1, checkout.MAX_TICKETS)
    if zone is None or tier is None or quantity is None:
        raise checkout.CheckoutError("bad_pick", limit=checkout.MAX_TICKETS, field="quantity")
    return checkout.best_available(zone, tier, quantity)


def _checkout_page(session_id: int, me, form: dict[str, Any], error: str | None = None,
                   status: int = 200):
    with engine().connect() as conn:
        card = browse.session_card(conn, session_id)
        if card is None:
            abort(404)
        tiers = {t.id: t for t in browse.tiers(conn, card)}
        try:
            picks = _picks(conn, session_id, request.values)
        except HubError as e:
            picks, error, status = [], rule_error(e), e.status
        people = checkout.people(conn, me.buyer_id)
        seat_words = checkout.seat_words(conn, [p.seat_id for p in picks if p.seat_id])
    return render_template("storefront/checkout.html", card=card, picks=picks, tiers=tiers,
                           people=people, seat_words=seat_words, methods=_methods(),
                           pay_words=pay_words, form=form, error=error), status


def _to_queue(session_id: int):
    """While the session sells through its waiting room, a browser without a good pass goes
    there first."""
    if needs_queue(session_id):
        return redirect(url_for("shop.queue", session_id=session_id), 303)
    return None


@bp.get("/<lang>/sessions/<int:session_id>/checkout")
def checkout_page(session_id: int):
    me, away = buyer_session.need_buyer()
    away = away or _to_queue(session_id)
    if away is not None:
        return away
    return _checkout_page(session_id, me, {})


def _count_order(me) -> None:
    with engine().begin() as conn:
        if rate_limits.hit(conn, f"shop_order:buyer:{me.buyer_id}", timedelta(hours=1),
                           utcnow()) > BUYER_ORDERS:
            raise checkout.CheckoutError("too_many_orders", limit=BUYER_ORDERS)


@bp.post("/<lang>/sessions/<int:session_id>/checkout")
@limited("ORDER_LIMIT")
def place(session_id: int):
    me, away = buyer_session.need_buyer()
    away = away or _to_queue(session_id)
    if away is not None:
        return away
    form = request.form.to_dict()
    try:
        _count_order(me)
        with engine().begin() as conn:
            if browse.session_card(conn, session_id) is None:
                abort(404)
            picks = _picks(conn, session_id, request.form)
            keys = [request.form.get(f"holder_{i}", "") for i in range(len(picks))]
            made = checkout.place_order(conn, me.buyer_id, session_id, picks, keys)
    except HubError as e:
        return _checkout_page(session_id, me, form, rule_error(e), e.status)
    return redirect(url_for("shop.order", number=made.number), 303)


def _order_view(me, number: str) -> dict[str, Any]:
    try:
        with engine().connect() as conn:
            return checkout.buyer_order(conn, me.buyer_id, number)
    except HubError:
        abort(404)


@bp.get("/<lang>/orders/<number>")
def order(number: str):
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    view = _order_view(me, number)
    with engine().connect() as conn:
        asked = checkout.refund_requests_of(conn, view["id"])
    return render_template("storefront/order.html", o=view, methods=_methods(),
                           pay_words=pay_words, qr_svg=qr_svg, started=None, qr=None,
                           refunds=asked, refund_asked=request.args.get("refund") == "asked")


@bp.get("/<lang>/orders/<number>/state")
def order_state(number: str):
    me, away = buyer_session.need_buyer()
    if away is not None:
        return jsonify(error="signed_out"), 401
    view = _order_view(me, number)
    return jsonify(state=view["state"], tickets=len(view["tickets"]))


@bp.post("/<lang>/orders/<number>/pay")
def pay(number: str):
    """Open the order's payment with the chosen provider and show what it answered."""
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    method = request.form.get("method", "")
    adapter = current_app.extensions.get("payment_providers", {}).get(method)
    view = _order_view(me, number)
    if adapter is None or method == OFFLINE or view["state"] != "pending_payment":
        return redirect(url_for("shop.order", number=number), 303)
    started = open_and_ask(engine(), adapter, view["id"], notify_url(method))
    return render_template("storefront/order.html", o=view, methods=_methods(),
                           pay_words=pay_words, qr_svg=qr_svg, started=started, method=method,
                           qr=qr_svg(started.qr_text, scale=4) if started.qr_text else None,
                           unavailable=_("The payment service did not answer. Try again in a "
                                         "moment: the same payment is used.")
                           if started.unavailable else None)
