"""The partner portal (``/partner/``): a partner's own users sign in and see their own money —
the balance the hub owes them, their transactions with each one's split, their settlement
statements and their state, and the exports (CSV, PDF).

It is not the staff pages' shell: it has its own sign-in (cloud/ledger/partners.py
``check_portal_sign_in``, limited per client address as the staff's is), its own session
cookie and its own CSRF token.

- The session is the ``wicket_partner`` cookie (HttpOnly, SameSite=Lax, Secure as the hub's
  others): the portal user's and partner's ids and when they signed in, signed with the hub's
  secret key under a salt of its own, good for :data:`LIFETIME`. Every request reads the user
  again: a disabled user or a suspended partner is out at once, and signing out ends every
  session the user began before it (``partner_users.signed_out_at``), copies included.
- Forms carry a double-submit token: a random value in the ``wicket_partner_csrf`` cookie
  (HttpOnly, SameSite=Strict, path /partner), renewed at sign-in; a POST whose field does not
  match it changes nothing.
- Every read names the signed-in user's partner (cloud/ledger/reads.py for the journal,
  cloud/ledger/settlement.py filtered by partner): a statement of another partner is "not
  found", exactly as one that does not exist.
"""

from __future__ import annotations

import csv
import hmac
import io
import secrets
import time

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

from cloud.ledger import reads, settlement
from cloud.ledger.errors import LedgerError
from cloud.ledger.pages import (
    ZONE,
    channel_words,
    entry_kind_words,
    part_words,
    statement_state_words,
)
from cloud.ledger.partners import check_portal_sign_in, sign_out_everywhere
from cloud.ledger.tables import partner_users, partners
from cloud.web.limits import limited
from cloud.web.pages import LANG_COOKIE, LANGUAGES
from cloud.web.query import query_int
from cloud.web.web import CSRF_FIELD, CsrfRefused, engine
from sync.timeutil import utcnow
from sync.websafe import local_path

bp = Blueprint("portal", __name__, url_prefix="/partner")
SESSION_COOKIE = "wicket_partner"
CSRF_COOKIE = "wicket_partner_csrf"
LIFETIME = 8 * 3600  # seconds a sign-in lasts
EXPORT_ROWS = 10_000
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'"}


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="wicket-partner-portal")


def _secure() -> bool:
    return bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


# -- the session and the CSRF token ---------------------------------------------------------------


def _signed_in_user():
    """The signed-in portal user of this request (the cookie checked, the user and the
    partner read again and both active), or None."""
    raw = request.cookies.get(SESSION_COOKIE, "")
    if not raw:
        return None
    try:
        data = _signer().loads(raw, max_age=LIFETIME)
        user_id, partner_id, began = int(data["u"]), int(data["p"]), int(data["t"])
    except (BadSignature, KeyError, TypeError, ValueError):
        g.portal_stale = True
        return None
    with engine().connect() as conn:
        row = conn.execute(
            sa.select(partner_users.c.id, partner_users.c.partner_id,
                      partner_users.c.username, partner_users.c.display_name,
                      partner_users.c.signed_out_at,
                      partners.c.name.label("partner_name"), partners.c.code.label("partner_code"))
            .join(partners, partners.c.id == partner_users.c.partner_id)
            .where(partner_users.c.id == user_id, partner_users.c.partner_id == partner_id,
                   partner_users.c.state == "active", partners.c.state == "active")).first()
    if row is not None and row.signed_out_at is not None \
            and began <= int(row.signed_out_at.timestamp() * 1000):
        row = None  # the user signed out after this session began
    if row is None:
        g.portal_stale = True
    return row


def csrf_token() -> str:
    token = g.get("portal_csrf") or request.cookies.get(CSRF_COOKIE)
    if not token:
        token = g.portal_csrf = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD, csrf_token())


@bp.before_request
def _guard():
    return _guard_pages(PUBLIC)


def _guard_pages(public: set[str]):
    if request.method == "POST":
        sent = request.form.get(CSRF_FIELD, "")
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise CsrfRefused()
    g.portal_user = _signed_in_user()
    if g.portal_user is None and request.endpoint not in public:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("portal.sign_in_page", next=target), 303)
    return None


@bp.after_request
def _after(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    made = g.get("portal_csrf")
    if made:
        response.set_cookie(CSRF_COOKIE, made, httponly=True, samesite="Strict",
                            secure=_secure(), path="/partner")
    if g.get("portal_stale"):
        response.delete_cookie(SESSION_COOKIE, path="/partner", httponly=True, samesite="Lax",
                               secure=_secure())
    return response


@bp.context_processor
def _globals() -> dict:
    return {"portal_csrf_field": csrf_field, "me": g.get("portal_user"), "zone": ZONE,
            "part_words": part_words, "entry_kind_words": entry_kind_words,
            "channel_words": channel_words, "statement_state_words": statement_state_words}


def _me():
    return g.portal_user


def _error(code: int, title: str, message: str):
    return render_template("portal/error.html", code=code, title=title, message=message), code


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
    titles = {400: _("Bad request"), 403: _("Not allowed"), 405: _("Not allowed")}
    return _error(e.code or 500, titles.get(e.code or 500, e.name),
                  e.description or "")


def signed_in_partner():
    """The portal user signed in for this request (``id``, ``partner_id``, ``username``,
    ``display_name``, ``partner_name``, ``partner_code``), or None: for pages of other areas
    under /partner/ that :func:`share_session` guards."""
    return g.get("portal_user")


def share_session(other: Blueprint, public: frozenset[str] = frozenset()) -> Blueprint:
    """Give another area's blueprint under ``/partner/`` the portal's session, CSRF check,
    security headers, page globals and error pages: its pages need a signed-in portal user,
    but those whose endpoints ``public`` names. Its templates extend ``portal/base.html``."""
    other.before_request(lambda: _guard_pages(PUBLIC | set(public)))
    other.after_request(_after)
    other.context_processor(_globals)
    other.errorhandler(CsrfRefused)(_csrf_refused)
    other.errorhandler(HTTPException)(_http_error)
    return other


# -- signing in and out ---------------------------------------------------------------------------


def _next() -> str | None:
    target = local_path(request.values.get("next"))
    return target if target and target.startswith("/partner/") else None


@bp.get("/sign-in")
def sign_in_page():
    if g.portal_user is not None:
        return redirect(_next() or url_for("portal.balance"), 303)
    return render_template("portal/sign_in.html", next=_next() or "", username="")


@bp.post("/sign-in")
@limited("SIGN_IN_LIMIT")
def sign_in():
    username = request.form.get("username", "").strip()[:80]
    with engine().begin() as conn:
        who = check_portal_sign_in(conn, username, request.form.get("password", ""), utcnow())
    if who is None:
        # one message whatever was wrong: nobody learns whether a user name exists
        return render_template("portal/sign_in.html", next=_next() or "", username=username,
                               error=_("Wrong user name or password, or the account is "
                                       "disabled.")), 401
    response = make_response(redirect(_next() or url_for("portal.balance"), 303))
    token = _signer().dumps({"u": who.id, "p": who.partner_id,
                             "t": int(time.time() * 1000)})  # when it began, in ms
    response.set_cookie(SESSION_COOKIE, token, max_age=LIFETIME, httponly=True,
                        samesite="Lax", secure=_secure(), path="/partner")
    g.portal_csrf = secrets.token_urlsafe(32)  # a new token with the new sign-in
    return response


@bp.post("/sign-out")
def sign_out():
    """The cookie goes, and with it every session the user began before now (a copy of the
    cookie elsewhere is no good either)."""
    who = _signed_in_user()
    if who is not None:
        with engine().begin() as conn:
            sign_out_everywhere(conn, who.id, utcnow())
    response = make_response(redirect(url_for("portal.sign_in_page"), 303))
    response.delete_cookie(SESSION_COOKIE, path="/partner", httponly=True, samesite="Lax",
                           secure=_secure())
    return response


@bp.post("/language")
def language():
    lang = request.form.get("lang", "")
    response = make_response(redirect(_next() or url_for("portal.balance"), 303))
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True,
                            samesite="Lax", secure=_secure())
    return response


@bp.get("/")
def start():
    return redirect(url_for("portal.balance"), 303)


PUBLIC = {"portal.sign_in_page", "portal.sign_in", "portal.sign_out", "portal.language"}


# -- the partner's own ----------------------------------------------------------------------------


@bp.get("/balance")
def balance():
    me = _me()
    with engine().connect() as conn:
        accounts = reads.partner_accounts(conn, me.partner_id)
        recent = settlement.statements(conn, partner_id=me.partner_id)[:5]
    return render_template("portal/balance.html", accounts=accounts, recent=recent)


@bp.get("/transactions")
def transactions():
    me = _me()
    before = query_int("before")
    with engine().connect() as conn:
        rows = reads.partner_transactions(conn, me.partner_id, before=before)
    return render_template("portal/transactions.html", rows=rows, before=before,
                           more=len(rows) == reads.PAGE)


@bp.get("/transactions.csv")
def transactions_csv():
    """The partner's transactions (the newest :data:`EXPORT_ROWS`), one row per entry: its
    share, and the split among the parts."""
    me = _me()
    with engine().connect() as conn:
        rows = reads.partner_transactions(conn, me.partner_id, limit=EXPORT_ROWS)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["entry", "posted_at", "kind", "state", "order", "reference", "currency",
                     "amount", "share", "split"])
    for r in rows:
        writer.writerow([r["id"], (r["posted_at"] or r["created_at"]).isoformat(), r["kind"],
                         r["state"], r["order_number"] or "", r["reference"] or "",
                         r["currency"], r["amount"], sum(m["amount"] for m in r["mine"]),
                         " ".join(f"{k}={v}" for k, v in sorted(r["split"].items()))])
    return _download(out.getvalue().encode("utf-8"), "text/csv; charset=utf-8",
                     f"transactions-{me.partner_code}.csv")


@bp.get("/statements")
def statements():
    me = _me()
    with engine().connect() as conn:
        rows = settlement.statements(conn, partner_id=me.partner_id)
    return render_template("portal/statements.html", rows=rows)


def _own_statement(conn, statement_id: int):
    """The statement, if it is the signed-in partner's; 404 otherwise (another partner's
    looks exactly like one that does not exist)."""
    try:
        row = settlement.statement(conn, statement_id)
    except LedgerError:
        abort(404)
    if row.partner_id != _me().partner_id:
        abort(404)
    return row


@bp.get("/statements/<int:statement_id>")
def statement(statement_id: int):
    with engine().connect() as conn:
        row = _own_statement(conn, statement_id)
        lines = settlement.statement_lines(conn, statement_id)
    return render_template("portal/statement.html", s=row, lines=lines)


@bp.get("/statements/<int:statement_id>.<any(csv, pdf):fmt>")
def statement_file(statement_id: int, fmt: str):
    from cloud.ledger import statement_files
    from cloud.web.pages import chosen_language

    with engine().connect() as conn:
        row = _own_statement(conn, statement_id)
        data = (statement_files.statement_csv(conn, statement_id) if fmt == "csv"
                else statement_files.statement_pdf(conn, statement_id, chosen_language()))
    mimetype = "text/csv; charset=utf-8" if fmt == "csv" else "application/pdf"
    return _download(data, mimetype, f"statement-{row.partner_code}-{statement_id}.{fmt}")


def _download(data: bytes, mimetype: str, name: str) -> Response:
    return Response(data, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
