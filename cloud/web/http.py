"""What the hub's JSON blueprints share: the error shape, the engine, the request body, and the
API tokens' roles.

A refusal is answered ``{"error": code, "message": english, "params": {...}}`` with the status
its code names (:class:`cloud.core.errors.HubError`); a refused request changes nothing. (A
staff token's refusal is always 401.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, g, jsonify, request

from cloud.core.errors import PROTOCOL, Code, HubError
from cloud.staff import staff as staff_mod
from cloud.staff import tokens


class ApiError(HubError):
    """A request refused before any rule is reached: no token, a role that may not, a body
    that is not what the call takes."""

    codes = {
        **PROTOCOL,
        "bad_venue_fields": Code(400, "code and name are required strings"),
        "bad_ticket_list": Code(400, "tickets must be a list of 1 to %(limit)s objects"),
        "bad_ticket_item": Code(400, "each ticket is an object"),
        "bad_holder": Code(400, "holder needs name, doc_type, doc_number"),
        "bad_whole_number": Code(400, "%(field)s must be a whole number"),
        "bad_reason": Code(400, "reason must be text"),
        "batch_too_large": Code(413, "at most %(limit)s entries per batch"),
        "bad_request": Code(400, "the request does not match its schema at %(field)s"),
        "rate_limited": Code(429, "too many requests: try again after the time Retry-After "
                                  "gives"),
    }


def json_blueprint(name: str, url_prefix: str) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=url_prefix)

    @bp.errorhandler(HubError)
    def _hub_error(e: HubError):
        return jsonify(e.as_json()), e.status

    return bp


def engine() -> sa.Engine:
    return current_app.extensions["db"]


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError("bad_json")
    return body


def requires(*roles: str) -> Callable:
    """Admit API tokens (``Authorization: Bearer <token>``) of these roles (and admins); a
    token scoped to roles acts with those only (:mod:`cloud.staff.tokens`)."""
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or not token:
                raise ApiError("unauthorized", "missing Authorization: Bearer <token>")
            with engine().connect() as conn:
                who = tokens.bearer(conn, token.strip())
            if not tokens.bearer_admits(who, roles):
                raise ApiError("forbidden", role=",".join(who.roles))
            g.staff = who.staff
            return view(*args, **kwargs)
        return wrapper
    return decorate


def api_actor() -> str:
    return f"staff:{g.staff.id}"


def api_blueprint(name: str) -> Blueprint:
    """A blueprint of the staff tools' JSON API under ``/api/v1/`` (docs/openapi.json)."""
    bp = json_blueprint(name, "/api/v1")
    bp.wicket_limit = ("API_LIMIT", None)  # every call carries a token: see cloud/web/limits.py

    @bp.errorhandler(staff_mod.StaffError)
    def _staff_error(e: staff_mod.StaffError):
        return jsonify(e.as_json()), 401

    return bp
