"""The contract customers' staff pages (``/channels/customers``), under ``channels.manage``:
the customers with their two quota tracks and notices to all; a customer with its contact
(masked), representatives, own quotas, seats kept for it, orders, notices, holder imports
and report; an order of it, and the confirmation of its offline payment (which locks it).

The rules and their audit are cloud/channels/customers.py's and customer_orders.py's; these
views read forms and show refusals in the page's language.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, abort, render_template, request
from flask_babel import gettext as _

from cloud.catalog.tables import price_tiers, sessions
from cloud.channels import customer_orders as orders
from cloud.channels import customers
from cloud.channels.customers import CustomerError
from cloud.channels.holder_import import imports_of
from cloud.core.errors import HubError
from cloud.inventory.seat_plan import find_seats
from cloud.sales.booth import seat_labels
from cloud.sales.orders import shown_state
from cloud.web.web import actor, back, ok, page_blueprint, parse_local, permission, refused
from cloud.web.web import engine as db
from cloud.web.words import rule_error
from sync.identity import mask_name
from sync.timeutil import utcnow
from sync.websafe import whole_number

bp = page_blueprint("customers", url_prefix="/channels/customers")
MANAGE = "channels.manage"
ZONE = "Asia/Shanghai"
MAX_ID = 2**31 - 1


class BadForm(ValueError):
    """A form field the page cannot read; its words name the field."""


def field_words(field: str) -> str:
    """A form field's label, for a refusal naming it (a rule's ``field``)."""
    return {"code": _("Code"), "name": _("Name"), "contact": _("Contact"),
            "contact_name": _("Contact name"), "contact_phone": _("Contact phone"),
            "state": _("State"), "username": _("User name"), "display_name": _("Display name"),
            "password": _("Password"), "capacity": _("Seats"), "session_id": _("Session"),
            "price_tier_id": _("Price tier"), "title": _("Title"), "body": _("Text"),
            "reference": _("Bank reference"), "seats": _("Seats"), "until": _("Kept until"),
            "number": _("Order"), "rep_id": _("Representative"), "file": _("File"),
            "count": _("Number of seats"), "zone_id": _("Zone"), "kind": _("Kind"),
            "seat_ids": _("Seats"), "holders": _("Holders"), "lines": _("Seats"),
            "customer_id": _("Customer"), "channel": _("Channel"),
            "doc_type": _("Document type"), "doc_number": _("Document number"), "row": _("Row"),
            }.get(field, field)


def refusal(e: Exception) -> str:
    """A refusal in the page's words, the field it names by its label."""
    if isinstance(e, HubError) and e.code in ("bad_customer_request", "bad_channel"):
        return _("%(field)s is missing or not valid.",
                 field=field_words(str(e.params.get("field"))))
    if isinstance(e, HubError) and "field" in e.params:
        return rule_error(e, field=field_words(str(e.params["field"])))
    return rule_error(e)


def state_words(state: str) -> str:
    """A customer's, representative's or order's state."""
    return {"active": _("active"), "suspended": _("suspended"), "disabled": _("disabled"),
            "pending_payment": _("waiting for payment"), "paid": _("paid, locked"),
            "expired": _("expired"), "cancelled": _("cancelled"),
            "partially_refunded": _("partly refunded"), "refunded": _("refunded")
            }.get(state, state)


def text_field(name: str, limit: int, *, optional: bool = False) -> str | None:
    value = request.form.get(name, "").strip()
    if not value and optional:
        return None
    if not value or len(value) > limit or not value.isprintable():
        raise BadForm(_("%(field)s: give at most %(n)s printable characters.",
                        field=field_words(name), n=limit))
    return value


def number_field(name: str, lo: int = 0, hi: int = MAX_ID, *,
                 optional: bool = False) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw and optional:
        return None
    value = whole_number(raw, lo, hi)
    if value is None:
        raise BadForm(_("%(field)s: give a whole number from %(lo)s to %(hi)s.",
                        field=field_words(name), lo=lo, hi=hi))
    return value


def session_choices(conn: sa.Connection) -> list[dict]:
    """Sessions on sale, each with its price tiers, for the forms' lists."""
    tiers: dict[int, list] = {}
    for t in conn.execute(sa.select(price_tiers.c.id, price_tiers.c.session_id,
                                    price_tiers.c.name, price_tiers.c.amount,
                                    price_tiers.c.currency).order_by(price_tiers.c.id)):
        tiers.setdefault(t.session_id, []).append(t)
    rows = conn.execute(sa.select(sessions.c.id, sessions.c.name, sessions.c.starts_at,
                                  sessions.c.venue_id)
                        .where(sessions.c.on_sale.is_(True), sessions.c.state != "cancelled")
                        .order_by(sessions.c.starts_at, sessions.c.id)).all()
    return [{"id": s.id, "name": s.name, "starts_at": s.starts_at, "venue_id": s.venue_id,
             "tiers": tiers.get(s.id, [])} for s in rows]


@bp.context_processor
def _words() -> dict:
    return {"MANAGE": MANAGE, "zone": ZONE, "customer_state_words": state_words}


def _customer_or_404(conn, customer_id: int):
    try:
        return customers.customer(conn, customer_id)
    except CustomerError:
        abort(404)


# -- the customers ---------------------------------------------------------------------------


def _index_page(form: dict, error: str = "", status: int = 200):
    with db().connect() as conn:
        rows = customers.list_customers(conn)
        totals = customers.total_quotas(conn)
        notices = [n for n in customers.all_notices(conn) if n.customer_id is None]
        choices = session_choices(conn)
    return render_template("channels/customers/list.html", rows=rows, totals=totals,
                           notices=notices, sessions=choices, form=form, error=error), status


@bp.get("")
@permission(MANAGE)
def customer_list():
    return _index_page({})


@bp.post("")
@permission(MANAGE)
def create_customer():
    form = request.form.to_dict()
    try:
        code = text_field("code", 20)
        contact = (text_field("contact_name", 200), text_field("contact_phone", 20))
        with db().begin() as conn:
            customer_id = customers.create_customer(conn, code, text_field("name", 200),
                                                    contact, actor(), utcnow())
    except (HubError, BadForm) as e:
        return _index_page(form, refusal(e), 422)
    ok(_("Contract customer %(code)s is set up, with its channel.", code=code))
    return back("customers.customer", customer_id=customer_id)


@bp.post("/total-quota")
@permission(MANAGE)
def total_quota():
    try:
        session_id, tier_id = number_field("session_id", 1), number_field("price_tier_id", 1)
        with db().begin() as conn:
            customers.set_total_quota(conn, session_id, tier_id,
                                      number_field("capacity", 0, 10**6), actor(), utcnow())
    except (HubError, BadForm) as e:
        refused(refusal(e))
    else:
        ok(_("The contract customers' total is set."))
    return back("customers.customer_list")


@bp.post("/notices")
@permission(MANAGE)
def notice_to_all():
    return _post_notice(None)


def _post_notice(customer_id: int | None):
    try:
        with db().begin() as conn:
            customers.post_notice(conn, customer_id, text_field("title", 200),
                                  request.form.get("body", ""), actor(), utcnow())
    except (HubError, BadForm) as e:
        refused(refusal(e))
    else:
        ok(_("The notice is published to the representatives."))
    if customer_id is None:
        return back("customers.customer_list")
    return back("customers.customer", customer_id=customer_id)


# -- one customer ----------------------------------------------------------------------------


@bp.get("/<int:customer_id>")
@permission(MANAGE)
def customer(customer_id: int):
    return _customer_page(customer_id)


def _customer_page(customer_id: int, *, error: str = "", status: int = 200):
    now = utcnow()
    with db().connect() as conn:
        c = _customer_or_404(conn, customer_id)
        contact = customers.contact_of(conn, c)
        page = {"c": c, "reps": customers.reps(conn, customer_id),
                "quotas": customers.customer_quotas(conn, customer_id),
                "orders": orders.orders_of(conn, customer_id, now),
                "notices": customers.notices_for(conn, customer_id),
                "imports": imports_of(conn, customer_id),
                "report": orders.report(conn, customer_id, now),
                "sessions": session_choices(conn)}
    page["contact"] = (mask_name(contact[0]), _mask_phone(contact[1])) if contact else None
    return render_template("channels/customers/detail.html", error=error, **page), status


def _mask_phone(phone: str) -> str:
    digits = phone.replace(" ", "").replace("-", "")
    return digits[:3] + "*" * max(len(digits) - 7, 0) + digits[-4:] if len(digits) > 7 \
        else "*" * len(digits)


@bp.post("/<int:customer_id>")
@permission(MANAGE)
def edit_customer(customer_id: int):
    try:
        name = text_field("name", 200)
        contact = None
        if request.form.get("contact_name", "").strip() or \
                request.form.get("contact_phone", "").strip():
            contact = (text_field("contact_name", 200), text_field("contact_phone", 20))
        with db().begin() as conn:
            _customer_or_404(conn, customer_id)
            customers.edit_customer(conn, customer_id, actor=actor(), now=utcnow(),
                                    name=name, contact=contact)
    except (HubError, BadForm) as e:
        return _customer_page(customer_id, error=refusal(e), status=422)
    ok(_("The customer is saved."))
    return back("customers.customer", customer_id=customer_id)


def _act(customer_id: int, done: str, step):
    try:
        with db().begin() as conn:
            _customer_or_404(conn, customer_id)
            step(conn)
    except (HubError, BadForm) as e:
        refused(refusal(e))
    else:
        ok(done)
    return back("customers.customer", customer_id=customer_id)


@bp.post("/<int:customer_id>/state")
@permission(MANAGE)
def customer_state(customer_id: int):
    state = request.form.get("state", "")
    return _act(customer_id, _("The customer is %(state)s.", state=state_words(state)),
                lambda conn: customers.set_customer_state(conn, customer_id, state, actor(),
                                                          utcnow()))


@bp.post("/<int:customer_id>/reps")
@permission(MANAGE)
def add_rep(customer_id: int):
    def step(conn):
        customers.add_rep(conn, customer_id, text_field("username", 80),
                          text_field("display_name", 200), request.form.get("password", ""),
                          actor(), utcnow())
    return _act(customer_id, _("The representative can sign in now."), step)


@bp.post("/<int:customer_id>/reps/<int:rep_id>/state")
@permission(MANAGE)
def rep_state(customer_id: int, rep_id: int):
    state = request.form.get("state", "")
    return _act(customer_id, _("The representative is %(state)s.", state=state_words(state)),
                lambda conn: customers.set_rep_state(conn, customer_id, rep_id, state,
                                                     actor(), utcnow()))


@bp.post("/<int:customer_id>/quota")
@permission(MANAGE)
def customer_quota(customer_id: int):
    def step(conn):
        customers.set_customer_quota(conn, customer_id, number_field("session_id", 1),
                                     number_field("price_tier_id", 1),
                                     number_field("capacity", 0, 10**6), actor(), utcnow())
    return _act(customer_id, _("The customer's quota is set."), step)


@bp.post("/<int:customer_id>/notices")
@permission(MANAGE)
def notice(customer_id: int):
    return _post_notice(customer_id)


@bp.post("/<int:customer_id>/reserve")
@permission(MANAGE)
def reserve(customer_id: int):
    def step(conn):
        session_id = number_field("session_id", 1)
        venue_id = conn.execute(sa.select(sessions.c.venue_id)
                                .where(sessions.c.id == session_id)).scalar()
        labels = seat_labels(request.form.get("seats", ""))
        if venue_id is None or not labels:
            raise BadForm(_("%(field)s: give the seats' labels, such as L1-1-5.",
                            field=field_words("seats")))
        found, unknown = find_seats(conn, venue_id, labels)
        if unknown:
            raise BadForm(_("No such seats: %(seats)s.", seats=", ".join(unknown[:10])))
        try:
            until = parse_local(request.form.get("until", ""), ZONE)
        except ValueError:
            raise BadForm(_("%(field)s: give a date and time.",
                            field=field_words("until"))) from None
        orders.reserve_seats(conn, customer_id, session_id, list(found.values()), until,
                             actor())
    return _act(customer_id, _("The seats are kept for the customer."), step)


@bp.get("/<int:customer_id>/report.csv")
@permission(MANAGE)
def report_csv(customer_id: int):
    with db().connect() as conn:
        c = _customer_or_404(conn, customer_id)
        data = orders.report_csv(conn, customer_id, utcnow())
    return Response(data, mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="customer-{c.code}.csv"'})


# -- an order and its offline payment --------------------------------------------------------


def _order_or_404(conn, customer_id: int, number: str):
    try:
        return orders.order_of(conn, customer_id, number)
    except CustomerError:
        abort(404)


@bp.get("/<int:customer_id>/orders/<number>")
@permission(MANAGE)
def order(customer_id: int, number: str):
    return _order_page(customer_id, number, "customers/order")


def _order_page(customer_id: int, number: str, which: str, error: str = "",
                status: int = 200):
    now = utcnow()
    with db().connect() as conn:
        c = _customer_or_404(conn, customer_id)
        o = _order_or_404(conn, customer_id, number)
        lines = orders.order_lines_of(conn, o.id)
    shown = shown_state(o, now)
    return render_template(f"channels/{which}.html", c=c, o=o, lines=lines, shown=shown,
                           error=error), status


@bp.get("/<int:customer_id>/orders/<number>/confirm-payment")
@permission(MANAGE)
def confirm_payment(customer_id: int, number: str):
    return _order_page(customer_id, number, "customers/confirm_payment")


@bp.post("/<int:customer_id>/orders/<number>/payment")
@permission(MANAGE)
def record_payment(customer_id: int, number: str):
    try:
        with db().begin() as conn:
            _customer_or_404(conn, customer_id)
            _order_or_404(conn, customer_id, number)
            captured = orders.confirm_payment(conn, customer_id, number,
                                              text_field("reference", 64), actor(), utcnow())
    except (HubError, BadForm) as e:
        return _order_page(customer_id, number, "customers/confirm_payment", refusal(e), 422)
    ok(_("The payment is recorded: the order is paid and locked, %(n)s tickets issued.",
         n=len(captured.tickets)))
    return back("customers.order", customer_id=customer_id, number=number)
