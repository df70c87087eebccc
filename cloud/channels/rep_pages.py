"""The contract customers' own site (``/customer/``): a representative signs in, books seats
for a session (chosen, or best available at a tier), books from a holders file, sees the
customer's orders and notices, and gives back an order not yet paid.

It is not the staff pages' shell: it has its own sign-in
(cloud/channels/customers.py ``check_rep_sign_in``, limited per client address as the
staff's is), its own session cookie and CSRF token, as the partner portal has
(cloud/ledger/portal_pages.py):

- The session is the ``wicket_customer`` cookie (HttpOnly, SameSite=Lax, Secure as the
  hub's others): the representative's and customer's ids and when they signed in, signed
  with the hub's secret key under a salt of its own, good for :data:`LIFETIME`. Every request
  reads the representative again: a disabled one or a suspended customer is out at once, and
  signing out ends every session the representative began before it.
- Forms carry a double-submit token in the ``wicket_customer_csrf`` cookie (SameSite=Strict,
  path /customer), renewed at sign-in; a POST whose field does not match changes nothing.
- Every read names the signed-in representative's customer: another customer's order is
  "not found", exactly as one that does not exist.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

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
from cloud.web.limits import limited
from cloud.web.pages import LANG_COOKIE, LANGUAGES
from cloud.web.web import CSRF_FIELD, CsrfRefused, engine
from sync.timeutil import utcnow
from sync.websafe import local_path

bp = Blueprint("customer_site", __name__, url_prefix="/customer")
SESSION_COOKIE = "wicket_customer"
CSRF_COOKIE = "wicket_customer_csrf"
LIFETIME = 8 * 3600
ZONE = "Asia/Shanghai"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'"}


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="wicket-customer-site")


def _secure() -> bool:
    return bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


# -- the session and the CSRF token ----------------------------------------------------------


def _signed_in_rep():
    raw = request.cookies.get(SESSION_COOKIE, "")
    if not raw:
        return None
    try:
        data = _signer().loads(raw, max_age=LIFETIME)
        rep_id, customer_id, began = int(data["r"]), int(data["c"]), int(data["t"])
    except (BadSignature, KeyError, TypeError, ValueError):
        g.rep_stale = True
        return None
    with engine().connect() as conn:
        row = customers.signed_in_rep(conn, rep_id, customer_id,
                                      datetime.fromtimestamp(began / 1000, UTC))
    if row is None:
        g.rep_stale = True
    return row


def csrf_token() -> str:
    token = g.get("rep_csrf") or request.cookies.get(CSRF_COOKIE)
    if not token:
        token = g.rep_csrf = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD, csrf_token())


@bp.before_request
def _guard():
    if request.method == "POST":
        sent = request.form.get(CSRF_FIELD, "")
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise CsrfRefused()
    g.rep = _signed_in_rep()
    if g.rep is None and request.endpoint not in PUBLIC:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("customer_site.sign_in_page", next=target), 303)
    return None


@bp.after_request
def _after(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    made = g.get("rep_csrf")
    if made:
        response.set_cookie(CSRF_COOKIE, made, httponly=True, samesite="Strict",
                            secure=_secure(), path="/customer")
    if g.get("rep_stale"):
        response.delete_cookie(SESSION_COOKIE, path="/customer", httponly=True,
                               samesite="Lax", secure=_secure())
    return response


def row_words(code: str) -> str:
    """A refused row's code in the page's language."""
    words = ERROR_WORDS.get(code)
    return str(words) if words is not None and "%(" not in str(words._args[0]) else code


@bp.context_processor
def _globals() -> dict:
    return {"rep_csrf_field": csrf_field, "me": g.get("rep"), "zone": ZONE,
            "order_state_words": state_words, "field_words": field_words,
            "row_words": row_words}


def _me() -> Rep:
    r = g.rep
    return Rep(r.id, r.customer_id, r.customer_code, r.username, r.display_name)


def _error(code: int, title: str, message: str):
    return render_template("customer/error.html", code=code, title=title,
                           message=message), code


@bp.errorhandler(CsrfRefused)
def _csrf_refused(_e):
    return _error(400, _("This form cannot be accepted"),
                  _("The form was sent without its security token, or with an old one (for "
                    "example after signing in again, or from another site). Nothing was "
                    "changed. Go back, reload the page and try again."))


@bp.errorhandler(HTTPException)
def _http_error(e: HTTPException):
    if e.code == 404:
        return _error(404, _("Not found"), _("There is no such page or record."))
    titles = {400: _("Bad request"), 403: _("Not allowed"), 405: _("Not allowed"),
              413: _("File too large")}
    return _error(e.code or 500, titles.get(e.code or 500, e.name), e.description or "")


# -- signing in and out ----------------------------------------------------------------------


def _next() -> str | None:
    target = local_path(request.values.get("next"))
    return target if target and target.startswith("/customer/") else None


@bp.get("/sign-in")
def sign_in_page():
    if g.rep is not None:
        return redirect(_next() or url_for("customer_site.orders_page"), 303)
    return render_template("customer/sign_in.html", next=_next() or "", username="")


@bp.post("/sign-in")
@limited("SIGN_IN_LIMIT")
def sign_in():
    username = request.form.get("username", "").strip()[:80]
    with engine().begin() as conn:
        who = customers.check_rep_sign_in(conn, username, request.form.get("password", ""),
                                          utcnow())
    if who is None:  # one message whatever was wrong
        return render_template("customer/sign_in.html", next=_next() or "",
                               username=username,
                               error=_("Wrong user name or password, or the account is "
                                       "disabled.")), 401
    response = make_response(redirect(_next() or url_for("customer_site.orders_page"), 303))
    token = _signer().dumps({"r": who.id, "c": who.customer_id,
                             "t": int(utcnow().timestamp() * 1000)})
    response.set_cookie(SESSION_COOKIE, token, max_age=LIFETIME, httponly=True,
                        samesite="Lax", secure=_secure(), path="/customer")
    g.rep_csrf = secrets.token_urlsafe(32)
    return response


@bp.post("/sign-out")
def sign_out():
    who = _signed_in_rep()
    if who is not None:
        with engine().begin() as conn:
            customers.sign_out_everywhere(conn, who.id, utcnow())
    response = make_response(redirect(url_for("customer_site.sign_in_page"), 303))
    response.delete_cookie(SESSION_COOKIE, path="/customer", httponly=True, samesite="Lax",
                           secure=_secure())
    return response


@bp.post("/language")
def language():
    lang = request.form.get("lang", "")
    response = make_response(redirect(_next() or url_for("customer_site.orders_page"), 303))
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True,
                            samesite="Lax", secure=_secure())
    return response


@bp.get("/")
def start():
    return redirect(url_for("customer_site.orders_page"), 303)


PUBLIC = {"customer_site.sign_in_page", "customer_site.sign_in", "customer_site.sign_out",
          "customer_site.language"}


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
