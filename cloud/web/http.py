"""What the hub's JSON blueprints share: the error shape, the engine, the request body."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request


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

    return bp


def engine() -> sa.Engine:
    return current_app.extensions["db"]


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "the request body must be a JSON object")
    return body
