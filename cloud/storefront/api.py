"""The public JSON API under ``/api/public/v1/``: what anyone may read without a token.

``GET /api/public/v1/sessions/<id>/availability`` (``?zone=<id>`` for one zone's seats) is
the staff API's cached answer (:mod:`cloud.inventory.availability`: never older than
``AVAILABILITY_MAX_AGE``, never counting a hold past its end), served only for a session on
sale: any other session is ``unknown_session``, as one that does not exist. The answer holds
nothing personal and is the same for everyone, so it is sent ``Cache-Control: public`` for its
freshness and with an ETag (``If-None-Match`` gets ``304``): a reverse proxy or CDN in front
of the hub serves the crowd on an on-sale moment, and the hub process serves what reaches it
from memory, touching the database at most once per session and zone per
``AVAILABILITY_MAX_AGE``. It is not counted against the per-address API limit, which costs a
database write per block of calls: reading a cached answer costs less than counting it would.
The buyer's writes (holding an order) are limited where they are made.
"""

from __future__ import annotations

from flask import current_app, request

from cloud.inventory.availability import AvailabilityCache
from cloud.inventory.seats import InventoryError
from cloud.web.http import ApiError, json_blueprint
from sync.websafe import whole_number

bp = json_blueprint("public_api", "/api/public/v1")


@bp.get("/sessions/<int:session_id>/availability")
def availability(session_id: int):
    """A session's availability, for anyone, while the session is on sale."""
    asked = request.args.get("zone")
    zone = None if asked is None else whole_number(asked, 1, 2**31 - 1)
    if asked is not None and zone is None:
        raise ApiError("bad_whole_number", field="zone")
    cache: AvailabilityCache = current_app.extensions["availability"]
    found = cache.get(session_id, zone)
    if not found.on_sale:
        raise InventoryError("unknown_session", session_id=session_id)
    response = current_app.response_class(found.body, mimetype="application/json")
    response.set_etag(found.etag, weak=True)
    response.headers["Cache-Control"] = f"public, max-age={int(cache.max_age)}"
    return response.make_conditional(request)
