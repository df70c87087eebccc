"""The box office: a point of sale on the one order path.

A clerk picks seats on the zone's seat map (or types their labels), a number of
general-admission tickets and passes (:mod:`cloud.sales.booth` checks and prices the basket),
then types a holder per ticket where the session is real-name and chooses how the buyer pays:
cash or card (the offline provider: the order is created, paid and its tickets issued in one
transaction) or a QR code of an online provider (the order holds its seats until its payment
deadline; the provider's signed notification pays it). Both go through
:func:`cloud.sales.orders.create_order`, :func:`cloud.payments.checkout.start_payment` and
:func:`cloud.payments.capturing.place`, as the order API does.

Holder names and document numbers arrive in POST bodies only and are never written back into
a page: on a refusal the clerk types them again.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from flask import current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from cloud.catalog.tables import zones
from cloud.core.audit import record
from cloud.core.errors import HubError
from cloud.inventory.pages import session_or_404, session_rows
from cloud.inventory.seat_plan import STATUSES, session_zones, zone_plan
from cloud.inventory.seats import KEPT_PREFIXES, InventoryError
from cloud.payments.capturing import place
from cloud.payments.checkout import open_payment, start_payment
from cloud.payments.order_pages import PAY_LABELS, just_sold, pay_page
from cloud.sales import booth
from cloud.sales.order_plan import OrderError
from cloud.sales.orders import capture, create_order, payable
from cloud.sales.selling import OFFLINE
from cloud.web.web import actor, engine, ok, page_blueprint, permission, refused
from cloud.web.words import rule_error
from sync.identity import DOC_TYPES
from sync.timeutil import utcnow

bp = page_blueprint("box_office", "/box-office")
MAX_HOLDER_NAME = 200
MAX_DOC_NUMBER = 40

# What is wrong with a basket (cloud/sales/booth.py), by code, in the page's words.
BASKET_WORDS = {
    "basket_empty": lazy_gettext("Pick at least one seat, general-admission ticket or pass."),
    "basket_too_large": lazy_gettext("At most %(limit)s tickets in one order."),
    "no_such_seats": lazy_gettext("No such seat at this venue: %(seats)s."),
    "tier_required": lazy_gettext("Choose a price."),
    "tier_prices_seats": lazy_gettext("This price is for seats of category %(category)s: "
                                      "choose another."),
    "unknown_zone": lazy_gettext("Choose one of this venue's zones."),
    "bad_count": lazy_gettext("A whole number from 0 to %(limit)s."),
}
# The form's fields by name, as the messages beside them name them.
FIELD_TITLES = {
    "seats": lazy_gettext("Seats"), "seat_tier": lazy_gettext("Price of the seats"),
    "ga": lazy_gettext("General admission"), "ga_tier": lazy_gettext("Price of general admission"),
    "ga_zone": lazy_gettext("Zone of general admission"), "customer": lazy_gettext("Customer"),
    "payment": lazy_gettext("Payment"), "session": lazy_gettext("Session"),
    "basket": lazy_gettext("Order"),
}
PAYMENTS = ("cash", "card", "wechat", "alipay")


def _title(name: str) -> str:
    base, _sep, index = name.rpartition("_")
    if index.isdigit() and base in ("holder_name", "doc_type", "doc_number"):
        words = {"holder_name": _("holder's name"), "doc_type": _("document type"),
                 "doc_number": _("document number")}[base]
        return _("Ticket %(n)s, %(field)s", n=int(index) + 1, field=words)
    if name.startswith("pass_"):
        return _("Passes")
    return str(FIELD_TITLES.get(name, name))


def _named(name: str, message: str) -> str:
    """A field's message naming the field: "Seats: No such seat …"."""
    return _("%(field)s: %(message)s", field=_title(name), message=message)


def _picked(form) -> booth.Picked:
    passes = {int(k[5:]): v for k, v in form.items()
              if k.startswith("pass_") and k[5:].isdigit() and len(k) < 16}
    return booth.Picked(
        seats=_printable(form.get("seats", "")[:4000]), seat_tier=form.get("seat_tier", ""),
        ga=form.get("ga", ""), ga_tier=form.get("ga_tier", ""),
        ga_zone=form.get("ga_zone", ""), passes=passes, customer=_customer(form))


def _printable(text: str) -> str:
    """Typed text with any control character read as a separator (never sent to a query)."""
    return "".join(c if c.isprintable() else "\n" for c in text)


def _customer(form) -> str:
    """The customer whose reserved seats the clerk may sell; never a name in the form of the
    hub's own reservations (a contract customer's are sold through its representatives)."""
    customer = form.get("customer", "").strip()
    if not customer.isprintable() or len(customer) > 200 \
            or customer.lower().startswith(KEPT_PREFIXES):
        return ""
    return customer


def _basket_errors(basket: booth.Basket) -> dict[str, str]:
    return {where: _named(where, str(BASKET_WORDS[code]) % params if code in BASKET_WORDS
                          else rule_error(InventoryError(code, **params)))
            for where, (code, params) in basket.problems.items()}


def _basket_status(basket: booth.Basket) -> int:
    """409 when a seat picked is no longer free (the clerk repicks), else 422."""
    taken = {"seat_taken", "seat_not_for_sale"}
    return 409 if any(code in taken for code, _p in basket.problems.values()) else 422


def _offered_payments() -> list[str]:
    providers = current_app.extensions["payment_providers"]
    return [p for p in PAYMENTS if (OFFLINE if p in ("cash", "card") else p) in providers]


@bp.get("")
@permission("tickets.sell")
def index():
    with engine().connect() as conn:
        rows = session_rows(conn, on_sale_only=True)
    return render_template("sales/box_office.html", sessions=rows)


def _pos_page(session_id: int, form: dict, errors: dict, status: int = 200):
    """The point of sale: the zone's seat map and the basket form."""
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
        zone_rows = session_zones(conn, session_id)
        wanted = request.args.get("zone", form.get("zone", ""))
        zone = next((z for z in zone_rows if str(z.id) == wanted), None) or (
            zone_rows[0] if zone_rows else None)
        plan = zone_plan(conn, session_id, zone.id) if zone is not None else None
        tiers = booth.tiers_of(conn, session_id)
        products = booth.session_products(conn, session_id)
        all_zones = conn.execute(sa.select(zones.c.id, zones.c.code, zones.c.name).where(
            zones.c.venue_id == s.venue_id).order_by(zones.c.code)).all()
    return render_template("sales/point_of_sale.html", s=s, zones=zone_rows, zone=zone,
                           plan=plan, statuses=STATUSES, tiers=tiers, products=products,
                           venue_zones=all_zones, form=form, errors=errors), status


@bp.get("/<int:session_id>")
@permission("tickets.sell")
def point_of_sale(session_id: int):
    return _pos_page(session_id, {}, {})


def _checkout_page(session_id: int, basket: booth.Basket, form: dict, errors: dict,
                   status: int = 200):
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
    keep = {k: v for k, v in form.items()
            if not k.startswith(("holder_name_", "doc_number_", "csrf"))}
    return render_template("sales/checkout.html", s=s, basket=basket, form=keep,
                           errors=errors, payments=_offered_payments(), pay_labels=PAY_LABELS,
                           passes={k: v for k, v in keep.items() if k.startswith("pass_")},
                           doc_types=DOC_TYPES), status


def _basket(session_id: int, form) -> tuple[booth.Basket, dict]:
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
        if not s.on_sale:
            b = booth.Basket()
            b.refuse("session", "basket_empty")
            return b, {"session": _("This session is not on sale.")}
        basket = booth.make_basket(conn, s, _picked(form), utcnow())
    return basket, _basket_errors(basket)


@bp.post("/<int:session_id>/basket")
@permission("tickets.sell")
def basket(session_id: int):
    """Check what was picked and ask for the holders and the payment."""
    form = request.form.to_dict()
    picked, errors = _basket(session_id, form)
    if errors:
        refused(_("Nothing was sold: see the marked fields."))
        return _pos_page(session_id, form, errors, _basket_status(picked))
    return _checkout_page(session_id, picked, form, {})


def _holders(form, basket: booth.Basket, real_name: bool, errors: dict) -> list:
    found = []
    for i, _line in enumerate(basket.lines):
        name = form.get(f"holder_name_{i}", "").strip()
        doc_type = form.get(f"doc_type_{i}", "").strip()
        number = form.get(f"doc_number_{i}", "").strip()
        if not (name or number):
            if real_name:
                errors[f"holder_name_{i}"] = _named(
                    f"holder_name_{i}", _("This session is real-name: give the holder's "
                                          "name as on the document."))
            found.append(None)
            continue
        if not name:
            errors[f"holder_name_{i}"] = _named(f"holder_name_{i}",
                                                _("The holder's name as on the document."))
        elif len(name) > MAX_HOLDER_NAME or not name.isprintable():
            errors[f"holder_name_{i}"] = _named(
                f"holder_name_{i}", _("A name of up to 200 printable characters."))
        if doc_type not in DOC_TYPES:
            errors[f"doc_type_{i}"] = _named(f"doc_type_{i}", _("Choose the document type."))
        if not number:
            errors[f"doc_number_{i}"] = _named(f"doc_number_{i}", _("The document number."))
        elif len(number) > MAX_DOC_NUMBER:
            errors[f"doc_number_{i}"] = _named(f"doc_number_{i}",
                                               _("At most 40 characters."))
        found.append((name, doc_type, number))
    return found


@bp.post("/<int:session_id>/order")
@permission("tickets.sell")
def order(session_id: int):
    """Create the order on the one order path and take its payment: at once (cash or card),
    or by the QR code of an online provider."""
    form = request.form.to_dict()
    basket, errors = _basket(session_id, form)
    if errors:
        refused(_("Nothing was sold: see the marked fields."))
        return _pos_page(session_id, form, errors, _basket_status(basket))
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
    people = _holders(form, basket, bool(s.real_name), errors)
    typed = form.get("customer", "").strip()
    if typed and not (typed.isprintable() and len(typed) <= 200):
        errors["customer"] = _named("customer", _("A name of up to 200 printable characters."))
    method = form.get("payment", "")
    if method not in _offered_payments():
        errors["payment"] = _named("payment", _("Choose how the buyer pays."))
    if errors:
        refused(_("Nothing was sold: see the marked fields."))
        return _checkout_page(session_id, basket, form, errors, 422)
    # sold under the name of the clerk's booth, against its quotas (cloud/channels/pages.py
    # names it before the request, and refuses while the booth is off or closed)
    request_ = dataclasses.replace(
        booth.order_request(session_id, basket, people, actor=actor(),
                            customer=_customer(form)),
        channel_id=g.get("sale_channel_id"), quota_scopes=g.get("sale_quota_scopes", ()))
    try:
        with engine().begin() as conn:
            made = create_order(conn, request_)
            number, paid = made.number, _take_payment(conn, made, method)
    except HubError as e:
        where = booth.form_field(e.params.get("field"), basket)
        refused(_("Nothing was sold: %(why)s", why=rule_error(e)))
        return _checkout_page(session_id, basket, form, {where: _named(where, rule_error(e))},
                              409 if e.status == 409 else 422)
    just_sold(number)  # its codes are shown once, to this clerk
    if paid is None:
        return pay_page(number, method)
    ok(_("Order %(number)s is paid; tickets issued: %(n)s.", number=number, n=paid))
    return redirect(url_for("orders.receipt", number=number), 303)


def _take_payment(conn: sa.Connection, made, method: str) -> int | None:
    """Cash or card: the payment taken and the tickets issued now (their number); an online
    provider: the payment opened (None), its QR code asked for by the payment page."""
    if method not in ("cash", "card"):
        due = payable(conn, made.order_id)
        opened = open_payment(conn, method, made.order_id, due.amount, currency=due.currency)
        record(conn, actor(), "boxoffice.payment", f"order:{made.order_id}", None,
               {"number": made.number, "method": method, "amount": made.total,
                "payment": opened.out_trade_no, "state": opened.state})
        return None  # the payment page asks the provider, with no transaction open
    if made.total == 0:  # nothing to collect: the order is paid at the counter as it stands
        captured = capture(conn, made.order_id, 0, OFFLINE, f"box-office:{made.number}")
    else:
        due = payable(conn, made.order_id)
        started = start_payment(conn, current_app.extensions["payment_providers"][OFFLINE],
                                made.order_id, due.amount, due.description, due.expires_at,
                                currency=due.currency)
        captured = place(conn, started.outcome)
    if captured.state != "paid":
        raise OrderError("order_not_pending", order_id=made.number, state=captured.state,
                         field="basket")
    record(conn, actor(), "boxoffice.payment", f"order:{made.order_id}", None,
           {"number": made.number, "method": method, "amount": made.total,
            "tickets": len(captured.tickets)})
    return len(captured.tickets)
