"""The staff tools' JSON API of the sales channels, under ``/api/v1/channels``
(docs/openapi.json), the pages' twin: list the channels, set one up, switch it on or off, give
it a sale window, read and set its quotas per session × price tier or product × day.

Every call takes a staff API token whose roles may ``channels.manage``; every write takes an
``Idempotency-Key``. A body that does not match its schema is a 400 naming the field, a value
the rules refuse the 4xx of its code, also naming the field.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import jsonschema
import sqlalchemy as sa
from flask import jsonify, request

from cloud.catalog.tables import price_tiers, products, sessions
from cloud.channels.channels import (
    MAX_CAPACITY,
    channel,
    create_channel,
    list_channels,
    set_channel_quota,
    set_enabled,
    set_window,
)
from cloud.channels.tables import CHANNEL_KINDS
from cloud.inventory.tables import quotas
from cloud.web.http import ApiError, api_actor, api_blueprint, api_permission, engine, json_body
from cloud.web.idempotent import idempotent, transaction
from sync.timeutil import utcnow

bp = api_blueprint("channels_api")
MANAGE = "channels.manage"

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_WHEN = {"type": ["string", "null"], "minLength": 1, "maxLength": 40}
CHANNEL_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["code", "name", "kind"],
    "properties": {
        "code": {"type": "string", "minLength": 1, "maxLength": 40},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "kind": {"enum": list(CHANNEL_KINDS)},
        "partner_id": _ID, "customer_id": _ID, "venue_id": _ID,
        "opening_hours": {"type": ["object", "null"]},
    },
}
SWITCH_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["enabled"],
                 "properties": {"enabled": {"type": "boolean"}}}
WINDOW_SCHEMA = {"type": "object", "additionalProperties": False,
                 "required": ["opens_at", "closes_at"],
                 "properties": {"opens_at": _WHEN, "closes_at": _WHEN}}
QUOTA_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["capacity"],
    "properties": {"capacity": {"type": "integer", "minimum": 0, "maximum": MAX_CAPACITY},
                   "session_id": _ID, "price_tier_id": _ID, "product_id": _ID,
                   "day": {"type": "string", "minLength": 10, "maxLength": 10}},
}


def checked(schema: dict[str, Any], body: Any) -> dict[str, Any]:
    """The body, or a 400 naming the first field that does not match ``schema``."""
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(body))
    if error is not None:
        path = [str(p) for p in error.absolute_path]
        if error.validator in ("required", "additionalProperties"):
            path.append(error.message.split("'")[1])
        raise ApiError("bad_request", field=".".join(path) or "body")
    return body


def _when(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 time with its offset, or None (a time without one is refused)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError("bad_request", field=field)
    return parsed


def _at(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def channel_json(row) -> dict[str, Any]:
    return {"id": row.id, "code": row.code, "name": row.name, "kind": row.kind,
            "enabled": bool(row.enabled), "partner_id": row.partner_id,
            "customer_id": row.customer_id, "venue_id": row.venue_id,
            "sale_opens_at": _at(row.sale_opens_at), "sale_closes_at": _at(row.sale_closes_at),
            "opening_hours": row.opening_hours}


def quotas_json(conn: sa.Connection, channel_id: int) -> list[dict[str, Any]]:
    """The channel's quotas: what each counts, its capacity and what is used of it."""
    q = quotas.c
    rows = conn.execute(
        sa.select(q.id, q.capacity, q.used, q.session_id, q.price_tier_id, q.product_id,
                  q.day, sessions.c.name.label("session"), price_tiers.c.name.label("tier"),
                  products.c.name.label("product"))
        .outerjoin(sessions, sessions.c.id == q.session_id)
        .outerjoin(price_tiers, price_tiers.c.id == q.price_tier_id)
        .outerjoin(products, products.c.id == q.product_id)
        .where(q.kind == "channel", q.channel_id == channel_id).order_by(q.id)).all()
    return [{"id": r.id, "session_id": r.session_id, "price_tier_id": r.price_tier_id,
             "product_id": r.product_id, "day": r.day.isoformat() if r.day else None,
             "session": r.session, "tier": r.tier, "product": r.product,
             "capacity": r.capacity, "used": r.used} for r in rows]


@bp.get("/channels")
@api_permission(MANAGE)
def index():
    """Every channel (``?kind=`` one kind)."""
    kind = request.args.get("kind")
    if kind is not None and kind not in CHANNEL_KINDS:
        raise ApiError("bad_request", field="kind")
    with engine().connect() as conn:
        rows = list_channels(conn, kind)
    return jsonify({"channels": [channel_json(r) for r in rows]})


@bp.post("/channels")
@api_permission(MANAGE)
@idempotent
def create():
    """A channel, switched on (201)."""
    b = checked(CHANNEL_SCHEMA, json_body())
    with transaction() as conn:
        channel_id = create_channel(
            conn, b["code"], b["name"], b["kind"], partner_id=b.get("partner_id"),
            customer_id=b.get("customer_id"), venue_id=b.get("venue_id"),
            opening_hours=b.get("opening_hours"), actor=api_actor(), now=utcnow())
        body = channel_json(channel(conn, channel_id))
    return jsonify(body), 201


@bp.get("/channels/<int:channel_id>")
@api_permission(MANAGE)
def detail(channel_id: int):
    """One channel with its quotas."""
    with engine().connect() as conn:
        body = {**channel_json(channel(conn, channel_id)),
                "quotas": quotas_json(conn, channel_id)}
    return jsonify(body)


@bp.post("/channels/<int:channel_id>/switch")
@api_permission(MANAGE)
@idempotent
def switch(channel_id: int):
    """Switch the channel on or off."""
    b = checked(SWITCH_SCHEMA, json_body())
    with transaction() as conn:
        set_enabled(conn, channel_id, b["enabled"], api_actor(), utcnow())
        body = channel_json(channel(conn, channel_id))
    return jsonify(body)


@bp.post("/channels/<int:channel_id>/window")
@api_permission(MANAGE)
@idempotent
def window(channel_id: int):
    """The channel's sale window (null: no limit on that side)."""
    b = checked(WINDOW_SCHEMA, json_body())
    opens, closes = _when(b["opens_at"], "opens_at"), _when(b["closes_at"], "closes_at")
    with transaction() as conn:
        set_window(conn, channel_id, opens, closes, api_actor(), utcnow())
        body = channel_json(channel(conn, channel_id))
    return jsonify(body)


@bp.get("/channels/<int:channel_id>/quotas")
@api_permission(MANAGE)
def quota_list(channel_id: int):
    with engine().connect() as conn:
        channel(conn, channel_id)
        body = {"quotas": quotas_json(conn, channel_id)}
    return jsonify(body)


@bp.post("/channels/<int:channel_id>/quotas")
@api_permission(MANAGE)
@idempotent
def quota(channel_id: int):
    """The channel's quota of a session (and price tier), or of a product (on a day): set up,
    or its capacity changed; the channel's quotas after it."""
    b = checked(QUOTA_SCHEMA, json_body())
    if ("session_id" in b) == ("product_id" in b):
        raise ApiError("bad_request", field="session_id")
    day = None
    if "day" in b:
        try:
            day = date.fromisoformat(b["day"])
        except ValueError:
            raise ApiError("bad_request", field="day") from None
    with transaction() as conn:
        quota_id = set_channel_quota(
            conn, channel_id, b["capacity"], session_id=b.get("session_id"),
            price_tier_id=b.get("price_tier_id"), product_id=b.get("product_id"), day=day,
            actor=api_actor(), now=utcnow())
        body = {"quota_id": quota_id, "quotas": quotas_json(conn, channel_id)}
    return jsonify(body)
