"""The hub's sites outside the staff pages' shell, each with its own sign-in: the partner
portal (``/partner/``, cloud/ledger/portal_pages.py) and the contract customers'
representatives' site (``/customer/``, cloud/channels/rep_pages.py). One :class:`OutsideSite`
decides, for both, how the session cookie is made, read and dropped, the CSRF token, the
security headers, the sign-in, sign-out and language views and the error pages; a site names
its cookies, salt and templates and says how a session finds its user.

- The session is the site's own cookie (HttpOnly, SameSite=Lax, Secure as the hub's others,
  path the site's prefix): the user's and its owner's ids and when the session began, signed
  with the hub's secret key under the site's salt (a cookie of one site is nothing to the
  other), good for ``lifetime`` seconds. Every request reads the user again through the
  site's ``lookup``: a disabled user, a suspended owner or a session begun before the user
  last signed out is no session, and a cookie that is no session is dropped with the answer.
- Forms carry a double-submit token: a random value in the site's CSRF cookie (HttpOnly,
  SameSite=Strict, path the site's prefix), renewed at sign-in; a POST whose field does not
  match it changes nothing and gets the site's "cannot be accepted" page (400).
- Every answer carries :data:`SECURITY_HEADERS`, ``Cache-Control: no-store`` among them.

The public site (cloud/storefront/browser_pages.py) is not one of them: its session is a buyer
session in the database, the one the buyer API's bearer tokens are, and its public pages,
which a proxy may cache, carry no cookie and no ``no-store``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
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

from cloud.web.limits import limited
from cloud.web.pages import LANG_COOKIE, LANGUAGES
from cloud.web.web import CSRF_FIELD, CsrfRefused, engine
from sync.timeutil import utcnow
from sync.websafe import local_path

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'"}

# (connection, user's id, owner's id, when the session began) -> the user's row, or None
Lookup = Callable[[sa.Connection, int, int, datetime], Any]
# (connection, user name, password, now) -> the user (``id`` and the owner's id), or None
Check = Callable[[sa.Connection, str, str, datetime], Any]
# (connection, user's id, now): every session of the user begun before now ends
EndSessions = Callable[[sa.Connection, int, datetime], None]


@dataclass(frozen=True, kw_only=True)
class OutsideSite:
    """One outside site: its names, and how a signed session finds its user (``lookup``)."""

    name: str  # the site's blueprint, whose endpoints these views are: "portal"
    prefix: str  # its URL prefix, and its cookies' path: "/partner"
    session_cookie: str
    csrf_cookie: str
    salt: str  # the session signer's
    keys: tuple[str, str]  # the signed payload's names of the user's id and its owner's
    owner: str  # the signed-in user's attribute naming its owner: "partner_id"
    lookup: Lookup
    user_attr: str  # g's name of the signed-in user: "portal_user"
    g_prefix: str  # g's <g_prefix>_csrf (a token made now), <g_prefix>_stale (a cookie to drop);
    #                and the pages' <g_prefix>_csrf_field()
    templates: str  # the folder of its sign_in.html and error.html
    home: str  # the endpoint a signed-in user lands on: "portal.balance"
    lifetime: int
    titles: Mapping[int, Any] = field(default_factory=dict)  # error pages' titles, beyond these

    # -- the session and the CSRF token ----------------------------------------------------

    def _signer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=self.salt)

    def signed_in(self):
        """The signed-in user of this request (the cookie checked, the user read again), or
        None; a cookie that is no session is dropped with the answer."""
        raw = request.cookies.get(self.session_cookie, "")
        if not raw:
            return None
        try:
            data = self._signer().loads(raw, max_age=self.lifetime)
            user_id, owner_id = int(data[self.keys[0]]), int(data[self.keys[1]])
            began = datetime.fromtimestamp(int(data["t"]) / 1000, UTC)
        except (BadSignature, KeyError, TypeError, ValueError, OverflowError):
            row = None
        else:
            with engine().connect() as conn:
                row = self.lookup(conn, user_id, owner_id, began)
        if row is None:
            setattr(g, f"{self.g_prefix}_stale", True)
        return row

    def csrf_token(self) -> str:
        token = g.get(f"{self.g_prefix}_csrf") or request.cookies.get(self.csrf_cookie)
        if not token:
            token = secrets.token_urlsafe(32)
            setattr(g, f"{self.g_prefix}_csrf", token)
        return token

    def csrf_field(self) -> Markup:
        return Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD,
                                                                       self.csrf_token())

    def _secure(self) -> bool:
        return bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def _begin(self, response: Response, who) -> None:
        """The session cookie of ``who``, and a new CSRF token with it."""
        token = self._signer().dumps({self.keys[0]: who.id, self.keys[1]: getattr(who, self.owner),
                                      "t": int(utcnow().timestamp() * 1000)})  # began, in ms
        response.set_cookie(self.session_cookie, token, max_age=self.lifetime, httponly=True,
                            samesite="Lax", secure=self._secure(), path=self.prefix)
        setattr(g, f"{self.g_prefix}_csrf", secrets.token_urlsafe(32))
        setattr(g, f"{self.g_prefix}_stale", False)  # the old cookie is replaced, not dropped

    def _drop(self, response: Response) -> None:
        response.delete_cookie(self.session_cookie, path=self.prefix, httponly=True,
                               samesite="Lax", secure=self._secure())

    # -- every request ---------------------------------------------------------------------

    def _guard(self, public: frozenset[str]):
        if request.method == "POST":
            sent = request.form.get(CSRF_FIELD, "")
            expected = request.cookies.get(self.csrf_cookie, "")
            if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                raise CsrfRefused()
        setattr(g, self.user_attr, self.signed_in())
        if g.get(self.user_attr) is None and request.endpoint not in public:
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for(f"{self.name}.sign_in_page", next=target), 303)
        return None

    def _after(self, response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        made = g.get(f"{self.g_prefix}_csrf")
        if made:
            response.set_cookie(self.csrf_cookie, made, httponly=True, samesite="Strict",
                                secure=self._secure(), path=self.prefix)
        if g.get(f"{self.g_prefix}_stale"):
            self._drop(response)
        return response

    def _error(self, code: int, title: str, message: str):
        return render_template(f"{self.templates}/error.html", code=code, title=title,
                               message=message), code

    def _csrf_refused(self, _e):
        return self._error(400, _("This form cannot be accepted"),
                           _("The form was sent without its security token, or with an old one "
                             "(for example after signing in again, or from another site). "
                             "Nothing was changed. Go back, reload the page and try again."))

    def _http_error(self, e: HTTPException):
        if e.code == 404:
            return self._error(404, _("Not found"), _("There is no such page or record."))
        titles = {400: _("Bad request"), 403: _("Not allowed"), 405: _("Not allowed"),
                  **{code: str(title) for code, title in self.titles.items()}}
        return self._error(e.code or 500, titles.get(e.code or 500, e.name), e.description or "")

    def guard(self, bp: Blueprint, words: Mapping[str, Any],
              public: frozenset[str] = frozenset()) -> Blueprint:
        """Put ``bp`` behind the site: its session, CSRF check, security headers and error
        pages; its pages need a signed-in user, but the site's sign-in, sign-out and language
        views and the endpoints ``public`` names. Its templates get ``me``, the site's
        ``<g_prefix>_csrf_field()`` and ``words``."""
        everyone = self.public | public
        bp.before_request(lambda: self._guard(everyone))
        bp.after_request(self._after)
        bp.context_processor(lambda: {f"{self.g_prefix}_csrf_field": self.csrf_field,
                                      "me": g.get(self.user_attr), **words})
        bp.errorhandler(CsrfRefused)(self._csrf_refused)
        bp.errorhandler(HTTPException)(self._http_error)
        return bp

    @property
    def public(self) -> frozenset[str]:
        return frozenset(f"{self.name}.{view}"
                         for view in ("sign_in_page", "sign_in", "sign_out", "language"))

    # -- signing in and out ----------------------------------------------------------------

    def _next(self) -> str | None:
        target = local_path(request.values.get("next"))
        return target if target and target.startswith(self.prefix + "/") else None

    def serve(self, bp: Blueprint, check: Check, end_sessions: EndSessions,
              words: Mapping[str, Any]) -> None:
        """The site's own blueprint: guarded (:meth:`guard`), with its sign-in page and form
        (``check`` the user name and password; one message whatever was wrong, limited per
        address as the staff's), sign-out (``end_sessions`` ends every session the user began
        before, copies of the cookie included), language and start views."""
        self.guard(bp, words)
        page = f"{self.templates}/sign_in.html"

        def sign_in_page():
            if g.get(self.user_attr) is not None:
                return redirect(self._next() or url_for(self.home), 303)
            return render_template(page, next=self._next() or "", username="")

        def sign_in():
            username = request.form.get("username", "").strip()[:80]
            with engine().begin() as conn:
                who = check(conn, username, request.form.get("password", ""), utcnow())
            if who is None:  # nobody learns whether a user name exists
                return render_template(page, next=self._next() or "", username=username,
                                       error=_("Wrong user name or password, or the account "
                                               "is disabled.")), 401
            response = make_response(redirect(self._next() or url_for(self.home), 303))
            self._begin(response, who)
            return response

        def sign_out():
            who = g.get(self.user_attr)
            if who is not None:
                with engine().begin() as conn:
                    end_sessions(conn, who.id, utcnow())
            response = make_response(redirect(url_for(f"{self.name}.sign_in_page"), 303))
            self._drop(response)
            return response

        def language():
            lang = request.form.get("lang", "")
            response = make_response(redirect(self._next() or url_for(self.home), 303))
            if lang in LANGUAGES:
                response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True,
                                    samesite="Lax", secure=self._secure())
            return response

        def start():
            return redirect(url_for(self.home), 303)

        for rule, view, method in (("/sign-in", sign_in_page, "GET"),
                                   ("/sign-in", limited("SIGN_IN_LIMIT")(sign_in), "POST"),
                                   ("/sign-out", sign_out, "POST"),
                                   ("/language", language, "POST"), ("/", start, "GET")):
            # named as the site's own: the rate limiter tells views by module and name
            view.__module__, view.__qualname__ = bp.import_name, view.__name__
            bp.add_url_rule(rule, view.__name__, view, methods=[method])
