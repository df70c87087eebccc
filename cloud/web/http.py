"""What the hub's JSON blueprints share: the error shape, the engine, the request body, and the
permission each staff API call needs of its token.

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

from cloud.core.db import one_statement
from cloud.core.errors import PROTOCOL, Code, HubError
from cloud.staff import staff as staff_mod
from cloud.staff import tokens
from cloud.staff.permissions import PERMISSIONS


class ApiError(HubError):
    """A request refused before any rule is reached: no token, a token that may not, a body
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


def api_permission(name: str) -> Callable:
    """Admit API tokens (``Authorization: Bearer <token>``) that have this permission (named in
    cloud/staff/permissions.py): their roles' permissions, within their owner's
    (:mod:`cloud.staff.tokens`), read on every call."""
    if name not in PERMISSIONS:
        raise ValueError(f"unknown permission {name!r}: name it in cloud/staff/permissions.py")

    def decorate(view: Callable) -> Callable:
        view.wicket_permission = name

        @wraps(view)
        def wrapper(*args, **kwargs):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or not token:
                raise ApiError("unauthorized", "missing Authorization: Bearer <token>")
            with one_statement(engine()) as conn:
                who = tokens.bearer(conn, token.strip())
            if name not in who.permissions:
                raise ApiError("forbidden", role=",".join(who.roles), permission=name)
            g.staff, g.permissions = who.staff, who.permissions
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
