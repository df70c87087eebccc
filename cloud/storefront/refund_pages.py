"""A buyer asks for a refund on the public site: from the order page, choose the tickets,
see the policy and the amount (the price less the policy's fee) before anything is asked,
then ask — a refund request, decided by staff (:mod:`cloud.sales.refunds`: the buyer is the
maker, a supervisor the checker; the money goes back through the order's payment). What the
rules refuse (the window closed, a risk flag, a ticket already in a request) is said in
words and nothing is asked.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.sales import refunds
from cloud.storefront import browser_pages as buyer_session
from cloud.storefront import checkout
from cloud.storefront.pages import bp
from cloud.web.web import engine
from cloud.web.words import rule_error


def _order(conn: sa.Connection, buyer_id: int, number: str) -> dict[str, Any]:
    try:
        return checkout.buyer_order(conn, buyer_id, number)
    except HubError:
        abort(404)


def _page(number: str, status: int = 200, error: str | None = None):
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    chosen = request.values.getlist("ticket")
    quoted = None
    with engine().connect() as conn:
        o = _order(conn, me.buyer_id, number)
        live = refunds.refundable_tickets(conn, o["id"]) if o["state"] in (
            "paid", "partially_refunded") else []
        if chosen and error is None:
            try:
                row = refunds.order_by_number(conn, number)
                quoted = refunds.quote(conn, o["id"], refunds.ticket_ids(conn, row, chosen))
            except HubError as e:
                error, status = rule_error(e), e.status
    return render_template("storefront/refund.html", o=o, live=live, chosen=chosen,
                           quoted=quoted, error=error), status


@bp.get("/<lang>/orders/<number>/refund")
def refund_page(number: str):
    return _page(number)


@bp.post("/<lang>/orders/<number>/refund")
def ask_refund(number: str):
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    chosen = request.form.getlist("ticket")
    try:
        with engine().begin() as conn:
            o = _order(conn, me.buyer_id, number)
            row = refunds.order_by_number(conn, number)
            refunds.request_refund(conn, o["id"], refunds.ticket_ids(conn, row, chosen),
                                   f"buyer:{me.buyer_id}",
                                   reason=request.form.get("reason", ""))
    except HubError as e:
        return _page(number, e.status, rule_error(e))
    return redirect(url_for("shop.order", number=number, refund="asked"), 303)


@bp.app_template_global()
def shop_refund_state_words(state: str) -> str:
    return {"pending": _("Asked for: customer service decides"),
            "approved": _("Approved: the money is on its way back"),
            "rejected": _("Refused by customer service"),
            "succeeded": _("Refunded: the money is back"),
            "failed": _("Approved: sending the money back failed, customer service retries")
            }.get(state, state)
