"""The buyer's session in a browser, and the public site's CSRF token.

A buyer signed in on the site holds a buyer session's token (:mod:`cloud.buyers.sessions`,
the same sessions the buyer API's bearer tokens are) in the ``wicket_buyer`` cookie:
HttpOnly, SameSite=Lax, Secure as the hub's other cookies are. It is not the staff pages'
session cookie, so staff and buyer sign-ins in one browser never end each other.

Forms are guarded by a double-submit token: a random value in the ``wicket_shop_csrf`` cookie
(HttpOnly, SameSite=Strict), which each form carries too; a POST whose field does not match its
cookie changes nothing. Only the pages that show a form set it, so the public pages a proxy
caches carry no cookie.
"""

from __future__ import annotations

import hmac
import secrets

from flask import current_app, g, redirect, request, url_for
from flask.wrappers import Response
from markupsafe import Markup

from cloud.buyers.errors import BuyerError
from cloud.buyers.sessions import LIFETIME, BuyerSession, check_session
from cloud.web.web import CSRF_FIELD, CsrfRefused, engine

BUYER_COOKIE = "wicket_buyer"
CSRF_COOKIE = "wicket_shop_csrf"


def _secure() -> bool:
    return bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def current_buyer() -> BuyerSession | None:
    """The signed-in buyer of this request, or None (a missing, ended or unknown session)."""
    if "buyer" in g:
        return g.buyer
    token = request.cookies.get(BUYER_COOKIE, "")
    g.buyer = None
    if token:
        try:
            with engine().begin() as conn:
                g.buyer = check_session(conn, token)
        except BuyerError:
            g.buyer_cookie_stale = True
    return g.buyer


def need_buyer():
    """(the signed-in buyer, None), or (None, the way to the sign-in page and back here)."""
    me = current_buyer()
    if me is None:
        return None, redirect(url_for("shop.sign_in_page", next=request.full_path.rstrip("?")),
                              303)
    return me, None


def keep_signed_in(response: Response, token: str) -> None:
    response.set_cookie(BUYER_COOKIE, token, max_age=int(LIFETIME.total_seconds()),
                        httponly=True, samesite="Lax", secure=_secure(), path="/")


def forget(response: Response) -> None:
    response.delete_cookie(BUYER_COOKIE, path="/", httponly=True, samesite="Lax",
                           secure=_secure())


def csrf_token() -> str:
    token = request.cookies.get(CSRF_COOKIE) or g.get("shop_csrf")
    if not token:
        token = g.shop_csrf = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD, csrf_token())


def check_csrf() -> None:
    sent = request.form.get(CSRF_FIELD, "")
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused()


# as the staff pages': nothing from elsewhere, no framing, no guessing of types
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'"}


def after(response: Response) -> Response:
    """Set the CSRF cookie a form of this page asked for, drop a dead buyer cookie, keep
    pages that are the buyer's own out of every shared cache, and send the security
    headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    made = g.get("shop_csrf")
    if made:
        response.set_cookie(CSRF_COOKIE, made, httponly=True, samesite="Strict",
                            secure=_secure(), path="/shop")
    if g.get("buyer_cookie_stale"):
        forget(response)
    if made or "buyer" in g:
        response.headers["Cache-Control"] = "private, no-store"
    return response
