"""The contract customers' own site (``/customer/``): a representative signs in, books seats
for a session (chosen, or best available at a tier), books from a holders file, sees the
customer's orders and notices, and gives back an order not yet paid.

It is not the staff pages' shell: it is an outside site (cloud/web/outside.py), as the partner
portal is, with its own sign-in (cloud/channels/customers.py ``check_rep_sign_in``, limited per
client address as the staff's is), its own session cookie, ``wicket_customer``, and its own
CSRF token in the ``wicket_customer_csrf`` cookie, both with path /customer. Every request
reads the representative again (``customers.signed_in_rep``): a disabled one or a suspended
customer is out at once, and signing out ends every session the representative began before
it.

Every read names the signed-in representative's customer: another customer's order is "not
found", exactly as one that does not exist.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from cloud.catalog.tables import zones
from cloud.channels import customer_orders as orders
from cloud.channels import customers
from cloud.channels.customer_pages import (
    BadForm,
    field_words,
    number_field,
    refusal,
    session_choices,
    state_words,
)
from cloud.channels.customers import CustomerError, Rep
from cloud.channels.holder_import import import_booking
from cloud.core.errors import HubError
from cloud.inventory.seat_plan import find_seats
from cloud.sales.booth import seat_labels
from cloud.sales.orders import shown_state
from cloud.web.error_words import ERROR_WORDS
from cloud.web.outside import OutsideSite
from cloud.web.web import engine
from sync.timeutil import utcnow

bp = Blueprint("customer_site", __name__, url_prefix="/customer")
SESSION_COOKIE = "wicket_customer"
CSRF_COOKIE = "wicket_customer_csrf"
LIFETIME = 8 * 3600
ZONE = "Asia/Shanghai"


def row_words(code: str) -> str:
    """A refused row's code in the page's language."""
    words = ERROR_WORDS.get(code)
    return str(words) if words is not None and "%(" not in str(words._args[0]) else code


SITE = OutsideSite(
    name="customer_site", prefix="/customer", session_cookie=SESSION_COOKIE,
    csrf_cookie=CSRF_COOKIE, salt="wicket-customer-site", keys=("r", "c"), owner="customer_id",
    lookup=customers.signed_in_rep, user_attr="rep", g_prefix="rep", templates="customer",
    home="customer_site.orders_page", lifetime=LIFETIME, titles={413: _l("File too large")})
SITE.serve(bp, customers.check_rep_sign_in, customers.sign_out_everywhere,
           {"zone": ZONE, "order_state_words": state_words, "field_words": field_words,
            "row_words": row_words})
csrf_field = SITE.csrf_field


def _me() -> Rep:
    r = g.rep
    return Rep(r.id, r.customer_id, r.customer_code, r.username, r.display_name)


# -- the customer's own ----------------------------------------------------------------------


@bp.get("/orders")
def orders_page():
    me = _me()
    with engine().connect() as conn:
        rows = orders.orders_of(conn, me.customer_id, utcnow())
        notices = customers.notices_for(conn, me.customer_id, limit=3)
    return render_template("customer/orders.html", rows=rows, notices=notices)


def _own_order(conn, number: str):
    try:
        return orders.order_of(conn, _me().customer_id, number)
    except CustomerError:
        abort(404)


@bp.get("/orders/<number>")
def order(number: str):
    return _order_page(number, "customer/order.html")


def _order_page(number: str, template: str, error: str = "", status: int = 200):
    with engine().connect() as conn:
        o = _own_order(conn, number)
        lines = orders.order_lines_of(conn, o.id)
    return render_template(template, o=o, lines=lines, shown=shown_state(o, utcnow()),
                           error=error), status


@bp.get("/orders/<number>/confirm-cancel")
def confirm_cancel(number: str):
    return _order_page(number, "customer/confirm_cancel.html")


@bp.post("/orders/<number>/cancel")
def cancel(number: str):
    try:
        with engine().begin() as conn:
            _own_order(conn, number)
            orders.cancel(conn, _me(), number, utcnow())
    except HubError as e:
        return _order_page(number, "customer/confirm_cancel.html", refusal(e), 409)
    return redirect(url_for("customer_site.order", number=number), 303)


@bp.get("/notices")
def notices():
    with engine().connect() as conn:
        rows = customers.notices_for(conn, _me().customer_id)
    return render_template("customer/notices.html", rows=rows)


# -- booking ---------------------------------------------------------------------------------


def _book_page(template: str, form: dict, error: str = "", status: int = 200, **more):
    with engine().connect() as conn:
        choices = session_choices(conn)
        zone_rows = conn.execute(sa.select(zones.c.id, zones.c.venue_id, zones.c.name)
                                 .order_by(zones.c.venue_id, zones.c.code)).all()
    return render_template(template, sessions=choices, zones=zone_rows, form=form,
                           error=error, **more), status


def _booking(conn, with_seats: bool) -> orders.Booking:
    """The booking the form asks for: a session, and chosen seats by their labels, or a
    number of seats (or general-admission places) of a zone at a tier."""
    session_id = number_field("session_id", 1)
    kind = request.form.get("kind", "seat")
    if kind not in ("seat", "ga"):
        raise BadForm(_("%(field)s: choose from the list.", field=field_words("kind")))
    tier = number_field("price_tier_id", 1, optional=True)
    zone_id = number_field("zone_id", 1, optional=True) or 0
    labels = seat_labels(request.form.get("seats", "")) if with_seats else []
    if labels:
        venue = next((s["venue_id"] for s in session_choices(conn) if s["id"] == session_id),
                     None)
        found, unknown = find_seats(conn, venue, labels) if venue else ({}, labels)
        if unknown:
            raise BadForm(_("No such seats: %(seats)s.", seats=", ".join(unknown[:10])))
        return orders.Booking(session_id, "seat", seat_ids=tuple(found[x] for x in labels))
    count = number_field("count", 1, orders.MAX_SEATS) if with_seats else 0
    return orders.Booking(session_id, kind, zone_id=zone_id, price_tier_id=tier, count=count)


@bp.get("/book")
def book_page():
    return _book_page("customer/book.html", {"kind": "seat", "count": "1"})


@bp.post("/book")
def book():
    form = request.form.to_dict()
    try:
        with engine().begin() as conn:
            created = orders.book(conn, _me(), _booking(conn, True), utcnow())
    except (HubError, BadForm) as e:
        return _book_page("customer/book.html", form, refusal(e), 422)
    return redirect(url_for("customer_site.order", number=created.number), 303)


@bp.get("/import")
def import_page():
    return _book_page("customer/import.html", {"kind": "seat"})


@bp.post("/import")
def import_file():
    form = request.form.to_dict()
    upload = request.files.get("file")
    data = upload.read(2_000_000) if upload is not None else b""
    try:
        with engine().begin() as conn:
            done = import_booking(conn, _me(), _booking(conn, False), data,
                                  upload.filename if upload is not None else "",
                                  request.form.get("good_only") == "yes", utcnow())
    except (HubError, BadForm) as e:
        return _book_page("customer/import.html", form, refusal(e), 422)
    if done.order is None:
        return _book_page("customer/import.html", form, status=422, refused=done.refused,
                          rows=done.rows)
    return redirect(url_for("customer_site.order", number=done.order.number), 303)
