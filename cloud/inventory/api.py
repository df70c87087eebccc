"""The JSON API of a session's availability, under ``/api/v1/`` (docs/openapi.json): seats
free, held, sold, kept and closed per zone and per price tier, or each seat of one zone
(``?zone=<id>``), as :mod:`cloud.inventory.availability` reads and caches them.

Staff tools call it with a token that may sell (``tickets.sell``: the box office's seat map).
The answer holds nothing personal, so the public storefront (a later part) may serve the same
cached answers through a route of its own without a token; that route is the storefront's to
add, with its own limits, not this one's.

Each answer carries an ``ETag``; ``If-None-Match`` with it is answered ``304`` while the
availability is unchanged. An answer may be up to ``AVAILABILITY_MAX_AGE`` seconds old (the
setting, default 1; ``$WICKET_HUB_AVAILABILITY_MAX_AGE`` for ``wicket-hub serve``), never
older, and never counts a hold or reservation past its end.
"""

from __future__ import annotations

import os

from flask import current_app, request

from cloud.inventory.availability import MAX_AGE, AvailabilityCache
from cloud.web.http import ApiError, api_blueprint, api_permission
from sync.websafe import whole_number

bp = api_blueprint("inventory_api")
SETTING = "AVAILABILITY_MAX_AGE"


@bp.record_once
def _set_up(state) -> None:
    app = state.app
    app.config.setdefault(SETTING, float(os.environ.get(f"WICKET_HUB_{SETTING}") or MAX_AGE))
    app.extensions["availability"] = AvailabilityCache(app.extensions["db"],
                                                       float(app.config[SETTING]))


@bp.get("/sessions/<int:session_id>/availability")
@api_permission("tickets.sell")
def availability(session_id: int):
    """A session's availability (with ``?zone=<id>``, that zone's seats one by one)."""
    asked = request.args.get("zone")
    zone = None if asked is None else whole_number(asked, 1, 2**31 - 1)  # int() takes "²"
    if asked is not None and zone is None:
        raise ApiError("bad_whole_number", field="zone")
    cache: AvailabilityCache = current_app.extensions["availability"]
    found = cache.get(session_id, zone)
    response = current_app.response_class(found.body, mimetype="application/json")
    response.set_etag(found.etag, weak=True)  # the same but for as_of
    response.headers["Cache-Control"] = f"private, max-age={int(cache.max_age)}"
    return response.make_conditional(request)
