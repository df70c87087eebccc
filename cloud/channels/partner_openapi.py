"""The partner API's request schemas and its OpenAPI document, served at
``/api/partner/v1/openapi.json`` (a test keeps the document's operations and the served routes
the same set). Data only: the views check bodies against these very schemas."""

from __future__ import annotations

from typing import Any

from cloud.channels.signing import (
    KEY_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WINDOW_S,
)

MAX_LINES = 20
MAX_DAYS = 31

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_QUANTITY = {"type": "integer", "minimum": 1, "maximum": 50}
_DAY = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "YYYY-MM-DD"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 200}
HOLDERS = {"type": "array", "maxItems": 50, "items": {
    "type": "object", "additionalProperties": False,
    "required": ["name", "doc_type", "doc_number"],
    "properties": {"name": _TEXT, "doc_type": _TEXT, "doc_number": _TEXT}}}
PRODUCT_LINE = {"type": "object", "additionalProperties": False,
                "required": ["product_id", "quantity"],
                "properties": {"product_id": _ID, "day": _DAY, "quantity": _QUANTITY,
                               "holders": HOLDERS}}
SESSION_LINE = {"type": "object", "additionalProperties": False,
                "required": ["session_id", "price_tier_id", "quantity"],
                "properties": {"session_id": _ID, "price_tier_id": _ID, "zone_id": _ID,
                               "quantity": _QUANTITY, "holders": HOLDERS}}
ORDER = {"type": "object", "additionalProperties": False, "required": ["lines"],
         "properties": {"lines": {"type": "array", "minItems": 1, "maxItems": MAX_LINES,
                                  "items": {"type": "object"}},
                        "confirm": {"type": "boolean"}}}
REFUND = {"type": "object", "additionalProperties": False, "required": ["ticket_numbers"],
          "properties": {"ticket_numbers": {"type": "array", "minItems": 1, "maxItems": 200,
                                            "uniqueItems": True, "items": {
                                                "type": "string", "minLength": 1,
                                                "maxLength": 40}}}}
NOTHING = {"type": "object", "additionalProperties": False, "properties": {}}

_JSON = "application/json"
_ERROR = {"$ref": "#/components/schemas/Error"}


def _answer(description: str, schema: dict | None = None) -> dict:
    return {"description": description,
            "content": {_JSON: {"schema": schema or {"type": "object"}}}}


def _refusals(scope: str | None, write: bool) -> dict[str, dict]:
    out = {
        "400": _answer("a field does not match (`bad_request`, its name in `params.field`)"
                       + ("; `idempotency_key_bad` (missing or malformed)" if write else ""),
                       _ERROR),
        "401": _answer("`api_request_unsigned`, `api_key_unknown`, `api_key_revoked`, "
                       "`api_key_expired`, `api_request_stale`, `api_signature_wrong`, "
                       "`api_request_replayed`", _ERROR),
        "403": _answer("`partner_suspended`" + (f"; the key lacks the scope `{scope}` "
                                                "(`api_scope_missing`)" if scope else ""),
                       _ERROR),
        "429": _answer("the key is over its requests per minute (`api_key_rate_limited`): "
                       "wait the seconds `Retry-After` gives", _ERROR),
    }
    if write:
        out["409"] = _answer("a rule refuses the order (its code); "
                             "`idempotency_in_progress`", _ERROR)
        out["422"] = _answer("`idempotency_key_reused` with a different request", _ERROR)
    return out


def _op(summary: str, scope: str | None, ok: str = "200", *, body: dict | None = None,
        params: list | None = None, write: bool = False) -> dict:
    op: dict[str, Any] = {"summary": summary, "security": [{"signed": []}],
                          "parameters": list(params or []),
                          "responses": {ok: _answer("done"), **_refusals(scope, write)}}
    if scope:
        op["x-wicket-scope"] = scope
    if write:
        op["parameters"].append({"$ref": "#/components/parameters/IdempotencyKey"})
    if body is not None:
        op["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
    return op


def _path(name: str, kind: str = "string") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _paths() -> dict[str, dict]:
    number = _path("number")
    return {
        "/api/partner/v1/ping": {"get": _op(
            "Who the signature says the caller is (any scope): a first test of signing",
            None)},
        "/api/partner/v1/products": {"get": _op(
            "The products bound to the partner by its sales codes, with its agreed price",
            "products:read")},
        "/api/partner/v1/products/{product_id}/availability": {"get": _op(
            "What is left of a day product on each day", "products:read", params=[
                _path("product_id", "integer"),
                _query("from", _DAY, "the first day (default: today, China time)"),
                _query("days", {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
                       "how many days (default 7)")])},
        "/api/partner/v1/orders": {
            "get": _op("The partner's orders, newest first", "orders:read", params=[
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 200},
                       "how many (default 50)"),
                _query("before", _ID, "only orders before this id (the `next_before` of "
                                      "the previous page)")]),
            "post": _op("Hold an order through the key's channel at the agreed prices; "
                        "with `confirm`, pay it from the partner's account and issue its "
                        "tickets", "orders:write", "201", write=True,
                        body={**ORDER, "properties": {**ORDER["properties"], "lines": {
                            **ORDER["properties"]["lines"],
                            "items": {"oneOf": [PRODUCT_LINE, SESSION_LINE]}}}})},
        "/api/partner/v1/orders/{number}": {"get": _op(
            "An order: its state, lines, tickets and their codes", "orders:read",
            params=[number])},
        "/api/partner/v1/orders/{number}/confirm": {"post": _op(
            "Pay a held order from the partner's account and issue its tickets",
            "orders:write", params=[number], write=True)},
        "/api/partner/v1/orders/{number}/cancel": {"post": _op(
            "Give up a held order: its stock goes back on sale", "orders:write",
            params=[number], write=True)},
        "/api/partner/v1/orders/{number}/refunds": {"post": _op(
            "Give back tickets of a paid order; their price goes back to the account",
            "refunds:write", params=[number], body=REFUND, write=True)},
        "/api/partner/v1/openapi.json": {"get": {
            "summary": "This document (no signature needed)", "security": [],
            "responses": {"200": _answer("the OpenAPI document")}}},
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the partner API."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Wicket partner API", "version": "1", "description": (
            "Partners' own systems: products, availability, orders, refunds. Every call "
            f"but this document is signed: headers {KEY_HEADER}, {TIMESTAMP_HEADER} (unix "
            f"seconds, within {WINDOW_S} s of the hub's clock), {NONCE_HEADER} (16 to 64 of "
            f"A-Z a-z 0-9 - _, once per key) and {SIGNATURE_HEADER}: lowercase hex "
            "HMAC-SHA256 under the key's secret of the lines WICKET-HMAC-SHA256, METHOD, "
            "path?query, timestamp, nonce, hex SHA-256 of the body, joined by \\n. Every "
            "POST needs an Idempotency-Key. See the portal's API page (/partner/api).")},
        "components": {
            "securitySchemes": {"signed": {
                "type": "apiKey", "in": "header", "name": KEY_HEADER,
                "description": "with the timestamp, nonce and signature headers (see info)"}},
            "parameters": {"IdempotencyKey": {
                "name": "Idempotency-Key", "in": "header", "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "the client's name for this write: a retry with the same key "
                               "answers the first answer"}},
            "schemas": {"Error": {
                "type": "object", "required": ["error", "message", "params"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                               "params": {"type": "object"}}}},
        },
        "paths": _paths(),
    }
