"""The buyer's own pages on the public site: sign in (an SMS code, or the password once set),
register with an SMS code, sign out, and the account — verification, companions, orders and
the sessions signed in elsewhere. The rules are the buyers area's (the same the buyer API
calls); these pages only turn forms into calls and refusals into words.

Codes and sign-ins are limited per client address as the API's are (``SIGN_IN_LIMIT``, and the
code limits of :mod:`cloud.buyers.codes`); a page answers the same whether or not a number has
an account, until the code proves the visitor holds it. Pages here are never cached.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from cloud.buyers import accounts, codes, sessions
from cloud.buyers import companions as comp
from cloud.buyers.api import setting
from cloud.catalog.tables import events
from cloud.catalog.tables import sessions as event_sessions
from cloud.core.errors import HubError
from cloud.sales.orders import shown_state
from cloud.sales.tables import orders
from cloud.storefront import browser_pages as buyer_session
from cloud.storefront.pages import bp
from cloud.web.limits import limited
from cloud.web.web import engine
from cloud.web.words import rule_error
from sync.websafe import local_path

MAX_ORDERS = 50


def _next() -> str | None:
    target = local_path(request.values.get("next"))
    return target if target and target.startswith("/shop/") else None


def _client() -> dict[str, Any]:
    return {"user_agent": request.headers.get("User-Agent"), "address": request.remote_addr}


def _signed_in(buyer_id: int, token: str, target: str | None):
    response = make_response(redirect(target or url_for("shop.account"), 303))
    buyer_session.keep_signed_in(response, token)
    return response


def _form(template: str, status: int = 200, **values: Any):
    return render_template(f"storefront/{template}", next=_next() or "",
                           mobile=request.form.get("mobile", ""), **values), status


def _code_limits() -> codes.CodeLimits:
    return codes.CodeLimits(per_number=setting("BUYER_CODES_PER_NUMBER"),
                            per_address=setting("BUYER_CODES_PER_ADDRESS"))


def _code_step(purpose: str, template: str):
    """Send a code for ``purpose`` to the number typed, then ask for it on ``template``; a
    refusal (a bad number, too many codes) is said on the number's step."""
    try:
        with engine().begin() as conn:
            codes.ask_code(conn, mobile=request.form.get("mobile", ""), purpose=purpose,
                           address=request.remote_addr, language=g.language,
                           limits=_code_limits())
    except HubError as e:
        return _form(template, e.status, step="mobile", error=rule_error(e))
    return _form(template, step="code", sent=True)


# -- signing in ---------------------------------------------------------------------------------

@bp.get("/<lang>/sign-in")
def sign_in_page():
    return _form("sign_in.html", step="mobile")


@bp.post("/<lang>/sign-in/code")
@limited("SIGN_IN_LIMIT")
def sign_in_code():
    return _code_step("sign_in", "sign_in.html")


@bp.post("/<lang>/sign-in")
@limited("SIGN_IN_LIMIT")
def sign_in():
    mobile = request.form.get("mobile", "")
    by_code = bool(request.form.get("code"))
    try:
        if by_code:
            buyer_id, token = accounts.sign_in_by_code(
                engine(), mobile=mobile, code=request.form["code"].strip(), **_client())
        else:
            buyer_id, token = accounts.sign_in_by_password(
                engine(), mobile=mobile, password=request.form.get("password", ""), **_client())
    except HubError as e:
        return _form("sign_in.html", e.status, step="code" if by_code else "mobile",
                     error=rule_error(e))
    return _signed_in(buyer_id, token, _next())


@bp.post("/<lang>/sign-out")
def sign_out():
    me = buyer_session.current_buyer()
    if me is not None:
        with engine().begin() as conn:
            sessions.end_session(conn, me.buyer_id, me.session_id)
    response = make_response(redirect(url_for("shop.home"), 303))
    buyer_session.forget(response)
    return response


# -- registering ----------------------------------------------------------------------------------

@bp.get("/<lang>/register")
def register_page():
    return _form("register.html", step="mobile")


@bp.post("/<lang>/register/code")
@limited("SIGN_IN_LIMIT")
def register_code():
    return _code_step("register", "register.html")


@bp.post("/<lang>/register")
@limited("SIGN_IN_LIMIT")
def register():
    f = request.form
    try:
        codes.check_code(engine(), mobile=f.get("mobile", ""), purpose="register",
                         code=f.get("code", "").strip())
        with engine().begin() as conn:
            buyer_id = accounts.register(
                conn, mobile=f.get("mobile", ""), code=f.get("code", "").strip(),
                password=f.get("password") or None, email=f.get("email") or None,
                language=g.language)
            token = sessions.start_session(conn, buyer_id, **_client())
    except HubError as e:
        return _form("register.html", e.status, step="code", error=rule_error(e),
                     email=f.get("email", ""))
    return _signed_in(buyer_id, token, _next())


# -- the account ----------------------------------------------------------------------------------

def buyer_orders(conn: sa.Connection, buyer_id: int) -> list[dict[str, Any]]:
    """The buyer's orders, newest first, with their sessions' names and shown states."""
    rows = conn.execute(
        sa.select(orders, event_sessions.c.name.label("session_name"),
                  events.c.name.label("event_name"))
        .join(event_sessions, event_sessions.c.id == orders.c.session_id, isouter=True)
        .join(events, events.c.id == event_sessions.c.event_id, isouter=True)
        .where(orders.c.buyer == f"buyer:{buyer_id}")
        .order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(MAX_ORDERS)).all()
    return [{"number": r.number, "session": r.session_name, "event": r.event_name,
             "state": shown_state(r), "total": r.total, "currency": r.currency,
             "created_at": r.created_at} for r in rows]


@bp.get("/<lang>/account")
def account():
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    return account_page(me)


def account_page(me, *, error: str | None = None, status: int = 200,
                 form: dict[str, str] | None = None, notice: str | None = None):
    """The account page, with a refusal (``error``, beside the form it came from) or a
    notice."""
    with engine().connect() as conn:
        mine = accounts.profile(conn, me.buyer_id)
        people = comp.list_companions(conn, me.buyer_id)
        bought = buyer_orders(conn, me.buyer_id)
        signed = sessions.list_sessions(conn, me.buyer_id)
    return render_template("storefront/account.html", me=mine.masked(), companions=people,
                           orders=bought, sessions=signed, current=me.session_id,
                           ended=request.args.get("ended"), error=error, form=form or {},
                           notice=notice or request.args.get("notice"),
                           limit=setting("BUYER_COMPANION_LIMIT")), status


@bp.post("/<lang>/account/sign-out-others")
def sign_out_others():
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    with engine().begin() as conn:
        ended = sessions.end_sessions(conn, me.buyer_id, keep=me.session_id)
    return redirect(url_for("shop.account", ended=ended), 303)


@bp.app_template_global()
def shop_order_state_words(state: str) -> str:
    return {"pending_payment": _("Waiting for payment"), "paid": _("Paid, tickets issued"),
            "partially_refunded": _("Partly refunded"), "refunded": _("Refunded"),
            "expired": _("Expired: not paid in time"), "cancelled": _("Cancelled")
            }.get(state, state)


@bp.app_template_global()
def shop_verification_words(state: str | None) -> str:
    return {None: _("Not verified yet"), "pending": _("Being checked"),
            "verified": _("Verified"), "refused": _("Refused: the name and number do not "
                                                    "match"),
            "unavailable": _("Being checked: the service will be asked again"),
            "review": _("Waiting for a person to check the document photo")
            }.get(state, state)
