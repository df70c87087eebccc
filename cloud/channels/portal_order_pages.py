"""The partner portal's orders (``/partner/orders``, with the portal's own sign-in, session
and CSRF token: cloud/ledger/portal_pages.py ``share_session``): a distributor or agent orders
the products its sales codes bind to it at its agreed price, pays a held order from its
account or gives it up, sees its orders with their tickets' codes (as QR codes) and gives
chosen tickets back.

The rules are cloud/channels/ordering.py's; these pages only translate. Orders placed here go
through the partner's own channel: its first distributor's or agent's channel, or one made on
its first order here (``<partner code>-portal``) in that order's transaction, so a refused
order leaves no channel behind either. Paying, giving up and giving back each ask first.
Every read names the signed-in user's partner: another partner's order is "not found",
exactly as one that does not exist. Other partners (organisers, venues, suppliers) order
nothing here and are told so.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from cloud.channels import accounts, ordering
from cloud.channels.api_keys import partner_channels
from cloud.channels.channels import ChannelSetupError, channel_by_code, create_channel
from cloud.channels.partner_terms import SELLERS
from cloud.core.errors import HubError
from cloud.ledger.partners import partner as partner_row
from cloud.ledger.portal_pages import share_session, signed_in_partner
from cloud.web.error_words import ERROR_WORDS
from cloud.web.query import query_int
from cloud.web.web import engine, money, qr_svg
from cloud.web.words import rule_error
from sync.timeutil import CHINA, utcnow
from sync.websafe import whole_number

bp = share_session(Blueprint("partner_orders", __name__, url_prefix="/partner/orders"))

PAGE = 50  # orders a page
DAYS_SHOWN = 7  # days of availability on the order form
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMBER = re.compile(r"[A-Za-z0-9-]{1,40}")
ACTIONS = ("pay", "cancel", "refund")
_AMOUNTS = ("available", "wanted", "amount")  # refusals' parameters in fen


def _actor() -> str:
    return f"partner_user:{signed_in_partner().id}"


@bp.context_processor
def _words() -> dict:
    return {"order_state_words": order_state_words, "ticket_state_words": ticket_state_words,
            "qr_svg": qr_svg, "moment": _moment}


def _moment(iso: str | None) -> datetime | None:
    """A time ``ordering`` gives as ISO 8601, for the ``localtime`` filter."""
    return datetime.fromisoformat(iso) if iso else None


def order_state_words(state: str) -> str:
    return {"pending_payment": _("held, waiting for payment"), "paid": _("paid"),
            "partially_refunded": _("partly refunded"), "refunded": _("refunded"),
            "expired": _("expired"), "cancelled": _("cancelled")}.get(state, state)


def ticket_state_words(state: str) -> str:
    return {"issued": _("valid"), "void": _("void"), "refunded": _("given back")
            }.get(state, state)


def _field_words(field: str) -> str:
    name = field.rsplit(".", 1)[-1]
    return {"product_id": _("Product"), "day": _("Day"), "quantity": _("Quantity"),
            "lines": _("Product"), "number": _("Order"), "ticket_numbers": _("Tickets"),
            "channel": _("Channel"), "channel_id": _("Channel")}.get(name, field)


def refusal(e: HubError, currency: str = "CNY") -> str:
    """A rule's refusal in the page's language: its amounts in yuan (the rule says fen), an
    order's state and the field it names in words."""
    words = ERROR_WORDS.get(e.code)
    params = {k: money(v, currency) if k in _AMOUNTS and isinstance(v, int) else
              ", ".join(map(str, v)) if isinstance(v, list | tuple) else v
              for k, v in e.params.items()}
    if "field" in params:
        params["field"] = _field_words(str(params["field"]))
    if "state" in params:
        params["state"] = order_state_words(str(params["state"]))
    try:
        return str(words) % params if words is not None else rule_error(e)
    except (KeyError, TypeError, ValueError):
        return rule_error(e)


def _seller(conn) -> str | None:
    """The signed-in partner's kind if it orders here (a distributor or agent), else None."""
    kind = partner_row(conn, signed_in_partner().partner_id).kind
    return kind if kind in SELLERS else None


def _nothing_to_order():
    return render_template("portal/orders/none.html"), 403


# -- the orders -----------------------------------------------------------------------------


@bp.get("")
def orders():
    """The partner's orders, newest first, :data:`PAGE` at a time (``?before=`` an order)."""
    before = query_int("before")
    with engine().connect() as conn:
        if _seller(conn) is None:
            return _nothing_to_order()
        rows = ordering.list_orders(conn, signed_in_partner().partner_id, PAGE, before)
    return render_template("portal/orders/list.html", rows=rows, before=before,
                           more=len(rows) == PAGE)


def _view(conn, number: str) -> dict:
    """The signed-in partner's order as it sees it; 404 for another's or none."""
    if not _NUMBER.fullmatch(number):
        abort(404)
    try:
        return ordering.order_view(conn, signed_in_partner().partner_id, number, utcnow())
    except HubError as e:
        if e.code == "unknown_partner_order":
            abort(404)
        raise


def _product_names(conn) -> dict[int, str]:
    return {p["id"]: f"{p['code']} · {p['name']}"
            for p in ordering.partner_products(conn, signed_in_partner().partner_id, utcnow())}


def _order_page(number: str, error: str | None = None, status: int = 200):
    with engine().connect() as conn:
        if _seller(conn) is None:
            return _nothing_to_order()
        o = _view(conn, number)
        names = _product_names(conn)
    done = request.args.get("done") if request.method == "GET" else None
    return render_template("portal/orders/order.html", o=o, names=names, error=error,
                           done=done if done in ACTIONS else None), status


@bp.get("/<number>")
def order(number: str):
    return _order_page(number)


@bp.post("/<number>/<any(pay, cancel, refund):action>")
def act(number: str, action: str):
    """Pay a held order from the account, give it up, or give chosen tickets back: the first
    POST shows what will happen, and only the one from that page (``confirmed=yes``) does it."""
    with engine().connect() as conn:
        if _seller(conn) is None:
            return _nothing_to_order()
        o = _view(conn, number)
    chosen = request.form.getlist("tickets")[:1000] if action == "refund" else []
    if action == "refund":
        valid = {line["ticket"]["number"] for line in o["lines"]
                 if line["ticket"] and line["ticket"]["state"] == "issued"}
        if not chosen or not set(chosen) <= valid or len(set(chosen)) != len(chosen):
            return _order_page(number, _("Choose the valid tickets to give back."), 422)
    if request.form.get("confirmed") != "yes":
        return render_template("portal/orders/confirm.html", o=o, action=action,
                               chosen=chosen, amount=sum(
                                   line["amount"] for line in o["lines"]
                                   if line["ticket"] and line["ticket"]["number"] in chosen))
    me, now = signed_in_partner(), utcnow()
    try:
        with engine().begin() as conn:
            if action == "pay":
                ordering.confirm_order(conn, me.partner_id, number, _actor(), now)
            elif action == "cancel":
                ordering.cancel_order(conn, me.partner_id, number, _actor(), now)
            else:
                ordering.refund_tickets(conn, me.partner_id, number, chosen, _actor(), now)
    except HubError as e:
        return _order_page(number, refusal(e), e.status)
    return redirect(url_for("partner_orders.order", number=number, done=action), 303)


# -- a new order ----------------------------------------------------------------------------


def _days() -> list[date]:
    today = utcnow().astimezone(CHINA).date()
    return [today + timedelta(days=i) for i in range(DAYS_SHOWN)]


def _form_page(form: dict, error: str | None = None, status: int = 200):
    me, now = signed_in_partner(), utcnow()
    with engine().connect() as conn:
        if _seller(conn) is None:
            return _nothing_to_order()
        products = ordering.partner_products(conn, me.partner_id, now)
        days = _days()
        stock = {p["id"]: ordering.availability(conn, me.partner_id, p["id"], days, now)
                 for p in products if p["kind"] == "day"}
        b = accounts.balances(conn, me.partner_id)
    return render_template("portal/orders/new.html", products=products, days=days,
                           stock=stock, b=b, form=form, error=error,
                           max_quantity=ordering.MAX_QUANTITY), status


@bp.get("/new")
def new():
    return _form_page({"day": _days()[0].isoformat(), "quantity": "1"})


def _line(form: dict) -> ordering.PartnerLine | str:
    """The form's line, or what is wrong with it in words."""
    product_id = whole_number(form["product_id"], 1, 2**31 - 1)
    if product_id is None:
        return _("Choose a product.")
    quantity = whole_number(form["quantity"], 1, ordering.MAX_QUANTITY)
    if quantity is None:
        return _("Quantity: a whole number from 1 to %(n)s.", n=ordering.MAX_QUANTITY)
    day = None
    if form["day"]:
        try:
            day = date.fromisoformat(form["day"]) if _DAY.fullmatch(form["day"]) else None
        except ValueError:
            day = None
        if day is None:
            return _("Day: a date as YYYY-MM-DD.")
    return ordering.PartnerLine(product_id=product_id, day=day, quantity=quantity)


def _channel_for(conn, kind: str, actor: str, now) -> int:
    """The partner's channel to order through: its first distributor's or agent's channel,
    or ``<partner code>-portal`` made now (found if a racing first order just made it)."""
    me = signed_in_partner()
    mine = [c for c in partner_channels(conn, me.partner_id) if c.kind in SELLERS]
    if mine:
        return mine[0].id
    code = f"{me.partner_code}-portal"
    try:
        return create_channel(conn, code, f"{me.partner_name[:180]} (portal)", kind,
                              partner_id=me.partner_id, actor=actor, now=now)
    except ChannelSetupError as e:
        row = channel_by_code(conn, code)
        if e.code != "channel_code_taken" or row is None or row.partner_id != me.partner_id:
            raise
        return row.id


@bp.post("/new")
def place():
    form = {"product_id": request.form.get("product_id", "").strip()[:12],
            "day": request.form.get("day", "").strip()[:10],
            "quantity": request.form.get("quantity", "").strip()[:4],
            "confirm": request.form.get("confirm") == "yes"}
    line = _line(form)
    if isinstance(line, str):
        return _form_page(form, line, 422)
    me, now = signed_in_partner(), utcnow()
    try:
        with engine().begin() as conn:
            kind = _seller(conn)
            if kind is None:
                return _nothing_to_order()
            made = ordering.place_order(
                conn, partner_id=me.partner_id, channel_id=_channel_for(conn, kind, _actor(), now),
                lines=[line], confirm=form["confirm"], actor=_actor(), now=now)
    except HubError as e:
        return _form_page(form, refusal(e), e.status)
    return redirect(url_for("partner_orders.order", number=made["number"]), 303)
