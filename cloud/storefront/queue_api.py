"""The waiting room's public JSON API (issue 17 §2; the rules in
``cloud/storefront/waiting_room.py``, docs/waiting-room.md):

- ``POST /api/public/v1/sessions/<id>/queue`` enters the session's queue: a new queue token
  with the next number (201), or, with ``{"token": …}`` given before, the same number (200:
  asking again never improves a place). Limited per client address
  (``WAITING_ROOM_ENTER_LIMIT``, counted in the hub's database like the other doors).
- ``GET /api/public/v1/sessions/<id>/queue?token=…`` polls: the number, the people ahead,
  the estimate in seconds, and once admitted an admission pass for the checkout. It reads one
  row and writes nothing, so it is not counted against any limit.

Answers are ``Cache-Control: no-store`` (each is the visitor's own). Settings, from the app's
configuration or else ``$WICKET_HUB_<name>``, checked when the app is made:
``WAITING_ROOM_RATE`` (numbers admitted per second; unset or 0: no waiting room unless a
session has a rate of its own), ``WAITING_ROOM_BURST`` (how many may pass at once after a quiet
moment; default one second's worth), ``WAITING_ROOM_PASS_MINUTES`` (a pass's life, default
10), ``WAITING_ROOM_TOKEN_HOURS`` (a queue token's life, default 12).

The checkout asks :func:`room_settings` for the settings and calls
``waiting_room.check_admission(conn, room_settings(), session_id, pass_token, now)``.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from flask import current_app, jsonify, request

from cloud.core import rate_limits
from cloud.storefront import waiting_room
from cloud.storefront.waiting_room import Place, QueueError, RoomConfig
from cloud.web.http import engine, json_blueprint
from cloud.web.limits import limited
from sync.timeutil import utcnow

bp = json_blueprint("queue_api", "/api/public/v1")
EXTENSION = "waiting_room"
MAX_TOKEN = 200


class WaitingRoomWeb:
    """The app's waiting-room settings and the clock its answers are made at."""

    def __init__(self, config: RoomConfig, clock=utcnow):
        self.config = config
        self.clock = clock


@bp.record_once
def _set_up(state) -> None:
    app = state.app
    for name in waiting_room.SETTINGS:
        if app.config.get(name) is None:
            app.config[name] = os.environ.get(f"WICKET_HUB_{name}") or None
    config = waiting_room.room_config(app.config["SECRET_KEY"], app.config)
    app.extensions[EXTENSION] = WaitingRoomWeb(config)


def room_settings() -> RoomConfig:
    """The app's waiting-room settings, for the checkout's :func:`waiting_room.check_admission`
    and :func:`waiting_room.needs_pass`."""
    return current_app.extensions[EXTENSION].config


def _now() -> datetime:
    return current_app.extensions[EXTENSION].clock()


def _token(value: Any, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TOKEN:
        raise QueueError("bad_field", field="token")
    return value


def _answer(place: Place, status: int):
    body = {"session_id": place.session_id, "number": place.number, "token": place.token,
            "ahead": place.ahead, "estimate_s": place.estimate_s, "admitted": place.admitted,
            "pass": place.pass_token,
            "pass_expires_at": (place.pass_expires_at.isoformat()
                                if place.pass_expires_at else None),
            "rate": place.rate,
            # a hint: often near the end of the wait, rarely at its start
            "poll_after_s": 0 if place.admitted else max(1, min(15, place.estimate_s // 4))}
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/sessions/<int:session_id>/queue")
@limited("WAITING_ROOM_ENTER_LIMIT")
def enter(session_id: int):
    """Enter the session's queue, or come back to one's place with the token."""
    body: Any = {}
    if request.content_length or request.data:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise QueueError("bad_json")
    token = _token(body.get("token"), required=False)
    with engine().begin() as conn:
        # the session's counter row is every arrival's: held only until the commit returns,
        # not until it reaches the disk (a crash may hand a number out twice, which lets two
        # visitors in together; it never moves anyone back)
        rate_limits.without_waiting_for_disk(conn)
        place, new = waiting_room.enter(conn, room_settings(), session_id, _now(), token)
    return _answer(place, 201 if new else 200)


@bp.get("/sessions/<int:session_id>/queue")
def poll(session_id: int):
    """Where one's queue token stands, with a pass once admitted."""
    token = _token(request.args.get("token"), required=True)
    with engine().connect() as conn:
        place = waiting_room.poll(conn, room_settings(), session_id, token, _now())
    return _answer(place, 200)
