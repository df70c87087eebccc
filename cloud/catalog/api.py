"""The JSON API's venues (``/api/v1/venues``)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify

from cloud.catalog.tables import venues
from cloud.catalog.venues import create_venue
from cloud.web.http import ApiError, api_actor, api_blueprint, api_permission, engine, json_body
from cloud.web.idempotent import idempotent, transaction

bp = api_blueprint("catalog_api")


@bp.get("/venues")
@api_permission("venues.view")
def list_venues():
    with engine().connect() as conn:
        rows = conn.execute(sa.select(venues).order_by(venues.c.id)).all()
    return jsonify(venues=[{"id": r.id, "code": r.code, "name": r.name, "address": r.address,
                            "timezone": r.timezone} for r in rows])


@bp.post("/venues")
@api_permission("venues.manage")
@idempotent
def post_venue():
    b = json_body()
    if not isinstance(b.get("code"), str) or not isinstance(b.get("name"), str):
        raise ApiError("bad_venue_fields")
    with transaction() as conn:
        venue_id = create_venue(conn, b["code"], b["name"], str(b.get("address", "")),
                                str(b.get("timezone", "Asia/Shanghai")), actor=api_actor())
    return jsonify(id=venue_id), 201
