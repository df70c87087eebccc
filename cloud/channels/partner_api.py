"""The partner API, under ``/api/partner/v1/`` (docs/partner-api.md; its OpenAPI document at
``/api/partner/v1/openapi.json``): a distributor's or agent's own system reads the products
bound to it and their availability, and places, confirms, cancels and refunds orders paid from
its account, through the channel its key belongs to.

Every call but the OpenAPI document is signed with one of the partner's keys
(cloud/channels/api_keys.py, cloud/channels/signing.py) and needs the key's scope for it;
every write takes an ``Idempotency-Key`` (a retry answers the first answer, byte for byte),
kept per key. JSON in and out; a field that does not match is a 400 naming it, and a refused
request changes nothing. Each call that names a known key leaves a row in the key's access
log, refusals included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import wraps
from typing import Any

import jsonschema
from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from cloud.channels import api_keys, ordering
from cloud.channels.partner_openapi import (
    MAX_DAYS,
    NOTHING,
    ORDER,
    PRODUCT_LINE,
    REFUND,
    SESSION_LINE,
    document,
)
from cloud.core.errors import HubError
from cloud.core.idempotency import IdempotencyError
from cloud.web.http import ApiError, engine, json_body
from cloud.web.idempotent import HEADER, idempotent, transaction
from sync.timeutil import CHINA, utcnow

PREFIX = "/api/partner/v1"
bp = Blueprint("partner_api", __name__, url_prefix=PREFIX)
_VALIDATORS = {id(s): jsonschema.Draft202012Validator(s)
               for s in (PRODUCT_LINE, SESSION_LINE, ORDER, REFUND, NOTHING)}


# -- signing, scopes, the access log ------------------------------------------------------------

def signed_path() -> str:
    """The path and query the client signed: as sent, ``?query`` only when there is one."""
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def _authenticate(scope: str | None) -> None:
    now = utcnow()
    with engine().begin() as conn:
        key = api_keys.find_key(conn, request.headers)
        g.api_key_id = key.id
        api_keys.usable(key, now)
        api_keys.check_request(conn, key, request.method, signed_path(), request.headers,
                               request.get_data(cache=True), now)
    if scope is not None:
        api_keys.require_scope(key, scope)
    g.api_key = key


def signed(scope: str | None) -> Callable:
    """Admit requests signed with a key that has ``scope`` (None: any key)."""
    def decorate(view: Callable) -> Callable:
        view.wicket_scope = scope

        @wraps(view)
        def wrapper(*args, **kwargs):
            _authenticate(scope)
            return view(*args, **kwargs)
        return wrapper
    return decorate


def _key_scope() -> str:
    return f"api_key:{g.api_key.id}"


def keyed(view: Callable) -> Callable:
    """An ``Idempotency-Key`` required (cloud/web/idempotent.py), kept per key."""
    once = idempotent(view, scope=_key_scope)

    @wraps(view)
    def wrapper(*args, **kwargs):
        if request.headers.get(HEADER) is None:
            raise IdempotencyError("idempotency_key_bad")
        return once(*args, **kwargs)
    return wrapper


def _actor() -> str:
    return f"api_key:{g.api_key.key_id}"


@bp.before_request
def _started() -> None:
    g.api_started = time.perf_counter()
    g.api_key_id = None


@bp.after_request
def _logged(response: Response) -> Response:
    key_id = g.get("api_key_id")
    if key_id is not None:
        ms = int((time.perf_counter() - g.get("api_started", time.perf_counter())) * 1000)
        api_keys.log_access(engine(), key_id, request.method, signed_path(),
                            response.status_code, ms, g.get("api_error"), utcnow())
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(HubError)
def _refused(e: HubError):
    g.api_error = e.code
    response = jsonify(e.as_json())
    response.status_code = e.status
    if e.code == "api_key_rate_limited":
        response.headers["Retry-After"] = str(e.params["retry_after"])
    return response


@bp.errorhandler(HTTPException)
def _http(e: HTTPException):
    g.api_error = "http_%s" % (e.code or 500)
    return jsonify({"error": g.api_error, "message": e.description or e.name,
                    "params": {}}), e.code or 500


# -- what a request carries ---------------------------------------------------------------------

def _checked(body: Any, schema: dict, prefix: str = "") -> dict[str, Any]:
    """The body, or a 400 naming the first field that does not match ``schema``."""
    error = jsonschema.exceptions.best_match(_VALIDATORS[id(schema)].iter_errors(body))
    if error is not None:
        path = [str(p) for p in error.absolute_path]
        if error.validator in ("required", "additionalProperties"):
            path.append(error.message.split("'")[1])
        raise ApiError("bad_request", field=".".join(([prefix] if prefix else []) + path)
                       or "body")
    return body


def _body(schema: dict) -> dict[str, Any]:
    """The JSON body (an empty body reads as ``{}``) checked against ``schema``."""
    if not request.get_data(cache=True):
        return _checked({}, schema)
    return _checked(json_body(), schema)


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError("bad_request", field=field) from None


def _line(item: Any, i: int) -> ordering.PartnerLine:
    where = f"lines.{i}"
    if not isinstance(item, dict):
        raise ApiError("bad_request", field=where)
    schema = PRODUCT_LINE if "product_id" in item else SESSION_LINE
    _checked(item, schema, where)
    holders = tuple((h["name"], h["doc_type"], h["doc_number"])
                    for h in item.get("holders", ()))
    if len(holders) > item["quantity"]:
        raise ApiError("bad_request", field=f"{where}.holders")
    if schema is PRODUCT_LINE:
        day = _day(item["day"], f"{where}.day") if "day" in item else None
        return ordering.PartnerLine(product_id=item["product_id"], day=day,
                                    quantity=item["quantity"], holders=holders)
    return ordering.PartnerLine(session_id=item["session_id"],
                                price_tier_id=item["price_tier_id"],
                                zone_id=item.get("zone_id", 0), quantity=item["quantity"],
                                holders=holders)


def _query_int(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError("bad_request", field=name)
    return int(raw)


def _today(now: datetime) -> date:
    return now.astimezone(CHINA).date()


# -- the calls ----------------------------------------------------------------------------------

@bp.get("/openapi.json")
def openapi():
    """The API's OpenAPI document (open: it says how to call, and holds nothing of anyone)."""
    return jsonify(document())


@bp.get("/ping")
@signed(None)
def ping():
    """Who the signature says the caller is: a client's first test of its signing."""
    key = g.api_key
    return jsonify({"key_id": key.key_id, "partner_id": key.partner_id,
                    "channel_id": key.channel_id, "scopes": list(key.scopes)})


@bp.get("/products")
@signed("products:read")
def products():
    with engine().connect() as conn:
        rows = ordering.partner_products(conn, g.api_key.partner_id, utcnow())
    return jsonify({"products": rows})


@bp.get("/products/<int:product_id>/availability")
@signed("products:read")
def availability(product_id: int):
    """What is left of a day product on each of ``days`` days (1 to 31, default 7) from
    ``from`` (default today, China time)."""
    now = utcnow()
    raw = request.args.get("from")
    first = _day(raw, "from") if raw is not None else _today(now)
    days = _query_int("days", 7, 1, MAX_DAYS)
    with engine().connect() as conn:
        rows = ordering.availability(conn, g.api_key.partner_id, product_id,
                                     [first + timedelta(days=n) for n in range(days)], now)
    return jsonify({"product_id": product_id, "days": rows})


@bp.post("/orders")
@signed("orders:write")
@keyed
def place():
    """Hold an order through the key's channel at the partner's agreed prices (201); with
    ``confirm``, pay it from the partner's account and issue its tickets at once."""
    b = _body(ORDER)
    lines = [_line(item, i) for i, item in enumerate(b["lines"])]
    key = g.api_key
    with transaction() as conn:
        made = ordering.place_order(conn, partner_id=key.partner_id, channel_id=key.channel_id,
                                    lines=lines, confirm=b.get("confirm", False),
                                    actor=_actor(), now=utcnow())
    return jsonify(made), 201


@bp.get("/orders")
@signed("orders:read")
def orders():
    """The partner's orders, newest first: ``limit`` (1 to 200, default 50) at a time, those
    before the order ``before`` (the last ``id`` of the previous page)."""
    limit = _query_int("limit", 50, 1, 200)
    before = _query_int("before", None, 1, 2**31 - 1)
    with engine().connect() as conn:
        rows = ordering.list_orders(conn, g.api_key.partner_id, limit, before)
    return jsonify({"orders": rows, "next_before": rows[-1]["id"] if len(rows) == limit
                    else None})


@bp.get("/orders/<number>")
@signed("orders:read")
def order(number: str):
    with engine().connect() as conn:
        return jsonify(ordering.order_view(conn, g.api_key.partner_id, number, utcnow()))


@bp.post("/orders/<number>/confirm")
@signed("orders:write")
@keyed
def confirm(number: str):
    """Pay a held order from the partner's account and issue its tickets."""
    _body(NOTHING)
    with transaction() as conn:
        done = ordering.confirm_order(conn, g.api_key.partner_id, number, _actor(), utcnow())
    return jsonify(done)


@bp.post("/orders/<number>/cancel")
@signed("orders:write")
@keyed
def cancel(number: str):
    """Give up a held order: its stock goes back on sale at once."""
    _body(NOTHING)
    with transaction() as conn:
        done = ordering.cancel_order(conn, g.api_key.partner_id, number, _actor(), utcnow())
    return jsonify(done)


@bp.post("/orders/<number>/refunds")
@signed("refunds:write")
@keyed
def refund(number: str):
    """Give back tickets of a paid order: their price goes back to the partner's account."""
    b = _body(REFUND)
    with transaction() as conn:
        done = ordering.refund_tickets(conn, g.api_key.partner_id, number,
                                       b["ticket_numbers"], _actor(), utcnow())
    return jsonify(done)
