"""What every staff page shares: the permission rule per view, the signed-in staff member,
CSRF, times in the venue's zone, money, QR codes, and the refusal pages.

A page view is closed unless it says who may open it: ``@permission("tickets.sell")`` (a
permission named in cloud/staff/permissions.py, which the signed-in member's role must have),
``@signed_in`` (anyone signed in: their own password and second step, the start page) or
``@public``. The check runs before the view, for every page blueprint, so a view that forgets
to say gets a 403, not an open door. The role's permissions are read with the session on
every request, so a changed role counts at once.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import segno
import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup

from cloud.core.audit import set_source
from cloud.staff import accounts
from cloud.staff import roles as staff_roles
from cloud.staff import sessions as staff_sessions
from cloud.staff.permissions import PERMISSIONS
from sync.timeutil import utcnow
from sync.websafe import local_path

PAGES = "wicket_pages"
CSRF_FIELD = "csrf_token"


class CsrfRefused(Exception):
    """A POST without the form's CSRF token, or with a wrong one."""


def page_blueprint(name: str, url_prefix: str | None = None) -> Blueprint:
    return Blueprint(name, __name__, url_prefix=url_prefix)


def permission(name: str) -> Callable:
    """Admit signed-in staff whose role has this permission to a page view."""
    if name not in PERMISSIONS:
        raise ValueError(f"unknown permission {name!r}: name it in cloud/staff/permissions.py")

    def decorate(view: Callable) -> Callable:
        view.wicket_permission = name
        return view
    return decorate


def signed_in(view: Callable) -> Callable:
    """Admit anyone signed in, whatever their role (their own account's pages, the start)."""
    view.wicket_signed_in = True
    return view


def public(view: Callable) -> Callable:
    view.wicket_public = True
    return view


def engine() -> sa.Engine:
    return current_app.extensions["db"]


def actor() -> str:
    return f"staff:{g.staff.id}"


def can(name: str) -> bool:
    """Whether the signed-in staff member's role has this permission (for what a page shows)."""
    return g.get("staff") is not None and name in g.get("permissions", frozenset())


def role_titles(known: list[staff_roles.Role]) -> dict[str, str]:
    """Each role's title in the page's language, by its key (an unknown key shows as itself)."""
    return {r.name: role_title(r) for r in known}


def role_title(role: staff_roles.Role | None) -> str:
    """A role's title in the page's language."""
    if role is None:
        return ""
    locale = get_locale()
    return role.title_zh if locale is not None and locale.language == "zh" else role.title_en


# -- CSRF -----------------------------------------------------------------------------------


def csrf_token() -> str:
    token = session.get("csrf")
    if token is None:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused()


def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD, csrf_token())


# -- who is signed in -----------------------------------------------------------------------


def sign_in(who) -> None:
    """A new server-side session, a new cookie and a new CSRF token (no session fixation)."""
    with engine().begin() as conn:
        if session.get("sid"):  # signing in again ends the session this browser had
            staff_sessions.end_session(conn, session["sid"])
        token = staff_sessions.start_session(conn, who)
        accounts.note_sign_in(conn, who.id, request.remote_addr)
    session.clear()
    session["sid"] = token
    session["csrf"] = secrets.token_urlsafe(32)


def begin_audit_source() -> None:
    """The client's address (as TRUSTED_PROXIES lets ProxyFix say) for every audit row this
    request writes."""
    set_source(request.remote_addr)


def end_audit_source(_exc: BaseException | None = None) -> None:
    set_source(None)


def sign_out() -> None:
    token = session.get("sid")
    if token:
        with engine().begin() as conn:
            staff_sessions.end_session(conn, token)
    session.clear()


def safe_next(target: str | None) -> str | None:
    """A local path to return to after sign-in, or None (never another site): see
    :func:`sync.websafe.local_path`."""
    return local_path(target)


def before_page() -> Any:
    if request.blueprint not in current_app.extensions[PAGES]:
        return None
    if request.method == "POST":
        check_csrf()
    g.staff, g.role, g.permissions = None, None, frozenset()
    ended = None
    token = session.get("sid")
    if token:
        with engine().begin() as conn:
            try:
                g.staff = staff_sessions.check_session(conn, token)
            except staff_sessions.SessionEnded as e:  # caught inside: the ending commits
                ended = e.reason
            else:
                g.role = staff_roles.get_role(conn, g.staff.role)
                g.permissions = staff_roles.permissions_of(conn, g.staff.role)
        if ended:
            session.pop("sid", None)
    view = current_app.view_functions.get(request.endpoint)
    if view is None or getattr(view, "wicket_public", False):
        return None
    needed = getattr(view, "wicket_permission", None)
    if needed is None and not getattr(view, "wicket_signed_in", False):
        abort(403)
    if g.staff is None:
        if ended in ("idle", "expired"):
            flash(_("Your session has ended: please sign in again."), "warning")
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("auth.login", next=target), 303)
    if needed is not None and needed not in g.permissions:
        abort(403)
    return None


def after_page(response):
    if request.blueprint in current_app.extensions[PAGES] or request.endpoint == "static":
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'")
        if request.endpoint != "static":
            # pages carry masked personal data and one-time tokens: never kept by a cache
            response.headers["Cache-Control"] = "no-store"
    return response


def refusal(code: int, title: str, message: str):
    return render_template("error.html", code=code, title=title, message=message), code


# -- display --------------------------------------------------------------------------------


def utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def localtime(dt: datetime | None, tz: str | None = None, seconds: bool = False) -> str:
    """A time as the venue's clock shows it (UTC where there is no venue)."""
    if dt is None:
        return "—"
    zone = ZoneInfo(tz) if tz else UTC
    local = utc(dt).astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + \
        " " + (local.tzname() or "")


def age(dt: datetime | None, now: datetime | None = None) -> str:
    if dt is None:
        return _("never")
    secs = int(((now or utcnow()) - utc(dt)).total_seconds())
    if secs < 0:
        return _("in the future")
    if secs < 120:
        return _("%(n)s s ago", n=secs)
    if secs < 7200:
        return _("%(n)s min ago", n=secs // 60)
    if secs < 172800:
        return _("%(n)s h ago", n=secs // 3600)
    return _("%(n)s days ago", n=secs // 86400)


def doc_words(doc_type: str) -> str:
    return {"resident_id": _("resident identity card"),
            "residence_permit": _("residence permit (Hong Kong, Macao, Taiwan)"),
            "foreign_permanent": _("foreign permanent resident ID card"),
            "hk_macau_permit": _("travel permit (Hong Kong, Macao)"),
            "taiwan_permit": _("travel permit (Taiwan)"),
            "passport": _("passport")}.get(doc_type, doc_type)


def state_words(state: str) -> str:
    return {"issued": _("valid"), "void": _("void"), "refunded": _("refunded"),
            # flags (issue 16 §4): a risk flag's states
            "live": _("in force"), "lifted": _("lifted"), "expired": _("expired"),
            # content (issue 17 §3): a content item's states
            "draft": _("draft"), "review": _("in review"), "published": _("published"),
            "withdrawn": _("withdrawn"), "deleted": _("deleted")
            }.get(state, state)


def money(amount: int, currency: str = "CNY") -> str:
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency}"


def qr_svg(data: str, scale: int = 4) -> Markup:
    """A QR code (never a Micro QR, which phones and gate cameras do not read) as inline SVG."""
    qr = segno.make(data, error="m", micro=False)
    return Markup(qr.svg_inline(scale=scale, border=4, dark="#000", light="#fff",
                                title=None))


def parse_local(value: str, tz: str) -> datetime:
    """A ``datetime-local`` form value read on the venue's clock, as UTC."""
    local = datetime.fromisoformat(value.strip())
    if local.tzinfo is not None:
        raise ValueError("no offset expected")
    return local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def form_local(dt: datetime | None, tz: str) -> str:
    return "" if dt is None else utc(dt).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def int_field(name: str, lo: int, hi: int, default: int | None = None) -> int | None:
    text = request.form.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        return None
    return value if lo <= value <= hi else None


def back(endpoint: str, **values):
    return redirect(url_for(endpoint, **values), 303)


def ok(message: str):
    flash(message, "ok")


def refused(message: str):
    flash(message, "error")
