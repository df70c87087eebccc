"""What the hub's JSON blueprints share: the error shape, the engine, the request body, and the
API tokens' roles.

A refusal is answered ``{"error": code, "message": english, "params": {...}}`` with the status
its code names (:class:`cloud.core.errors.HubError`); a refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, g, jsonify, request

from cloud.core.errors import HubError
from cloud.staff import staff as staff_mod


class ApiError(Exception):
    """A refused request: answered as ``{"error": code, "message": words}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_blueprint(name: str, url_prefix: str) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=url_prefix)

    @bp.errorhandler(ApiError)
    def _api_error(e: ApiError):
        return jsonify(error=e.code, message=e.message), e.status

    @bp.errorhandler(HubError)
    def _hub_error(e: HubError):
        return jsonify(e.as_json()), e.status

    return bp


def engine() -> sa.Engine:
    return current_app.extensions["db"]


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "the request body must be a JSON object")
    return body


def requires(*roles: str) -> Callable:
    """Admit API tokens (``Authorization: Bearer <token>``) of these roles (and admins)."""
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or not token:
                raise ApiError(401, "unauthorized", "missing Authorization: Bearer <token>")
            with engine().connect() as conn:
                who = staff_mod.token_staff(conn, token.strip())
            if not staff_mod.admits(who.role, roles):
                raise ApiError(403, "forbidden", f"the {who.role} role may not do this")
            g.staff = who
            return view(*args, **kwargs)
        return wrapper
    return decorate


def api_actor() -> str:
    return f"staff:{g.staff.id}"


def api_blueprint(name: str) -> Blueprint:
    """A blueprint of the staff tools' JSON API under ``/api/v1/`` (docs/openapi.json)."""
    bp = json_blueprint(name, "/api/v1")

    @bp.errorhandler(staff_mod.StaffError)
    def _staff_error(e: staff_mod.StaffError):
        return jsonify(error=e.code, message=str(e)), 401

    return bp
