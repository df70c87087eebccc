"""What a screen shows for an entry once its lane has had its say.

An admission at a lane with a turnstile is not finished when the engine says OK: the lane must
open and, where the turnstile reports passages, someone must pass (``edge/passages.py``). When
the turnstile is down, refuses to open, or nobody passes, the admission is annulled (the ticket
stays unused) and a screen must not go on showing the green "go ahead": it shows "Valid — lane
did not open" in amber, with the reason. The gate screen, its live feed and the handheld page
take their colours and words from here, so they agree.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from flask_babel import gettext as _

from edge import passages, status
from edge.reasons import Reason, colour, words
from edge.web import details
from edge.web.helpers import device_detail_words, device_state_name, kind_name
from sync.timeutil import utcnow

NOT_OPENED = (passages.FAILED, passages.TIMEOUT)
USABLE_STATES = ("up", "degraded")


def not_opened(reason: str, passage: str | None) -> bool:
    """A valid ticket whose lane never let anyone through: the admission was annulled."""
    return reason == Reason.OK.value and passage in NOT_OPENED


def settled(reason: str, passage: str | None) -> bool:
    """Whether the entry's outcome can still change (an admission waiting for its passage)."""
    return not (reason == Reason.OK.value and passage == "pending")


def shown(reason: str, passage: str | None, detail: str, lang: str) -> dict:
    """``colour``, ``words``, ``detail`` (in the screen's language), ``admitted``, ``settled``
    and ``not_opened`` for an entry's reason, passage result and detail."""
    r = Reason(reason) if reason in Reason.__members__ else Reason.DEVICE_ERROR
    if not_opened(reason, passage):
        why = detail.rsplit("; ", 1)[-1]  # passages.annul appends the reason to the detail
        return {"colour": "amber", "words": _("Valid — lane did not open"),
                "detail": details.translate(why), "admitted": False, "settled": True,
                "not_opened": True}
    return {"colour": colour(r), "words": words(r, lang), "detail": details.translate(detail),
            "admitted": r is Reason.OK, "settled": settled(reason, passage),
            "not_opened": False}


def lane_turnstile(conn: sqlite3.Connection, lane: str,
                   now: datetime | None = None) -> tuple[str, str] | None:
    """The lane's turnstile as the gate runtime last reported it: ``(device id, why it cannot
    open)``, the reason empty while it is up (or degraded) and reporting; None for a lane
    without an enabled turnstile (staff let people through by hand)."""
    for device in status.devices(conn, now or utcnow(), lane=lane, kind="turnstile"):
        if not device["enabled"]:
            continue
        if device["silent"]:
            return device["id"], f"turnstile {device['id']} is not reporting"
        if device["state"] not in USABLE_STATES:
            return device["id"], f"turnstile {device['id']} is {device['state']}"
        return device["id"], ""
    return None


def lane_devices(conn: sqlite3.Connection, lanes: list[str],
                 now: datetime | None = None) -> dict[str, list[dict]]:
    """Each lane's enabled devices (cameras, readers, turnstile) for the screen's strip."""
    out: dict[str, list[dict]] = {lane: [] for lane in lanes}
    for device in status.devices(conn, now or utcnow()):
        if device["lane"] in out and device["enabled"]:
            state = "silent" if device["silent"] else device["state"]
            out[device["lane"]].append({
                "id": device["id"], "kind": device["kind"], "kind_name": kind_name(
                    device["kind"]), "state": state, "state_name": device_state_name(state),
                "detail": device_detail_words(device["detail"])[0]})
    return out
