"""The buyers' JSON API under ``/api/v1/buyer/`` (docs/buyers.md, docs/openapi.json): codes by
SMS, registration, sign-in by code or password, the password reset, the buyer's own account
and sessions, companions, and the photo of a document sent for review.

A buyer is signed in by ``Authorization: Bearer wkb_…``, a buyer session's token
(cloud/buyers/sessions.py): not a staff API token, and no cookie, so no CSRF token either. The
calls that sign in or ask for a code are open to anyone, limited per client address (and codes
per number) in the hub's database. Every field is checked, a missing or mistyped one a 400
``bad_field`` naming it, a wrong value the 4xx of its own code. Registration and companions take
an ``Idempotency-Key`` (cloud/web/idempotent.py): their answers hold no secret and only masked
personal data, since a stored answer is kept a day in clear; a sign-in's answer is a session's
token and takes none, as the staff API's secrets do not.

Settings, from the app's configuration or else ``$WICKET_HUB_<name>``: ``BUYER_COMPANION_LIMIT``
(default 10), ``BUYER_CODES_PER_NUMBER`` and ``BUYER_CODES_PER_ADDRESS`` (codes per hour;
default 5 and 20); each a whole number of at least 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from flask import current_app, g, jsonify, request

from cloud.buyers import accounts, codes, own_identity, photo_uploads, sessions
from cloud.buyers import companions as comp
from cloud.buyers.errors import BuyerError
from cloud.buyers.identity_errors import IdentityError
from cloud.buyers.photos import MAX_BYTES, check_declared
from cloud.web.http import ApiError, engine, json_blueprint, json_body
from cloud.web.idempotent import idempotent, transaction
from cloud.web.limits import limited

bp = json_blueprint("buyer_api", "/api/v1/buyer")
bp.wicket_limit = ("API_LIMIT", None)
OPEN = "nobody: limited per client address"  # what signs the calls open to anyone
SIGNED = "buyer session"


SETTINGS = {"BUYER_COMPANION_LIMIT": comp.DEFAULT_LIMIT,
            "BUYER_CODES_PER_NUMBER": codes.CodeLimits.per_number,
            "BUYER_CODES_PER_ADDRESS": codes.CodeLimits.per_address}


def setting(name: str) -> int:
    """A buyers' setting (:data:`SETTINGS`): the app's configuration, else the environment,
    else its default."""
    value = current_app.config.get(name) or os.environ.get(f"WICKET_HUB_{name}") \
        or SETTINGS[name]
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ValueError(f"{name} ($WICKET_HUB_{name}) must be a whole number, 1 or more")
    return number


def _at(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _text(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BuyerError("bad_field", field=name)
    return value


def open_call(view: Callable) -> Callable:
    view.wicket_signed_by = OPEN
    return view


def signed_in(view: Callable) -> Callable:
    """Admit a live buyer session's bearer token; ``g.buyer`` is its BuyerSession."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token.strip():
            raise ApiError("unauthorized", "missing Authorization: Bearer <buyer session token>")
        with engine().begin() as conn:
            g.buyer = sessions.check_session(conn, token.strip())
        return view(*args, **kwargs)
    wrapper.wicket_signed_by = SIGNED
    return wrapper


def _buyer_scope() -> str:
    return f"buyer:{g.buyer.buyer_id}"


def _profile_json(p: accounts.Profile) -> dict[str, Any]:
    return {"id": p.id, "mobile": p.mobile, "email": p.email, "language": p.language,
            "has_password": p.has_password, "identity_id": p.identity_id,
            "verification": p.verification, "created_at": _at(p.created_at)}


def _client() -> dict[str, str | None]:
    return {"user_agent": request.headers.get("User-Agent"), "address": request.remote_addr}


# -- open calls -----------------------------------------------------------------------------------

@bp.post("/codes")
@open_call
def ask_code():
    body = json_body()
    limits = codes.CodeLimits(per_number=setting("BUYER_CODES_PER_NUMBER"),
                              per_address=setting("BUYER_CODES_PER_ADDRESS"))
    with transaction() as conn:
        codes.ask_code(conn, mobile=_text(body, "mobile"), purpose=_text(body, "purpose"),
                       language=_text(body, "language", required=False) or "zh",
                       address=request.remote_addr, limits=limits)
    # the same answer whether or not the number has an account
    return jsonify({"sent": True, "expires_in_s": int(codes.CODE_LIFETIME.total_seconds()),
                    "resend_after_s": int(codes.RESEND_AFTER.total_seconds())}), 202


def _check_register_code() -> str:
    body = json_body()
    return codes.check_code(engine(), mobile=_text(body, "mobile"), purpose="register",
                            code=_text(body, "code"))


@bp.post("/register")
@open_call
@idempotent(apart=_check_register_code, scope=lambda: "buyers:register")
def register():
    body = json_body()
    with transaction() as conn:
        buyer_id = accounts.register(
            conn, mobile=_text(body, "mobile"), code=_text(body, "code"),
            password=_text(body, "password", required=False),
            email=_text(body, "email", required=False),
            language=_text(body, "language", required=False) or "zh")
        shown = accounts.profile(conn, buyer_id).masked()
    return jsonify({"buyer": _profile_json(shown)}), 201


@bp.post("/sessions")
@open_call
@limited("SIGN_IN_LIMIT")
def sign_in():
    body = json_body()
    mobile = _text(body, "mobile")
    if body.get("code") is not None:
        buyer_id, token = accounts.sign_in_by_code(engine(), mobile=mobile,
                                                   code=_text(body, "code"), **_client())
    elif body.get("password") is not None:
        buyer_id, token = accounts.sign_in_by_password(
            engine(), mobile=mobile, password=_text(body, "password"), **_client())
    else:
        raise BuyerError("bad_field", field="code")
    return jsonify({"buyer_id": buyer_id, "token": token}), 201


@bp.post("/password-reset")
@open_call
@limited("SIGN_IN_LIMIT")
def password_reset():
    body = json_body()
    mobile, code = _text(body, "mobile"), _text(body, "code")
    new = _text(body, "password")
    accounts.check_new_password(mobile, new)  # refused before the code is spent
    codes.check_code(engine(), mobile=mobile, purpose="password_reset", code=code)
    with transaction() as conn:
        accounts.reset_password(conn, mobile=mobile, code=code, new=new)
    return jsonify({"reset": True})


# -- the signed-in buyer ----------------------------------------------------------------------------

@bp.get("/me")
@signed_in
def me():
    with engine().connect() as conn:
        return jsonify({"buyer": _profile_json(accounts.profile(conn, g.buyer.buyer_id))})


@bp.patch("/me")
@signed_in
def update_me():
    body = json_body()
    unknown = sorted(set(body) - {"email", "language"})
    if unknown:
        raise BuyerError("bad_field", field=unknown[0])
    with transaction() as conn:
        if "email" in body:
            accounts.set_email(conn, g.buyer.buyer_id, _text(body, "email", required=False))
        if "language" in body:
            accounts.set_language(conn, g.buyer.buyer_id, _text(body, "language"))
        shown = accounts.profile(conn, g.buyer.buyer_id)
    return jsonify({"buyer": _profile_json(shown)})


@bp.post("/me/password")
@signed_in
def change_password():
    body = json_body()
    with transaction() as conn:
        ended = accounts.set_password(conn, g.buyer.buyer_id, _text(body, "password"),
                                      current=_text(body, "current_password", required=False),
                                      session_id=g.buyer.session_id)
    return jsonify({"sessions_ended": ended})


@bp.get("/sessions")
@signed_in
def list_sessions():
    with engine().connect() as conn:
        rows = sessions.list_sessions(conn, g.buyer.buyer_id)
    return jsonify({"sessions": [
        {"id": r.id, "current": r.id == g.buyer.session_id, "created_at": _at(r.created_at),
         "last_seen_at": _at(r.last_seen_at), "expires_at": _at(r.expires_at),
         "user_agent": r.user_agent, "address": r.address_masked} for r in rows]})


@bp.delete("/sessions/<int:session_id>")
@signed_in
def end_session(session_id: int):
    with transaction() as conn:
        sessions.end_session(conn, g.buyer.buyer_id, session_id)
    return jsonify({"ended": True})


@bp.post("/sessions/end-others")
@signed_in
def end_other_sessions():
    with transaction() as conn:
        ended = sessions.end_sessions(conn, g.buyer.buyer_id, keep=g.buyer.session_id)
    return jsonify({"sessions_ended": ended})


@bp.post("/me/identity")
@signed_in
@idempotent(scope=_buyer_scope)
def verify_me():
    """Name who the buyer is; verified once, the result sent to their mobile (202)."""
    body = json_body()
    with transaction() as conn:
        identity_id, state = own_identity.verify_buyer(
            conn, g.buyer.buyer_id, name=_text(body, "name"), doc_type=_text(body, "doc_type"),
            number=_text(body, "doc_number"))
    return jsonify({"identity_id": identity_id, "verification": state}), 202


# -- companions ----------------------------------------------------------------------------------

def _companion_json(c: comp.Companion) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "doc_type": c.doc_type, "doc_number": c.doc_number,
            "identity_id": c.identity_id, "verification": c.verification,
            "added_at": _at(c.added_at)}


def _limit() -> int:
    return setting("BUYER_COMPANION_LIMIT")


@bp.get("/companions")
@signed_in
def list_companions():
    with engine().connect() as conn:
        shown = comp.list_companions(conn, g.buyer.buyer_id)
    return jsonify({"companions": [_companion_json(c) for c in shown], "limit": _limit()})


@bp.post("/companions")
@signed_in
@idempotent(scope=_buyer_scope)
def add_companion():
    body = json_body()
    with transaction() as conn:
        added = comp.add_companion(conn, g.buyer.buyer_id, name=_text(body, "name"),
                                   doc_type=_text(body, "doc_type"),
                                   doc_number=_text(body, "doc_number"), limit=_limit())
    return jsonify({"companion": _companion_json(added)}), 201


@bp.delete("/companions/<int:companion_id>")
@signed_in
@idempotent(scope=_buyer_scope)
def remove_companion(companion_id: int):
    with transaction() as conn:
        comp.remove_companion(conn, g.buyer.buyer_id, companion_id)
    return jsonify({"removed": True})


# -- the photo of a document no service checks (uploads, issue 16 §2) --------------------------

def _photo(companion_id: int | None):
    """The request's body is the photo itself (``Content-Type: image/jpeg`` or
    ``image/png``): the type and a declared length are refused before the body is read, and
    no more than one byte past the limit is ever read."""
    declared = request.mimetype
    check_declared(declared)
    if request.content_length is not None and request.content_length > MAX_BYTES:
        raise IdentityError("photo_too_large", limit=MAX_BYTES)
    data = request.stream.read(MAX_BYTES + 1)
    with transaction() as conn:
        identity_id, state = photo_uploads.send_photo(
            conn, g.buyer.buyer_id, data, declared=declared, companion_id=companion_id)
    return jsonify({"identity_id": identity_id, "verification": state}), 202


@bp.put("/me/identity/photo")
@signed_in
def send_my_photo():
    return _photo(None)


@bp.put("/companions/<int:companion_id>/photo")
@signed_in
def send_companion_photo(companion_id: int):
    return _photo(companion_id)
